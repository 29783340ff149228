//! The JSON-RPC server: accepts local connections, checks the peer's uid, reads lines,
//! calls the [`Handler`] and writes one response line per request. A handler may also
//! push notifications (requests without `id`) to its peer through [`Peer`], as the
//! agent's `watch` does; responses and pushes share one writer task per connection.
//! Every task (connections, writers, tasks a handler starts for a peer) is tracked:
//! [`Server::serve`] returns once all have ended.
//!
//! At most `max_clients` connections are served at once. When all are taken, a new one
//! ends the connection that has been quiet (no request) the longest, if it has been
//! quiet for a while ([`QUIET_ENOUGH`] by default): connections an app opened and left
//! idle cannot keep `tidings status` out. Only when every connection is busy is the new
//! one told the server is busy.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::codec::{self, Reply, Request, Response, RpcError};
use super::lines::{LineRead, LineReader};
use super::transport::{Listener, ServerStream};

/// Answers requests. One value serves every connection.
pub trait Handler: Send + Sync + 'static {
    /// Handles one request from `peer` and returns its result or error.
    fn call(
        &self,
        request: Request,
        peer: &Peer,
    ) -> impl Future<Output = Result<Reply, RpcError>> + Send;
}

/// Lines a connection may have queued for writing; a peer that reads slower than its
/// pushes arrive is disconnected rather than buffered without bound.
const OUTGOING: usize = 1024;

/// How long a connection must have sent no request before a new one may take its
/// place when every slot is taken (the default of [`ServerOptions::quiet_enough`]).
pub const QUIET_ENOUGH: Duration = Duration::from_secs(5);

/// The open connections: when each last sent a request, and how to end it.
#[derive(Default)]
struct Registry {
    open: Mutex<HashMap<u64, (Instant, CancellationToken)>>,
    next: AtomicU64,
}

/// One connection's entry in the [`Registry`]; removed when dropped.
struct Slot {
    registry: Arc<Registry>,
    id: u64,
}

impl Registry {
    fn join(self: &Arc<Self>, closed: CancellationToken) -> Slot {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        crate::sync::lock(&self.open).insert(id, (Instant::now(), closed));
        Slot {
            registry: self.clone(),
            id,
        }
    }

    /// Ends the connection quiet the longest, if it has been quiet for `enough`.
    fn end_the_quietest(&self, enough: Duration) -> bool {
        let open = crate::sync::lock(&self.open);
        let quietest = open
            .values()
            .filter(|(at, _)| at.elapsed() >= enough)
            .min_by_key(|(at, _)| *at);
        match quietest {
            Some((at, closed)) => {
                tracing::info!(quiet_for = ?at.elapsed(), "every IPC slot is taken: ending the connection quiet the longest");
                closed.cancel();
                true
            }
            None => false,
        }
    }
}

impl Slot {
    fn touch(&self) {
        if let Some(entry) = crate::sync::lock(&self.registry.open).get_mut(&self.id) {
            entry.0 = Instant::now();
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        crate::sync::lock(&self.registry.open).remove(&self.id);
    }
}

/// The connection a request came on: lets a handler push notifications to it later.
#[derive(Clone)]
pub struct Peer {
    outgoing: mpsc::Sender<Vec<u8>>,
    closed: CancellationToken,
    /// The server's tasks.
    tasks: TaskTracker,
}

impl Peer {
    /// Queues the notification `method(params)` for the peer. Returns `false` when the
    /// connection is gone, or when the peer is so far behind that it is cut off.
    pub fn notify(&self, method: &str, params: &Value) -> bool {
        let message = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params});
        let mut bytes = serde_json::to_vec(&message).unwrap_or_default();
        bytes.push(b'\n');
        match self.outgoing.try_send(bytes) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("an IPC peer fell {OUTGOING} messages behind; disconnecting it");
                self.closed.cancel();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// Resolves when the connection has ended.
    pub async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// Runs `task` for this peer, tracked with the server's tasks, until it finishes
    /// or the connection ends (whichever comes first).
    pub fn spawn<F>(&self, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let closed = self.closed.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = task => {}
                () = closed.cancelled() => {}
            }
        });
    }
}

/// Limits of a server.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Connections served at once; more wait to be accepted.
    pub max_clients: usize,
    /// Longest request line.
    pub max_line_bytes: usize,
    /// How long a connection must have been quiet to give its slot to a new one.
    pub quiet_enough: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_clients: 64,
            max_line_bytes: codec::MAX_LINE_BYTES,
            quiet_enough: QUIET_ENOUGH,
        }
    }
}

/// A bound JSON-RPC server socket (a named pipe on Windows).
pub struct Server {
    listener: Listener,
    options: ServerOptions,
}

impl Server {
    /// Binds `path` (see `transport`: mode 0600 and a stale socket replaced on Unix,
    /// a first pipe instance on Windows); a live server there is `AddrInUse`.
    pub async fn bind(path: &Path, options: ServerOptions) -> std::io::Result<Self> {
        Ok(Self {
            listener: Listener::bind(path).await?,
            options,
        })
    }

