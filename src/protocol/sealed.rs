//! End-to-end encrypted content (`docs/encryption.md`): what a backend encrypts for one
//! subscription, the service carries without a key, and only that device can read.
//!
//! The encryption is Web Push's (RFC 8291: ECDH on P-256 with the subscription's key,
//! mixed with its 16-byte auth secret, over RFC 8188's `aes128gcm` content coding), so a
//! backend sends with any Web Push library. The primitives and the two RFCs are the
//! `web-push-native` crate's; this module holds the keys, the base64url text and the
//! limits, and turns every failure into a typed error (never a panic: the content comes
//! from the network).

use std::fmt;

use base64::Engine;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};
use web_push_native::p256::elliptic_curve::sec1::ToEncodedPoint;
use web_push_native::p256::{PublicKey, SecretKey};

use super::ids::Unsid;

/// Bytes of one entry's ciphertext at most, decoded (a payload's own limits, 16 KiB of
/// raw content and 4.5 KiB of text, fit with room to spare).
pub const MAX_SEALED_BYTES: usize = 24 * 1024;

/// Entries in one notification at most (one per device the backend knows).
pub const MAX_SEALED_ENTRIES: usize = 32;

/// The smallest `aes128gcm` body: the 21-byte header with a 65-byte key id, and one
/// record of a 16-byte tag and its delimiter.
const MIN_SEALED_BYTES: usize = 21 + 65 + 17;

/// base64url, written without padding, read with or without it (Python's
/// `urlsafe_b64encode` pads, JavaScript's usually does not).
const B64: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// One copy of a notification's content, encrypted for one subscription.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedContent {
    /// The subscription whose keys it was encrypted with.
    pub unsid: Unsid,
    /// The `aes128gcm` body, base64url.
    pub content: String,
}

/// Why content could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not base64url.
    #[error("content is not base64url: {0}")]
    Encoding(String),
    /// Shorter than any `aes128gcm` body, or longer than [`MAX_SEALED_BYTES`].
    #[error(
        "content is {0} bytes; an aes128gcm body for Web Push is {MIN_SEALED_BYTES} to {MAX_SEALED_BYTES}"
    )]
    Size(usize),
    /// A public key or auth secret of the wrong shape.
    #[error("{0}")]
    Key(String),
    /// Decryption failed: tampered, truncated, or made for other keys.
    #[error("content could not be decrypted (tampered, truncated or for other keys): {0}")]
    Decrypt(String),
    /// Encryption failed.
    #[error("content could not be encrypted: {0}")]
    Encrypt(String),
}

/// Checks what the service can check of an entry's content without a key: base64url,
/// a size an `aes128gcm` body can have, and its header's shape.
pub fn check_content(content: &str) -> Result<(), SealError> {
    check_header(&decode(content)?)
}

fn decode(text: &str) -> Result<Vec<u8>, SealError> {
    // Decoded size is at most 3/4 of the text: refuse long text before decoding it.
    if text.len() / 4 * 3 > MAX_SEALED_BYTES + 3 {
        return Err(SealError::Size(text.len() / 4 * 3));
    }
    B64.decode(text.trim_end_matches('='))
        .map_err(|e| SealError::Encoding(e.to_string()))
}

/// Checks an `aes128gcm` body's header as RFC 8291 shapes it, before the body reaches
/// the decryption: `ece-native` 0.5 panics on a record size of 0 (a network peer could
/// end the agent with one), and a Web Push key id is the sender's 65-byte public key.
fn check_header(body: &[u8]) -> Result<(), SealError> {
    if !(MIN_SEALED_BYTES..=MAX_SEALED_BYTES).contains(&body.len()) {
        return Err(SealError::Size(body.len()));
    }
    let record_size = u32::from_be_bytes([body[16], body[17], body[18], body[19]]);
    if record_size < 18 {
        return Err(SealError::Decrypt(format!(
            "record size {record_size}; RFC 8188 needs at least 18"
        )));
    }
    if body[20] != 65 {
        return Err(SealError::Decrypt(format!(
            "key id of {} bytes; Web Push's is the sender's 65-byte public key",
            body[20]
        )));
    }
    Ok(())
}

/// A subscription's public keys, as a Web Push subscription's `keys` gives them: what a
/// backend needs to encrypt for this device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeys {
    /// The uncompressed P-256 point, 65 bytes, base64url.
    pub p256dh: String,
    /// The 16-byte auth secret, base64url.
    pub auth: String,
}

