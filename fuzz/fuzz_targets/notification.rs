//! What an app backend posts (`POST /beta/me/notifications`) and a device patches
//! (`PATCH /v1/me/notifications/{id}`): parsing and every rule of the resource must
//! answer an error, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::protocol::{NotificationInput, StatePatch, Timestamp};

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_millis(1_800_000_000_000);
    if let Ok(input) = NotificationInput::from_json(data) {
        let _ = input.with_default_host("example.com").validate(now);
    }
    if let Ok(patch) = StatePatch::from_json(data) {
        let _ = patch.check();
    }
});
