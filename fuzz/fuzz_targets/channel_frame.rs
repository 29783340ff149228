//! A WebSocket text frame on the push channel, from either side: the service reads
//! client frames (acks, pongs), the agent server frames (changes, synced, errors).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::protocol::frames::{ClientFrame, ServerFrame};

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ClientFrame>(data);
    let _ = serde_json::from_slice::<ServerFrame>(data);
});
