//! Credentials: password hashing, client secrets, refresh tokens and access tokens.
//!
//! - Passwords are hashed with argon2id (PHC strings), verified off the runtime threads.
//! - Client secrets and refresh tokens are 256 random bits; only their SHA-256 is stored
//!   and it is compared in constant time. A refresh token names its device
//!   (`rt.<device>.<secret>`) so the lookup is by id, never by secret.
//! - Access tokens are stateless: `at.<claims>.<mac>` with postcard claims and an
//!   HMAC-SHA-256 under a key kept in the store; they expire after an hour. Revocation
//!   is checked by the caller against the device or app record on every use.

use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::protocol::{ClientId, DeviceId, Timestamp, UserId};

/// How long an access token is valid by default (`access_token_ttl`).
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Why a credential was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Not a token this service issued, or tampered with.
    #[error("the token is not valid")]
    Invalid,
    /// Issued by this service but past its expiry.
    #[error("the token has expired; get a new one from /oauth2/v2.0/token")]
    Expired,
    /// The system random source failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// Hashing failed.
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// What an access token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Claims {
    /// An app backend (client credentials).
    App {
        /// The app.
        client_id: ClientId,
    },
    /// A signed-in device of a user.
    Device {
        /// The device.
        device: DeviceId,
        /// Its user.
        user: UserId,
    },
}

#[derive(Serialize, Deserialize)]
struct SignedClaims {
    claims: Claims,
    expires: Timestamp,
}

/// Issues and checks access tokens with the service's signing key.
#[derive(Clone)]
pub struct TokenSigner {
    key: Vec<u8>,
    ttl: Duration,
}

impl TokenSigner {
    /// A signer with `key` (kept in the store so tokens survive restarts).
    pub fn new(key: Vec<u8>, ttl: Duration) -> Self {
        Self { key, ttl }
    }

    /// How long the tokens it issues are valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, data: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(data);
        mac
    }

    /// A token for `claims`, valid for its time to live from `now`.
    pub fn issue(&self, claims: Claims, now: Timestamp) -> String {
        let signed = SignedClaims {
            claims,
            expires: now.plus(self.ttl),
        };
        let body = postcard::to_stdvec(&signed).unwrap_or_default();
        let tag = self.mac(&body).finalize().into_bytes();
        format!("at.{}.{}", B64.encode(&body), B64.encode(tag))
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, AuthError> {
        let mut parts = token.split('.');
        let (Some("at"), Some(body), Some(tag), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Invalid);
        };
        let body = B64.decode(body).map_err(|_| AuthError::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| AuthError::Invalid)?;
        self.mac(&body)
            .verify_slice(&tag)
            .map_err(|_| AuthError::Invalid)?;
        let signed: SignedClaims = postcard::from_bytes(&body).map_err(|_| AuthError::Invalid)?;
        if signed.expires <= now {
            return Err(AuthError::Expired);
        }
        Ok(signed.claims)
    }
}

/// An argon2id hash of a password nobody knows: unknown user names are checked against
/// it so that sign-in takes as long for them as for real users.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$kYGwY1l6uVG0kXH1b0lS6o8kq3G1m0o0Wm1zA7Zx2dU";

/// 32 random bytes.
pub fn random_bytes() -> Result<[u8; 32], AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A random secret as URL-safe text, and its SHA-256 for storage.
pub fn new_secret() -> Result<(String, Vec<u8>), AuthError> {
    let secret = B64.encode(random_bytes()?);
    let hash = sha256(&secret);
    Ok((secret, hash))
}

/// A random opaque id (e.g. a UNSID): 192 bits, URL-safe, and never starting with `-`
/// or `_`, so that it can follow a flag on a command line (`--unsid ID`) without being
/// taken for one.
pub fn random_id() -> Result<String, AuthError> {
    loop {
        let id = B64.encode(&random_bytes()?[..24]);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Ok(id);
        }
    }
}

/// SHA-256 of a secret.
pub fn sha256(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Whether `secret` hashes to `stored`, in constant time.
pub fn secret_matches(secret: &str, stored: &[u8]) -> bool {
    sha256(secret).ct_eq(stored).into()
}

/// A refresh token for `device` with its secret.
pub fn refresh_token(device: &DeviceId, secret: &str) -> String {
    format!("rt.{device}.{secret}")
}

/// Splits a refresh token into the device it names and its secret.
pub fn parse_refresh_token(token: &str) -> Option<(DeviceId, &str)> {
    let rest = token.strip_prefix("rt.")?;
    let (device, secret) = rest.split_once('.')?;
    Some((DeviceId::new(device), secret))
}

/// Hashes a password with argon2id. CPU-heavy: call from a blocking thread.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    hash_password_in(password, &mut Vec::new())
}

