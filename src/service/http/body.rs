//! Reading request bodies: content type, `Content-Encoding` (gzip, deflate), the 64 KiB
//! limit (checked on the bytes received and again after decompression, so a small
//! compressed bomb is refused too) and query strings, all answered with Graph errors.

use std::io::Read;

use axum::body::Body;
use axum::http::{HeaderMap, header};
use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::protocol::ErrorCode;
use crate::protocol::validate::MAX_BODY_BYTES;

use super::error::ApiError;
use crate::service::serve::BodyTimedOut;

/// The media type a route takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/json`.
    Json,
    /// `application/x-www-form-urlencoded` (the OAuth token endpoint).
    Form,
}

impl Media {
    fn essence(self) -> &'static str {
        match self {
            Media::Json => "application/json",
            Media::Form => "application/x-www-form-urlencoded",
        }
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// Reads a body of `media`, decompressed, at most [`MAX_BODY_BYTES`].
pub async fn read(headers: &HeaderMap, body: Body, media: Media) -> Result<Vec<u8>, ApiError> {
    check_media(headers, media)?;
    let encoding = encoding(headers)?;
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && length > MAX_BODY_BYTES
    {
        return Err(too_large());
    }
    let raw = collect(body).await?;
    decode(&raw, encoding)
}

fn check_media(headers: &HeaderMap, media: Media) -> Result<(), ApiError> {
    let given = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = given.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case(media.essence()) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "Content-Type must be {}, got {:?}",
                media.essence(),
                if given.is_empty() { "nothing" } else { given }
            ),
        ))
    }
}

#[derive(Clone, Copy)]
enum Encoding {
    Identity,
    Gzip,
    Deflate,
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    match value
        .to_str()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
        .as_str()
    {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        "deflate" => Ok(Encoding::Deflate),
        other => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("Content-Encoding {other:?} is not supported; use gzip, deflate or none"),
        )),
    }
}

async fn collect(body: Body) -> Result<Vec<u8>, ApiError> {
    let mut stream = body.into_data_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| match timed_out(&e) {
            Some(late) => ApiError::new(ErrorCode::RequestTimeout, late.to_string()),
            None => ApiError::bad_request(format!("reading the body failed: {e}")),
        })?;
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The body deadline's error, if that is what ended the read.
fn timed_out(error: &axum::Error) -> Option<&BodyTimedOut> {
    crate::service::find_cause(error)
}

fn decode(raw: &[u8], encoding: Encoding) -> Result<Vec<u8>, ApiError> {
    match encoding {
        Encoding::Identity => Ok(raw.to_vec()),
        Encoding::Gzip => inflate(GzDecoder::new(raw), "gzip"),
        // "deflate" is zlib-wrapped by the RFC, but some clients send raw deflate. Only a
        // body that is not zlib is tried as raw deflate: a zlib body over the limit stays
        // 413 (trying it again as raw deflate would turn that into a 400).
        Encoding::Deflate => match inflate(ZlibDecoder::new(raw), "deflate") {
            Err(e) if e.code != ErrorCode::PayloadTooLarge => {
                inflate(DeflateDecoder::new(raw), "deflate")
            }
            decoded => decoded,
        },
    }
}

fn inflate(reader: impl Read, name: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let limit = u64::try_from(MAX_BODY_BYTES).unwrap_or(u64::MAX) + 1;
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("body: not valid {name} data ({e})")))?;
    if out.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(out)
}

/// Answers `400` when encoded text (a form body, a path, a query string) holds a NUL
/// character, literally or percent-encoded (`%00`). No field of the API may hold one,
/// and PostgreSQL's text columns cannot: refusing it here keeps both stores alike.
pub fn refuse_encoded_nul(what: &str, raw: &[u8]) -> Result<(), ApiError> {
    if raw.contains(&0) || raw.windows(3).any(|w| w == b"%00") {
        return Err(holds_nul(what));
    }
    Ok(())
}

/// Answers `400` when a decoded field (a sign-in's JSON) holds a NUL character. (Its
/// text may well say `%00`: only encoded text is read for that.)
pub fn refuse_nul(what: &str, value: &str) -> Result<(), ApiError> {
    if value.contains('\0') {
        return Err(holds_nul(what));
    }
    Ok(())
}

fn holds_nul(what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "{what}: holds a NUL character (U+0000), which no field may hold"
    ))
}

/// Parses a query string into `T`, answering 400 with the reason.
pub fn query<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("query string: {e}")))
}

/// Parses a form body into `T`, answering 400 with the reason.
pub fn form<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    refuse_encoded_nul("form body", bytes)?;
    serde_urlencoded::from_bytes(bytes)
        .map_err(|e| ApiError::bad_request(format!("form body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_text_is_read_for_percent_zero_zero_and_decoded_text_is_not() {
        assert!(refuse_encoded_nul("form body", b"user=al%00ice").is_err());
        assert!(refuse_encoded_nul("form body", b"user=al\0ice").is_err());
        assert!(refuse_encoded_nul("form body", b"user=al%2500ice").is_ok());
        assert!(refuse_nul("username", "al\0ice").is_err());
        assert!(refuse_nul("username", "100%00 sure").is_ok());
    }
}
