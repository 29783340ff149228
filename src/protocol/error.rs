//! The Graph error body: one shape for every error response of the service.
//!
//! `{"error":{"code":"invalidRequest","message":"...","innerError":{"request-id":"...","date":"..."}}}`
//! [`ErrorCode`] fixes the code and the HTTP status together, so the two never disagree.

use serde::{Deserialize, Serialize};

use super::time::Timestamp;

/// The kinds of error the service answers with, each with its HTTP status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    /// 400: the body or a field is invalid.
    InvalidRequest,
    /// 401: missing, invalid, expired or revoked token.
    Unauthenticated,
    /// 403: a valid token that may not do this.
    Forbidden,
    /// 404: no such resource.
    NotFound,
    /// 405: the path exists but not with this method (the `Allow` header lists those that do).
    MethodNotAllowed,
    /// 408: the request body did not arrive in time.
    RequestTimeout,
    /// 409: conflicts with what exists.
    Conflict,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: wrong content type or encoding.
    UnsupportedMediaType,
    /// 429: rate limited.
    TooManyRequests,
    /// 500: a fault of the service.
    InternalError,
    /// 507: the service's disk is full; nothing was stored.
    InsufficientStorage,
    /// 503: shutting down or not ready.
    ServiceUnavailable,
}

impl ErrorCode {
    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest => 400,
            ErrorCode::Unauthenticated => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::RequestTimeout => 408,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::TooManyRequests => 429,
            ErrorCode::InternalError => 500,
            ErrorCode::InsufficientStorage => 507,
            ErrorCode::ServiceUnavailable => 503,
        }
    }
}

/// The `innerError` object: lets an operator find the request in the service's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InnerError {
    /// The request's id, also logged by the service.
    #[serde(rename = "request-id")]
    pub request_id: String,
    /// When the error happened.
    pub date: Timestamp,
}

/// The `error` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// Machine-readable kind.
    pub code: ErrorCode,
    /// What went wrong, for a person; names the field for validation errors.
    pub message: String,
    /// Correlation data.
    pub inner_error: InnerError,
}

/// The whole error body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

impl ErrorBody {
    /// An error body with a fresh request id.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                inner_error: InnerError {
                    request_id: uuid::Uuid::new_v4().to_string(),
                    date: Timestamp::now(),
                },
            },
        }
    }
}