    /// Serves until `shutdown`, then waits for open connections and removes the socket.
    pub async fn serve<H: Handler>(mut self, handler: Arc<H>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.options.max_clients));
        let registry = Arc::new(Registry::default());
        let tasks = TaskTracker::new();
        loop {
            let (stream, check) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting an IPC connection failed");
                        continue;
                    }
                },
                () = shutdown.cancelled() => break,
            };
            if let Err(why) = check {
                tasks.spawn(refuse(stream, codec::error_line(codec::PEER_REFUSED, why)));
                continue;
            }
            let permit = match permits.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) if registry.end_the_quietest(self.options.quiet_enough) => {
                    // Its slot frees as soon as that connection has ended.
                    match tokio::time::timeout(
                        Duration::from_secs(1),
                        permits.clone().acquire_owned(),
                    )
                    .await
                    {
                        Ok(Ok(permit)) => permit,
                        _ => continue,
                    }
                }
                Err(_) => {
                    let busy = format!(
                        "busy: {} clients are connected and none is idle, the most served at once; try again later",
                        self.options.max_clients
                    );
                    tasks.spawn(refuse(stream, codec::error_line(codec::BUSY, busy)));
                    continue;
                }
            };
            let handler = handler.clone();
            let shutdown = shutdown.clone();
            let max = self.options.max_line_bytes;
            let peer_tasks = tasks.clone();
            let closed = CancellationToken::new();
            let slot = registry.join(closed.clone());
            tasks.spawn(async move {
                let _permit = permit;
                tokio::select! {
                    result = connection(stream, handler.as_ref(), max, peer_tasks, (closed, slot)) => {
                        if let Err(e) = result {
                            tracing::debug!(error = %e, "IPC connection ended with an error");
                        }
                    }
                    () = shutdown.cancelled() => {}
                }
            });
        }
        tasks.close();
        tasks.wait().await;
        self.listener.remove();
    }
}

/// Tells a peer it is not served, then closes (bounded: a peer that does not read
/// is dropped after a second).
async fn refuse(mut stream: ServerStream, line: Vec<u8>) {
    let write = stream.write_all(&line);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), write).await;
}

async fn connection<H: Handler>(
    stream: ServerStream,
    handler: &H,
    max_line: usize,
    tasks: TaskTracker,
    (closed, slot): (CancellationToken, Slot),
) -> std::io::Result<()> {
    let (read, write) = tokio::io::split(stream);
    let (outgoing, queue) = mpsc::channel(OUTGOING);
    let peer = Peer {
        outgoing,
        closed,
        tasks,
    };
    let _closed = peer.closed.clone().drop_guard();
    let writer = peer
        .tasks
        .spawn(write_lines(write, queue, peer.closed.clone()));
    let outcome = tokio::select! {
        outcome = read_requests(read, handler, &peer, max_line, &slot) => outcome,
        () = peer.closed.cancelled() => Ok(()),
    };
    peer.closed.cancel();
    drop(peer);
    let written = writer.await.unwrap_or(Ok(()));
    outcome.and(written)
}

/// Reads request lines and queues one response line for each that has an `id`.
async fn read_requests<H: Handler>(
    read: ReadHalf<ServerStream>,
    handler: &H,
    peer: &Peer,
    max_line: usize,
    slot: &Slot,
) -> std::io::Result<()> {
    let mut lines = LineReader::new(read, max_line);
    loop {
        let read = lines.next().await?;
        slot.touch();
        let refusal = |code, message: String| {
            Some(Response::new(
                Value::Null,
                Err(RpcError::new(code, message)),
            ))
        };
        let response = match read {
            LineRead::Eof => return Ok(()),
            LineRead::TooLong => refusal(
                codec::INVALID_REQUEST,
                format!("request line longer than {max_line} bytes"),
            ),
            LineRead::NotUtf8 => refusal(
                codec::PARSE_ERROR,
                "parse error: the line is not UTF-8".to_owned(),
            ),
            LineRead::Line(line) if line.bytes().all(|b| b.is_ascii_whitespace()) => None,
            LineRead::Line(line) => match codec::parse_request(line.as_bytes()) {
                Err(answer) => Some(*answer),
                Ok(request) => {
                    let id = request.id.clone();
                    let outcome = handler.call(request, peer).await;
                    id.map(|id| Response::new(id, outcome))
                }
            },
        };
        if let Some(response) = response {
            let mut bytes = serde_json::to_vec(&response).unwrap_or_default();
            bytes.push(b'\n');
            if peer.outgoing.send(bytes).await.is_err() {
                return Ok(());
            }
        }
    }
}

/// How long answers already queued may take to go out once a connection ends.
const LAST_WORDS: std::time::Duration = std::time::Duration::from_secs(1);

/// Writes queued lines in order until the queue closes or the connection ends; a
/// peer that stopped reading is cut off when its queue is full (see [`Peer::notify`]).
async fn write_lines(
    mut write: WriteHalf<ServerStream>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    closed: CancellationToken,
) -> std::io::Result<()> {
    let writing = async {
        while let Some(line) = queue.recv().await {
            write.write_all(&line).await?;
        }
        Ok(())
    };
    tokio::pin!(writing);
    tokio::select! {
        written = &mut writing => {
            if written.is_err() {
                closed.cancel();
            }
            return written;
        }
        () = closed.cancelled() => {}
    }
    // The connection ended. Lines queued before still go out (the queue ends once the
    // reader and the peer's tasks have dropped their senders), within a bound: a peer
    // that does not read does not hold the server open.
    tokio::time::timeout(LAST_WORDS, writing)
        .await
        .unwrap_or(Ok(()))
}
