//! JSON-RPC 2.0 messages, one per line (the lines are read by [`super::lines`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// Longest line accepted, newline excluded.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Invalid JSON.
pub const PARSE_ERROR: i32 = -32700;
/// Valid JSON, but not a JSON-RPC request.
pub const INVALID_REQUEST: i32 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i32 = -32601;
/// The params do not fit the method.
pub const INVALID_PARAMS: i32 = -32602;
/// The handler failed.
pub const INTERNAL_ERROR: i32 = -32603;
/// The peer runs as another user than the server; the connection is closed.
pub const PEER_REFUSED: i32 = -32001;
/// The server serves as many connections as it may; try again later.
pub const BUSY: i32 = -32002;

/// A request (or, without `id`, a notification).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// Echoed in the response; absent for notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// Its parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}

impl Request {
    /// A request with `id`.
    pub fn new(id: u64, method: &str, params: Value) -> Self {
        Self {
            jsonrpc: "2.0".to_owned(),
            id: Some(Value::from(id)),
            method: method.to_owned(),
            params: Some(params),
        }
    }
}

/// An error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct RpcError {
    /// One of the codes above.
    pub code: i32,
    /// For a person.
    pub message: String,
    /// Extra detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with `code` and `message`.
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// `-32602` for params that do not deserialize.
    pub fn invalid_params(err: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, format!("invalid params: {err}"))
    }
}

/// A response: exactly one of `result` and `error`. A server answers with a [`Reply`];
/// a client reads the result as a [`Value`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response<R = Value> {
    /// Always `"2.0"`.
    pub jsonrpc: String,
    /// The request's id (`null` when it could not be read).
    pub id: Value,
    /// The result on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<R>,
    /// The error on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
}

impl<R> Response<R> {
    /// A success or failure answer to `id`.
    pub fn new(id: Value, outcome: Result<R, RpcError>) -> Self {
        let (result, error) = match outcome {
            Ok(value) => (Some(value), None),
            Err(err) => (None, Some(err)),
        };
        Self {
            jsonrpc: "2.0".to_owned(),
            id,
            result,
            error,
        }
    }
}

impl Response {
    /// The outcome carried.
    pub fn into_result(self) -> Result<Value, RpcError> {
        match (self.result, self.error) {
            (_, Some(err)) => Err(err),
            (Some(value), None) => Ok(value),
            (None, None) => Ok(Value::Null),
        }
    }
}

/// What a handler answers: a value, or JSON it has already written. A large result
/// (a page of history) is written once, item by item, instead of being built as a tree
/// of values and then written.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A value, written when the answer is.
    Value(Value),
    /// One JSON value, already written.
    Json(Box<RawValue>),
}

impl From<Value> for Reply {
    fn from(value: Value) -> Self {
        Self::Value(value)
    }
}

impl Serialize for Reply {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(value) => value.serialize(serializer),
            Self::Json(json) => json.serialize(serializer),
        }
    }
}

/// One error line with a `null` id (for a connection refused before any request).
pub fn error_line(code: i32, message: impl Into<String>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec(&Response::<Value>::new(
        Value::Null,
        Err(RpcError::new(code, message)),
    ))
    .unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Parses one line into a request, or the error response to send back.
pub fn parse_request(line: &[u8]) -> Result<Request, Box<Response<Reply>>> {
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        Box::new(Response::new(
            Value::Null,
            Err(RpcError::new(PARSE_ERROR, format!("parse error: {e}"))),
        ))
    })?;
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    let request: Request = serde_json::from_value(value).map_err(|e| {
        let err = RpcError::new(INVALID_REQUEST, format!("invalid request: {e}"));
        Box::new(Response::new(id.clone(), Err(err)))
    })?;
    if request.jsonrpc != "2.0" {
        let err = RpcError::new(INVALID_REQUEST, "invalid request: jsonrpc must be \"2.0\"");
        return Err(Box::new(Response::new(id, Err(err))));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_get_the_right_codes() {
        assert_eq!(
            parse_request(b"{oops").unwrap_err().error.unwrap().code,
            PARSE_ERROR
        );
        let wrong = parse_request(br#"{"jsonrpc":"1.0","id":4,"method":"x"}"#).unwrap_err();
        assert_eq!(wrong.error.unwrap().code, INVALID_REQUEST);
        assert_eq!(wrong.id, Value::from(4));
        assert!(parse_request(br#"{"jsonrpc":"2.0","id":1,"method":"status"}"#).is_ok());
    }
}
