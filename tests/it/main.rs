//! The one integration test binary: the real service on 127.0.0.1 port 0 (in-process
//! and as the real binary), real HTTP, real WebSockets, real admin socket.

mod graph_api;
mod helpers;
