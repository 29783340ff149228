//! The payload's rules: visual content, raw content, or both; or encrypted content in
//! their place, one entry per subscription (`docs/encryption.md`). The service can check
//! an entry's shape and size only: what is inside is for the device to check.

use serde::Deserialize;

use super::{
    Controls, MAX_BODY_CHARS, MAX_ID_CHARS, MAX_RAW_BYTES, MAX_TITLE_CHARS, ValidationError,
    check_chars,
};
use crate::protocol::ids::Unsid;
use crate::protocol::notification::{Payload, VisualContent};
use crate::protocol::sealed::{self, MAX_SEALED_ENTRIES, SealedContent};

/// A payload as sent: lenient types, nothing checked yet. (The names are the wire's.)
#[allow(clippy::struct_field_names)]
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PayloadInput {
    visual_content: Option<VisualInput>,
    raw_content: Option<String>,
    encrypted_content: Option<Vec<SealedInput>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VisualInput {
    title: Option<String>,
    body: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SealedInput {
    unsid: Option<String>,
    content: Option<String>,
}

/// The typed payload of `input`, its required fields present (the limits are
/// [`check_payload`]'s).
pub(super) fn validate_payload(input: PayloadInput) -> Result<Payload, ValidationError> {
    let visual_content = input
        .visual_content
        .map(|visual| {
            let title = visual.title.ok_or_else(|| {
                ValidationError::new("payload.visualContent.title", "is required")
            })?;
            Ok(VisualContent {
                title,
                body: visual.body,
            })
        })
        .transpose()?;
    let encrypted_content = input
        .encrypted_content
        .map(|entries| {
            entries
                .into_iter()
                .enumerate()
                .map(|(at, entry)| {
                    let required =
                        |name: &str| ValidationError::new(entry_field(at, name), "is required");
                    Ok(SealedContent {
                        unsid: Unsid::new(entry.unsid.ok_or_else(|| required("unsid"))?),
                        content: entry.content.ok_or_else(|| required("content"))?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(Payload {
        visual_content,
        raw_content: input.raw_content,
        encrypted_content,
    })
}

/// The cleartext of an entry a device opened: the JSON of a payload with visual
/// content, raw content or both (not encrypted again), held to a post's limits.
pub fn opened_payload(cleartext: &[u8]) -> Result<Payload, ValidationError> {
    let input: PayloadInput = super::parse_json(cleartext)?;
    if input.encrypted_content.is_some() {
        return Err(ValidationError::new(
            "encryptedContent",
            "encrypted content holds a payload of visual and raw content, not encrypted content again",
        ));
    }
    let payload = validate_payload(input)?;
    check_payload(&payload)?;
    Ok(payload)
}

/// The field name of entry `at`'s `name`.
pub fn entry_field(at: usize, name: &str) -> String {
    format!("payload.encryptedContent[{at}].{name}")
}

/// Checks the limits of a typed payload (the service's, and the agent's again on what a
/// service sends).
pub(super) fn check_payload(payload: &Payload) -> Result<(), ValidationError> {
    if let Some(visual) = &payload.visual_content {
        let title = "payload.visualContent.title";
        check_chars(title, &visual.title, 1, MAX_TITLE_CHARS, Controls::Allowed)?;
        if let Some(body) = &visual.body {
            let field = "payload.visualContent.body";
            check_chars(field, body, 0, MAX_BODY_CHARS, Controls::Allowed)?;
        }
    }
    if let Some(raw) = &payload.raw_content
        && raw.len() > MAX_RAW_BYTES
    {
        return Err(ValidationError::new(
            "payload.rawContent",
            format!("must be at most {MAX_RAW_BYTES} bytes, got {}", raw.len()),
        ));
    }
    match &payload.encrypted_content {
        Some(entries) => check_sealed(payload, entries),
        None if payload.visual_content.is_none() && payload.raw_content.is_none() => {
            Err(ValidationError::new(
                "payload",
                "needs visualContent, rawContent or both (or encryptedContent in their place)",
            ))
        }
        None => Ok(()),
    }
}

fn check_sealed(payload: &Payload, entries: &[SealedContent]) -> Result<(), ValidationError> {
    let field = "payload.encryptedContent";
    if payload.visual_content.is_some() || payload.raw_content.is_some() {
        return Err(ValidationError::new(
            field,
            "replaces visualContent and rawContent: put them inside the encrypted content, or send them without it",
        ));
    }
    if entries.is_empty() || entries.len() > MAX_SEALED_ENTRIES {
        return Err(ValidationError::new(
            field,
            format!(
                "must hold 1 to {MAX_SEALED_ENTRIES} entries (one per device), got {}",
                entries.len()
            ),
        ));
    }
    for (at, entry) in entries.iter().enumerate() {
        let unsid = entry.unsid.as_str();
        check_chars(
            &entry_field(at, "unsid"),
            unsid,
            1,
            MAX_ID_CHARS,
            Controls::Refused,
        )?;
        if entries[..at].iter().any(|e| e.unsid == entry.unsid) {
            return Err(ValidationError::new(
                entry_field(at, "unsid"),
                "names a subscription an earlier entry names; one entry per subscription",
            ));
        }
        sealed::check_content(&entry.content)
            .map_err(|e| ValidationError::new(entry_field(at, "content"), e.to_string()))?;
    }
    Ok(())
}
