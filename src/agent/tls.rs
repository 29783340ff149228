//! TLS for the agent's connections (`crate::tls`): the platform's roots plus, optionally,
//! the CAs of `--ca-file` (a self-hosted service with its own CA). One config serves
//! HTTP and the WebSocket.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;

pub use crate::tls::install_provider;

use super::AgentError;

/// The client TLS configuration: platform roots plus those in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, AgentError> {
    crate::tls::client_config(ca_file).map_err(AgentError::Config)
}
