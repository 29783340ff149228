//! A line a local app sends the agent: the JSON-RPC envelope, then the params of each
//! method. Errors are answers (JSON-RPC error objects), never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tidings::ipc::codec::parse_request;
use tidings::protocol::local::{
    DndParams, GetParams, IdsParams, ListParams, SubscribeParams, WatchParams,
};

fn params<T: serde::de::DeserializeOwned>(value: &serde_json::Value) {
    let _ = serde_json::from_value::<T>(value.clone());
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = parse_request(data) else {
        return;
    };
    let Some(value) = request.params else { return };
    params::<ListParams>(&value);
    params::<GetParams>(&value);
    params::<IdsParams>(&value);
    params::<SubscribeParams>(&value);
    params::<WatchParams>(&value);
    params::<DndParams>(&value);
});
