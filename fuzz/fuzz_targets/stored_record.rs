//! A value read back from a store (a damaged disk, an older version): decoding must
//! fail with an error the store reports, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::protocol::stored::{NotificationRecord, decode};

fuzz_target!(|data: &[u8]| {
    let _ = decode::<NotificationRecord>(data);
});