/// [`hash_password`] with argon2's working memory in `memory`, kept by the caller as
/// [`verify_password_in`]'s is: the service's password threads hash and check with one
/// buffer each for their life (a fresh 19 MiB per hash on whichever thread ran it was
/// kept by glibc: an idle service held 220 MiB after 30 password operations).
pub fn hash_password_in(password: &str, memory: &mut Vec<Block>) -> Result<String, AuthError> {
    let salt_bytes = random_bytes()?;
    let salt =
        SaltString::encode_b64(&salt_bytes[..16]).map_err(|e| AuthError::Hash(e.to_string()))?;
    hash_with_salt(password, &salt, memory)
}

/// The PHC string of `password` hashed with `salt` and argon2's default parameters, as
/// `Argon2::default().hash_password` writes it.
fn hash_with_salt(
    password: &str,
    salt: &SaltString,
    memory: &mut Vec<Block>,
) -> Result<String, AuthError> {
    let fail = |e: &dyn std::fmt::Display| AuthError::Hash(e.to_string());
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let raw_salt = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .map_err(|e| fail(&e))?;
    memory.resize(params.block_count(), Block::default());
    let mut out = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), raw_salt, &mut out, &mut memory[..])
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params).try_into().map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Checks a password against its argon2id hash. CPU-heavy: call from a blocking thread.
pub fn verify_password(password: &str, hash: &str) -> bool {
    verify_password_in(password, hash, &mut Vec::new())
}

/// [`verify_password`] with argon2's working memory (19 MiB with the default
/// parameters) in `memory`, kept by the caller between checks: a password-check thread
/// reuses one buffer for its life instead of leaving glibc a freed 19 MiB block per
/// check, which it keeps.
pub fn verify_password_in(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm), Some(salt), Some(expected)) = (
        Params::try_from(&parsed),
        Algorithm::try_from(parsed.algorithm),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    memory.resize(params.block_count(), Block::default());
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..])
        .is_ok()
        && bool::from(out.as_slice().ct_eq(expected.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_made_in_kept_memory_is_argon2s_own_and_the_memory_is_reused() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(&[9; 16]).unwrap();
        let mut memory = Vec::new();
        let ours = hash_with_salt("hunter2", &salt, &mut memory).unwrap();
        let theirs = Argon2::default()
            .hash_password(b"hunter2", &salt)
            .unwrap()
            .to_string();
        assert_eq!(ours, theirs);
        let kept = memory.as_ptr();
        let again = hash_password_in("hunter2", &mut memory).unwrap();
        assert_eq!(
            memory.as_ptr(),
            kept,
            "the second hash used the same memory"
        );
        assert!(verify_password_in("hunter2", &again, &mut memory));
        assert!(!verify_password_in("hunter3", &again, &mut memory));
    }

    fn signer() -> TokenSigner {
        TokenSigner::new(vec![7; 32], ACCESS_TOKEN_TTL)
    }

    #[test]
    fn access_tokens_round_trip_and_expire() {
        let now = Timestamp::from_millis(1_000_000);
        let claims = Claims::App {
            client_id: ClientId::new("c"),
        };
        let token = signer().issue(claims.clone(), now);
        assert_eq!(signer().verify(&token, now), Ok(claims));
        let later = now.plus(ACCESS_TOKEN_TTL);
        assert_eq!(signer().verify(&token, later), Err(AuthError::Expired));
    }

    #[test]
    fn tampered_or_foreign_tokens_are_invalid() {
        let now = Timestamp::from_millis(0);
        let token = signer().issue(
            Claims::App {
                client_id: ClientId::new("c"),
            },
            now,
        );
        let other = TokenSigner::new(vec![8; 32], ACCESS_TOKEN_TTL);
        assert_eq!(other.verify(&token, now), Err(AuthError::Invalid));
        let mut forged = token.clone();
        forged.insert(5, 'A');
        assert_eq!(signer().verify(&forged, now), Err(AuthError::Invalid));
        assert_eq!(signer().verify("garbage", now), Err(AuthError::Invalid));
    }

    #[test]
    fn random_ids_never_look_like_flags() {
        for _ in 0..2000 {
            let id = random_id().unwrap();
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
            assert_eq!(id.len(), 32);
        }
    }

    #[test]
    fn passwords_and_secrets_verify() {
        let hash = hash_password("hunter2").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("hunter2", &hash));
        assert!(!verify_password("hunter3", &hash));
        let mut memory = Vec::new();
        for _ in 0..2 {
            assert!(verify_password_in("hunter2", &hash, &mut memory));
            assert!(!verify_password_in("hunter3", &hash, &mut memory));
        }
        assert!(!verify_password_in("hunter2", "not a hash", &mut memory));
        assert!(
            PasswordHash::new(DUMMY_HASH).is_ok(),
            "the dummy hash must cost a real check"
        );
        let (secret, stored) = new_secret().unwrap();
        assert!(secret.len() >= 43, "256 bits");
        assert!(secret_matches(&secret, &stored));
        assert!(!secret_matches("x", &stored));
        let token = refresh_token(&DeviceId::new("d1"), &secret);
        assert_eq!(
            parse_refresh_token(&token),
            Some((DeviceId::new("d1"), secret.as_str()))
        );
    }
}
