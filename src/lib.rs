//! # tidings
//!
//! A self-hostable user notification system in the shape of the retired Microsoft
//! Graph notifications API: an app's backend posts a notification to a *user*; the
//! service stores it durably and fans it out to every device the user signed in on;
//! read and dismiss state is synced so a notification handled on one device is handled
//! on all of them.
//!
//! ## Components
//!
//! | module | owns |
//! |---|---|
//! | [`protocol`] | wire and domain types of both sides: the notification resource and its validation, channel frames, the Graph error body, id newtypes |
//! | [`config`] | default paths and the config file (every key, its sources, its errors) |
//! | [`sync`] | poison-tolerant locks (usable by every layer, like `config`) |
//! | [`embedded`] | sled as both stores open and flush it (usable by every layer) |
//! | [`supervisor`] | readiness, status and watchdog for systemd (usable by every layer) |
//! | [`tls`] | the TLS client configuration: platform roots plus a CA file (usable by every layer) |
//! | [`ipc`] | JSON-RPC 2.0 over local sockets (Unix sockets, Windows named pipes): codec, `Server` (calls a `Handler`), `Client` |
//! | [`service`] | the notification service: HTTP routes, auth, store (sled with group commit, or PostgreSQL shared by several nodes), feed, hub (fan-out), channel, admin, purge |
//! | [`agent`] | the device agent: cache, push channel client, outbox, subscriptions, TLS, toasts, the local IPC handler |
//! | [`cli`] | command bodies and output formatting; local mode's wiring |
//!
//! ## The layer rule
//!
//! Arrows only point down: `cli -> {agent, service, ipc, protocol}`; `service -> {ipc,
//! protocol}`; `agent -> {ipc, protocol}`; `ipc -> protocol`; `protocol` imports nothing
//! of the crate (`config`, `sync`, `embedded`, `supervisor` and `tls` are usable by all). The agent and
//! the service never import each other: they meet only in `protocol`, so a test can run
//! the real agent against the real service in one process. Local mode is wiring in
//! `cli`, not a dependency.
//!
//! `docs/architecture.md` follows one notification through these modules.
//!
//! ## Durability
//!
//! A `201` from the service means the notification and its feed entry are on disk: the
//! store's group committer flushes before any writer is answered, and publishes a change
//! to devices only after it is durable.

pub mod agent;
pub mod cli;
pub mod config;
pub mod embedded;
pub mod ipc;
pub mod protocol;
pub mod service;
pub mod supervisor;
pub mod sync;
pub mod tls;
