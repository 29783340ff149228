//! `ApiError`: every failure of an HTTP route, answered with the Graph error body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::protocol::{ErrorBody, ErrorCode, ValidationError};
use crate::service::admission::Refused;
use crate::service::auth::AuthError;
use crate::service::store::{Failure, StoreError};

/// A route's error: a code (which fixes the status) and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The kind.
    pub code: ErrorCode,
    /// What went wrong and, where it helps, how to fix it.
    pub message: String,
    /// When to try again (`Retry-After`), for 429 and 503.
    pub retry_after: Option<std::time::Duration>,
}

impl ApiError {
    /// An error of `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client when to try again.
    #[must_use]
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// 401.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// 500, with the cause logged rather than shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            ErrorCode::InternalError,
            "internal error; see the service log",
        )
    }
}

impl ApiError {
    /// 507 for a full disk, 503 otherwise: the store takes no writes until it recovers.
    pub fn store_failed(failure: &Failure) -> Self {
        let code = if failure.disk_full {
            ErrorCode::InsufficientStorage
        } else {
            ErrorCode::ServiceUnavailable
        };
        Self::new(
            code,
            format!("{}; nothing was stored, try again later", failure.message),
        )
        .retry_after(STORE_RETRY)
    }
}

/// When a client is told to try a write again while the store is failed.
const STORE_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

impl From<ValidationError> for ApiError {
    fn from(err: ValidationError) -> Self {
        Self::bad_request(err.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(message) => Self::new(ErrorCode::Conflict, message),
            StoreError::Invalid(message) => Self::bad_request(message),
            StoreError::Unavailable(failure) => Self::store_failed(&failure),
            // The database handle failed (it is being replaced): not the request's fault.
            StoreError::Io(e) => {
                tracing::warn!(error = %e, "store read failed");
                Self::new(
                    ErrorCode::ServiceUnavailable,
                    "the store cannot be read just now; try again in a second",
                )
                .retry_after(std::time::Duration::from_secs(1))
            }
            other => Self::internal(&other),
        }
    }
}

impl From<Refused> for ApiError {
    fn from(err: Refused) -> Self {
        match err {
            Refused::Rate { wait, .. } => {
                Self::new(ErrorCode::TooManyRequests, err.to_string()).retry_after(wait)
            }
            Refused::Quota(_) => Self::new(ErrorCode::InsufficientStorage, err.to_string()),
            Refused::Store(e) => e.into(),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid | AuthError::Expired => Self::unauthenticated(err.to_string()),
            other => Self::internal(&other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody::new(self.code, self.message);
        if status.is_server_error() {
            tracing::error!(request_id = %body.error.inner_error.request_id, message = %body.error.message, "answered {status}");
        } else {
            tracing::debug!(request_id = %body.error.inner_error.request_id, message = %body.error.message, "answered {status}");
        }
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up, at least one.
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        if self.code == ErrorCode::Unauthenticated {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
