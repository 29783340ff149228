//! End-to-end encrypted content (`tidings::protocol::sealed`, `docs/encryption.md`),
//! checked against an independent implementation: Python's `http_ece` from PyPI, in
//! `target/python` (`scripts/python-env.sh`, run by the test command). Here: content it
//! encrypts for a device's keys opens there, in one record and in several, and content
//! tidings encrypts opens in `http_ece`; the service (`service.rs`), the agents
//! (`agents.rs`), the web app (`browser.rs`) and the command line (`cli.rs`) in their
//! files.

mod agents;
mod browser;
mod cli;
mod service;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tidings::protocol::sealed::{DeviceKeys, PublicKeys, SealError};

/// The environment's Python; a missing one fails the test and says how to make it.
fn python() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/python/bin/python");
    assert!(
        path.exists(),
        "{} is missing: run ./scripts/python-env.sh (the test command does)",
        path.display()
    );
    path
}

/// Runs `script` with `input` on stdin; its stdout.
fn run_python(script: &str, input: &str) -> String {
    run_python_with(script, input, &[])
}

/// [`run_python`] with `env` added to its environment.
fn run_python_with(script: &str, input: &str, env: &[(&str, &str)]) -> String {
    let mut child = Command::new(python())
        .args(["-c", script])
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Encrypts stdin's message (line 3) for p256dh and auth (lines 1 and 2) with record
/// size `rs` (line 4), as a Web Push application server does.
const ENCRYPT: &str = r#"
import base64, sys, http_ece
from cryptography.hazmat.primitives.asymmetric import ec
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
p256dh, auth, message, rs = sys.stdin.read().split("\n")[:4]
sender = ec.generate_private_key(ec.SECP256R1())
body = http_ece.encrypt(message.encode(), private_key=sender, dh=b64d(p256dh),
                        auth_secret=b64d(auth), version="aes128gcm", rs=int(rs))
print(base64.urlsafe_b64encode(body).decode())
"#;

/// Decrypts stdin's body (line 3) with the device's private scalar and auth secret
/// (lines 1 and 2, base64url), as a user agent does.
const DECRYPT: &str = r#"
import base64, sys, http_ece
from cryptography.hazmat.primitives.asymmetric import ec
def b64d(s): return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
scalar, auth, body = sys.stdin.read().split("\n")[:3]
device = ec.derive_private_key(int.from_bytes(b64d(scalar), "big"), ec.SECP256R1())
print(http_ece.decrypt(b64d(body), private_key=device, auth_secret=b64d(auth),
                       version="aes128gcm").decode())
"#;

#[test]
fn content_sealed_by_http_ece_opens_on_the_device_in_one_record_or_several() {
    let keys = DeviceKeys::generate().unwrap();
    let public = keys.public();
    let message = r#"{"visualContent":{"title":"Your code is 271828","body":"ünïcödé ✓"}}"#;
    for rs in [4096, 40] {
        let body = sealed_by_python_in(&public, message, rs);
        tidings::protocol::sealed::check_content(&body).unwrap();
        assert_eq!(keys.open(&body).unwrap(), message.as_bytes(), "rs {rs}");
        // Another device of the same user cannot read it.
        let other = DeviceKeys::generate().unwrap();
        assert!(matches!(other.open(&body), Err(SealError::Decrypt(_))));
    }
}

#[test]
fn content_tidings_seals_opens_in_http_ece() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let keys = DeviceKeys::generate().unwrap();
    let message = r#"{"rawContent":"a backend's own data"}"#;
    let body = keys.public().seal(message.as_bytes()).unwrap();
    let stored = keys.to_bytes();
    let opened = run_python(
        DECRYPT,
        &format!(
            "{}\n{}\n{body}\n",
            b64.encode(&stored[..32]),
            b64.encode(&stored[32..])
        ),
    );
    assert_eq!(opened, message);
}

/// Encrypts `message` for `keys` with Python's http_ece, in one record.
pub fn sealed_by_python(keys: &PublicKeys, message: &str) -> String {
    sealed_by_python_in(keys, message, 4096)
}

/// Encrypts `message` for `keys` with Python's http_ece, in records of `size` bytes.
pub fn sealed_by_python_in(keys: &PublicKeys, message: &str, size: u32) -> String {
    run_python(
        ENCRYPT,
        &format!("{}\n{}\n{message}\n{size}\n", keys.p256dh, keys.auth),
    )
}

/// The bytes of base64url `content` (padded or not).
pub fn ciphertext(content: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(content.trim_end_matches('='))
        .unwrap()
}

/// `bytes` as base64url without padding.
pub fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
