//! The HTTP accept loop: every connection under a cap, with timeouts, so no client can
//! hold the service's sockets or file descriptors by being slow.
//!
//! `axum::serve` sets no header timeout and has no connection cap: slow clients (one
//! header byte a second) stayed open for ever, and once the process ran out of file
//! descriptors `accept` failed for everyone. This loop serves the same router through
//! hyper directly:
//!
//! - at most `max_connections` open at once; one more is answered `503` with
//!   `Retry-After` and closed at once, so `accept` keeps draining the backlog;
//! - a request's headers must be complete within `header_timeout` of the connection
//!   opening or of the previous response (so this is also the idle keep-alive limit);
//! - bodies have their own limit (`body_timeout`, enforced where they are read);
//! - the soft `RLIMIT_NOFILE` is raised to the hard limit at start ([`raise_fd_limit`]).
//!
//! Each request carries its peer address as [`ConnectInfo`] (sign-in limits use it).
//! With TLS, the handshake must also finish within `header_timeout`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
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

/// Accepts connections on `listening` until `shutdown`, serving `app` on each; returns
/// once accepting stopped, with every open connection told to finish (tracked in
/// `connections`).
pub async fn accept_loop(
    Listening { listener, tls }: Listening,
    app: Router,
    max_connections: usize,
    state: &super::State,
    shutdown: CancellationToken,
    connections: TaskTracker,
) {
    let settings = &state.settings;
    let slots = Arc::new(Semaphore::new(max_connections));
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
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(&tcp, peer);
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
            drop(slot);
        });
    }
}

/// Tells a connection over the cap to come back later, without waiting on it.
fn refuse(tcp: &TcpStream, peer: SocketAddr) {
    tracing::warn!(%peer, "connection refused: the open-connection cap is reached");
    // A fresh socket's send buffer takes these few bytes at once; if not, just close.
    let _ = tcp.try_write(BUSY);
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
