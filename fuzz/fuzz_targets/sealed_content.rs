//! Encrypted content as a service (or anyone on its path) may send it to an agent: the
//! service's shape check and the device's opening must fail with an error, never panic
//! (ece-native 0.5 panics on a record size of 0; `sealed.rs` checks the header first).
#![no_main]

use base64::Engine;
use libfuzzer_sys::fuzz_target;
use tidings::protocol::sealed::{DeviceKeys, check_content};

/// RFC 8291 Appendix A's user agent: its private key, then its auth secret.
const KEYS: [u8; 48] = [
    0xab, 0x57, 0x57, 0xa7, 0x0d, 0xd4, 0xa5, 0x3e, 0x55, 0x3a, 0x6b, 0xbf, 0x71, 0xff, 0xef,
    0xea, 0x28, 0x74, 0xec, 0x07, 0xa6, 0xb3, 0x79, 0xe3, 0xc4, 0x8f, 0x89, 0x5a, 0x02, 0xdc,
    0x33, 0xde, 0x05, 0x30, 0x59, 0x32, 0xa1, 0xc7, 0xea, 0xbe, 0x13, 0xb6, 0xce, 0xc9, 0xfd,
    0xa4, 0x88, 0x82,
];

fuzz_target!(|data: &[u8]| {
    let keys = DeviceKeys::from_bytes(&KEYS).expect("the RFC's keys");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data);
    let _ = check_content(&text);
    let _ = keys.open(&text);
    if let Ok(raw) = std::str::from_utf8(data) {
        let _ = keys.open(raw);
    }
});
