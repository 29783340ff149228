//! Local JSON-RPC 2.0 over a Unix socket, one JSON object per line.
//!
//! The codec ([`codec`]), a [`Server`] that calls a [`Handler`], and a [`Client`].
//! The service's admin socket uses it today; the agent's app IPC will use the same
//! pieces. Only `protocol`-level concerns (JSON values) cross this boundary.

#[cfg(unix)]
mod client;
pub mod codec;
#[cfg(unix)]
mod server;

#[cfg(unix)]
pub use client::{Client, ClientError};
pub use codec::{Request, Response, RpcError};
#[cfg(unix)]
pub use server::{Handler, Peer, Server, ServerOptions};
