//! The HTTP accept loop: every connection under a cap, with timeouts, so no client can
//! hold the service's sockets or file descriptors by being slow.
//!
//! `axum::serve` sets no header timeout and has no connection cap: slow clients (one
//! header byte a second) stayed open for ever, and once the process ran out of file
//! descriptors `accept` failed for everyone. This loop serves the same router through
//! hyper directly:
//!
//! - at most `max_connections` open at once, and at most `max_connections_per_address`
//!   from one client address (IPv6 by its /64), so one host cannot take every slot;
//!   one more is answered `503` with `Retry-After` and closed, so `accept` keeps
//!   draining the backlog. The refusal is written, the socket's sending side shut, and
//!   what the client sent read and dropped until it closes (a second at most, up to
//!   [`LINGERING`] refusals at once): closing a socket with unread data resets it, and
//!   the client would see a reset instead of the `503`;
//! - a request's headers must be complete within `header_timeout` of the connection
//!   opening or of the previous response (so this is also the idle keep-alive limit);
//! - bodies have their own limit (`body_timeout`, enforced where they are read);
//! - the soft `RLIMIT_NOFILE` is raised to the hard limit at start ([`raise_fd_limit`]).
//!
//! Each request carries its peer address as [`ConnectInfo`] (sign-in limits use it).
//! With TLS, the handshake must also finish within `header_timeout`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

/// What a connection over the cap is told before it is closed.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: 103\r\nConnection: close\r\n\r\n{\"error\":{\"code\":\"serviceUnavailable\",\"message\":\"too many open connections; try again in a second\"}}";

/// Where connections come from: a listener, and TLS to wrap them in (none: plain HTTP).
pub struct Listening {
    /// The bound listener.
    pub listener: TcpListener,
    /// The TLS acceptor, when the service serves HTTPS.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// How many connections the accept loop serves at once.
#[derive(Clone, Copy, Debug)]
pub struct Caps {
    /// In all.
    pub total: usize,
    /// From one client address (IPv6 by its /64).
    pub per_address: usize,
}

/// Refusals kept open at once until their client has read the `503`; more are closed
/// at once.
pub const LINGERING: usize = 256;

/// Open connections by client address, each address under a cap.
struct PerAddress {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of an address; the count goes down when it is dropped.
struct AddressSlot {
    table: Arc<PerAddress>,
    addr: IpAddr,
}

impl PerAddress {
    fn take(table: &Arc<Self>, peer: IpAddr) -> Option<AddressSlot> {
        let addr = super::signin::counted(peer);
        let mut open = crate::sync::lock(&table.open);
        let count = open.entry(addr).or_insert(0);
        if *count >= table.cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            table: table.clone(),
            addr,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = crate::sync::lock(&self.table.open);
        if let Some(count) = open.get_mut(&self.addr) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.addr);
            }
        }
    }
}

/// Accepts connections on `listening` until `shutdown`, serving `app` on each; returns
/// once accepting stopped, with every open connection told to finish (tracked in
/// `connections`).
pub async fn accept_loop(
    Listening { listener, tls }: Listening,
    app: Router,
    caps: Caps,
    state: &super::State,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    let settings = &state.settings;
    let slots = Arc::new(Semaphore::new(caps.total));
    let per_address = Arc::new(PerAddress {
        cap: caps.per_address.max(1),
        open: Mutex::default(),
    });
    let lingering = Arc::new(Semaphore::new(LINGERING));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: the cap should prevent them; do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(address_slot) = PerAddress::take(&per_address, peer.ip()) else {
            tracing::debug!(%peer, "connection refused: its address holds as many as it may");
            refuse(tcp, &lingering);
            state.metrics.refused(super::metrics::Refusal::AddressCap);
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: the open-connection cap is reached");
            refuse(tcp, &lingering);
            state
                .metrics
                .refused(super::metrics::Refusal::ConnectionCap);
            continue;
        };
        let app = app.clone();
        let shutdown = shutdown.clone();
        let timeouts = (settings.header_timeout, settings.body_timeout);
        let tls = tls.clone();
        connections.spawn(async move {
            // Channel frames are small and latency-bound: send each at once (no Nagle).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
            match tls {
                None => serve_one(tcp, peer, app, timeouts, shutdown).await,
                Some(tls) => {
                    let handshake = tokio::time::timeout(timeouts.0, tls.accept(tcp)).await;
                    match handshake {
                        Ok(Ok(stream)) => serve_one(stream, peer, app, timeouts, shutdown).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop((slot, address_slot));
        });
    }
}

/// Tells a connection over a cap to come back later: the `503` is written, the sending
/// side shut, and what the client sends read and dropped until it closes, within a
/// second (so it reads the answer rather than a reset). With [`LINGERING`] refusals
/// already in progress, the answer is written if the socket takes it at once and the
/// connection closed.
fn refuse(mut tcp: TcpStream, lingering: &Arc<Semaphore>) {
    let Ok(permit) = lingering.clone().try_acquire_owned() else {
        let _ = tcp.try_write(BUSY);
        return;
    };
    tokio::spawn(async move {
        let answer = async {
            tcp.write_all(BUSY).await?;
            tcp.shutdown().await?;
            let mut sink = [0; 4096];
            let mut drained = 0;
            while drained < 64 * 1024 {
                match tcp.read(&mut sink).await? {
                    0 => break,
                    n => drained += n,
                }
            }
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), answer).await;
        drop(permit);
    });
}

async fn serve_one<S>(
    stream: S,
    peer: SocketAddr,
    app: Router,
    (header_timeout, body_timeout): (Duration, Duration),
    shutdown: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let mut request = request.map(|body| with_deadline(Body::new(body), body_timeout));
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().call(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// The error a body read past its deadline ends with (answered `408`).
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// `body`, ending with [`BodyTimedOut`] if it is not complete within `limit` of now.
fn with_deadline(body: Body, limit: Duration) -> Body {
    let deadline = tokio::time::Instant::now() + limit;
    let chunks =
        futures_util::stream::unfold(Some(body.into_data_stream()), move |stream| async move {
            let mut stream = stream?;
            match tokio::time::timeout_at(deadline, stream.next()).await {
                Ok(Some(chunk)) => Some((chunk, Some(stream))),
                Ok(None) => None,
                Err(_) => Some((Err(axum::Error::new(BodyTimedOut(limit))), None)),
            }
        });
    Body::from_stream(chunks)
}

/// Raises the soft limit on open files to the hard limit (Unix), so the connection cap
/// rather than `EMFILE` decides who is served. Returns the soft limit now in force.
#[cfg(unix)]
pub fn raise_fd_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "could not raise the open-file limit");
            return getrlimit(Resource::Nofile).current;
        }
    }
    limit.current
}

/// No file limit to raise off Unix.
#[cfg(not(unix))]
pub fn raise_fd_limit() -> Option<u64> {
    None
}