impl PublicKeys {
    /// Reads `P256DH:AUTH` (as `tidings send --encrypt-for` takes it).
    pub fn parse_pair(text: &str) -> Result<Self, SealError> {
        let (p256dh, auth) = text.split_once(':').ok_or_else(|| {
            SealError::Key("expected P256DH:AUTH, the two base64url keys of a subscription".into())
        })?;
        let keys = Self {
            p256dh: p256dh.to_owned(),
            auth: auth.to_owned(),
        };
        keys.decoded()?;
        Ok(keys)
    }

    fn decoded(&self) -> Result<(PublicKey, [u8; 16]), SealError> {
        let point = B64
            .decode(self.p256dh.trim_end_matches('='))
            .map_err(|e| SealError::Key(format!("p256dh is not base64url: {e}")))?;
        let public = PublicKey::from_sec1_bytes(&point)
            .map_err(|_| SealError::Key("p256dh is not a P-256 public key".into()))?;
        let auth = B64
            .decode(self.auth.trim_end_matches('='))
            .map_err(|e| SealError::Key(format!("auth is not base64url: {e}")))?;
        let auth: [u8; 16] = auth.try_into().map_err(|bytes: Vec<u8>| {
            SealError::Key(format!("auth is {} bytes, not 16", bytes.len()))
        })?;
        Ok((public, auth))
    }

    /// Encrypts `plaintext` for these keys, as a Web Push sender does: base64url of
    /// the `aes128gcm` body.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, SealError> {
        let (public, auth) = self.decoded()?;
        let body = web_push_native::encrypt(plaintext.to_vec(), &public, &auth.into())
            .map_err(|e| SealError::Encrypt(e.to_string()))?;
        Ok(B64.encode(body))
    }
}

/// A device's keys, by UNSID, with the host each subscription is to (an entry opens only
/// in a notification of that app, so a service cannot move it to another).
pub type Keyring = std::collections::HashMap<Unsid, (String, DeviceKeys)>;

/// A subscription's key pair and auth secret, made and kept by its device. The private
/// key never leaves it; `Debug` shows only the public part.
#[derive(Clone)]
pub struct DeviceKeys {
    secret: SecretKey,
    auth: [u8; 16],
}

impl fmt::Debug for DeviceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceKeys")
            .field("public", &self.public())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl DeviceKeys {
    /// New keys from the system's random source.
    pub fn generate() -> Result<Self, SealError> {
        let random = |bytes: &mut [u8]| {
            getrandom::fill(bytes).map_err(|e| SealError::Key(format!("no randomness: {e}")))
        };
        let mut auth = [0u8; 16];
        random(&mut auth)?;
        // A random 32-byte string is a valid scalar but for about 2^-32 of them.
        loop {
            let mut scalar = [0u8; 32];
            random(&mut scalar)?;
            if let Ok(secret) = SecretKey::from_slice(&scalar) {
                return Ok(Self { secret, auth });
            }
        }
    }

    /// The stored form: the 32-byte private scalar, then the auth secret.
    pub fn to_bytes(&self) -> [u8; 48] {
        let mut out = [0u8; 48];
        out[..32].copy_from_slice(&self.secret.to_bytes());
        out[32..].copy_from_slice(&self.auth);
        out
    }

    /// Reads what [`Self::to_bytes`] wrote.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        let (scalar, auth) = bytes
            .split_at_checked(32)
            .filter(|(_, auth)| auth.len() == 16)
            .ok_or_else(|| {
                SealError::Key(format!("stored keys are {} bytes, not 48", bytes.len()))
            })?;
        let secret = SecretKey::from_slice(scalar)
            .map_err(|_| SealError::Key("the stored private key is not a P-256 key".into()))?;
        let mut kept = [0u8; 16];
        kept.copy_from_slice(auth);
        Ok(Self { secret, auth: kept })
    }

    /// The public parts, for the backend.
    pub fn public(&self) -> PublicKeys {
        let point = self.secret.public_key().as_affine().to_encoded_point(false);
        PublicKeys {
            p256dh: B64.encode(point.as_bytes()),
            auth: B64.encode(self.auth),
        }
    }

    /// Decrypts an entry's content made for these keys.
    pub fn open(&self, content: &str) -> Result<Vec<u8>, SealError> {
        let body = decode(content)?;
        check_header(&body)?;
        web_push_native::decrypt(body, &self.secret, &self.auth.into())
            .map_err(|e| SealError::Decrypt(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
