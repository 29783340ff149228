//! [`AgentError`]: what the agent's operations fail with, and whether trying again helps.

use super::store::AgentStoreError;

/// Errors of the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The settings cannot work (bad URL, plain HTTP to a remote host, ...).
    #[error("{0}")]
    Config(String),
    /// The local store failed.
    #[error(transparent)]
    Store(#[from] AgentStoreError),
    /// The service could not be reached or answered oddly; retried.
    #[error("{0}")]
    Network(String),
    /// The service refused a request for good (the message says why).
    #[error("{0}")]
    Refused(String),
    /// The service refused the access token (expired or revoked); get a new one.
    #[error("the service refused the access token")]
    TokenRejected,
    /// The service refused the device credential (revoked, or signed in elsewhere).
    #[error("the service refused this device's credential (revoked?); sign in again")]
    SignedOut,
}

impl AgentError {
    /// Whether waiting and trying again may help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, AgentError::Network(_) | AgentError::TokenRejected)
    }
}
