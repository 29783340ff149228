//! Local JSON-RPC 2.0, one JSON object per line, over a Unix socket (a named pipe on
//! Windows).
//!
//! The codec ([`codec`]), a [`Server`] that calls a [`Handler`], a [`Client`], and the
//! platform transport under both. The service's admin socket and the agent's app IPC
//! use the same pieces. Only JSON values cross this boundary.

mod client;
pub mod codec;
mod lines;
mod server;
mod transport;

pub use client::{Client, ClientError};
pub use codec::{Reply, Request, Response, RpcError};
pub use server::{Handler, Peer, Server, ServerOptions};
