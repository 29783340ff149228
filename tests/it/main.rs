//! The one integration test binary: the real service on 127.0.0.1 port 0 (in-process
//! and as the real binary), real HTTP, real WebSockets, real admin socket.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::large_enum_variant,
    missing_docs
)]

mod admin;
mod agent;
mod backup;
mod batches;
mod browser;
mod channel;
mod chaos;
mod cli;
mod config;
mod crash;
mod desktop;
mod expiry;
mod full_disk;
mod graph_api;
mod helpers;
mod home;
mod hostile;
mod hostile_service;
mod ipc;
mod lifecycle;
mod limits;
mod local_mode;
mod metrics;
mod mine;
mod node_marks;
mod nodes;
mod outbox;
mod pg;
mod process;
mod requests;
mod sealed;
mod stand_in;
mod supervisor;
mod test_agent;
mod tls;
mod tray;
mod tray_agent;
mod tray_panel;
mod web_app;
mod web_session;
