//! One device's push channel (`docs/service.md`, The channel): backlog replay from the device's
//! cursor, `synced`, then live changes from the hub; acks, updates and deletes from the
//! device; pings; and a close frame saying why when the channel ends.
//!
//! Every send waits at most `SEND_TIMEOUT` (30 s) and gives way to the hub's kill signal and
//! to shutdown, so a device that stops reading never holds a task or memory for long.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite;
use tracing::Instrument;

use crate::protocol::{Seq, ServerFrame};

mod requests;

use super::State;
use super::feed;
use super::hub::{CloseReason, Kill, Live, Registration};
use super::stage;
use super::store::{DeviceRecord, StoreError};

/// Longest wait for one frame to be written before the device counts as too slow.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for the device's side of the closing handshake.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// Backlog items read from the store per page.
const BACKLOG_PAGE: usize = 256;
/// Live changes sent in one write at most (when the hub has queued several).
const LIVE_BATCH: usize = 64;

/// Why a channel ended.
#[derive(Debug)]
enum End {
    /// The device closed it or the connection failed.
    Peer,
    /// The service is shutting down.
    Shutdown,
    /// The hub closed it.
    Killed(CloseReason),
    /// No frame from the device for too long.
    Silent,
    /// The store failed.
    Store(StoreError),
    /// The device sent a frame over the size limit.
    TooBig,
}

impl From<StoreError> for End {
    fn from(err: StoreError) -> Self {
        End::Store(err)
    }
}

struct Session {
    state: State,
    device: DeviceRecord,
    sink: SplitSink<WebSocket, Message>,
    kill: Kill,
    /// The highest `seq` sent on this channel (acks are clamped to it).
    sent: Seq,
}

/// Runs a channel for `device` from `cursor` until it ends.
///
/// The socket is split and the session built before the task's future is: an async
/// fn keeps room for its arguments for as long as it runs, and every idle channel would
/// carry that room (the socket alone is 368 bytes).
pub fn serve(
    socket: WebSocket,
    state: State,
    device: DeviceRecord,
    cursor: Seq,
) -> impl Future<Output = ()> + Send {
    let (sink, mut stream) = socket.split();
    let mut session = Session {
        // The registration's, once registered.
        kill: Kill::default(),
        state,
        device,
        sink,
        sent: cursor,
    };
    async move {
        // First the store watches the user here (with several nodes, the others then
        // announce their changes), and counts what came before: the registration then
        // reads where the backlog ends.
        if let Err(e) = Box::pin(session.state.store.watch(&session.device.user)).await {
            tracing::debug!(device = %session.device.id, error = %e, "channel refused");
            Box::pin(session.close(&End::Store(e), &mut stream)).await;
            return;
        }
        let mut registration = session
            .state
            .hub
            .register(&session.device.user, &session.device.id);
        session.kill = registration.kill.clone();
        tracing::debug!(device = %session.device.id, %cursor, "channel open");
        let end = match session.run(&mut registration, &mut stream, cursor).await {
            Ok(never) => match never {},
            Err(end) => end,
        };
        // Off the hub before the closing handshake: the device counts as gone at once.
        drop(registration);
        session.unwatch();
        tracing::debug!(device = %session.device.id, ?end, "channel closed");
        Box::pin(session.close(&end, &mut stream)).await;
    }
}

impl Session {
    /// Tells the store the channel closed, without waiting for it (a shared store
    /// writes it to the database).
    fn unwatch(&self) {
        let (store, user) = (self.state.store.clone(), self.device.user.clone());
        tokio::spawn(async move { store.unwatch(&user).await });
    }

    async fn run(
        &mut self,
        registration: &mut Registration,
        stream: &mut SplitStream<WebSocket>,
        cursor: Seq,
    ) -> Result<std::convert::Infallible, End> {
        let durable = registration.durable;
        self.state
            .store
            .touch_device(&self.device.id, self.state.now());
        // Every step but the wait is boxed: an idle channel's task holds only what the
        // wait needs, not room for the largest step (`an_idle_channel_s_task_is_small`).
        Box::pin(self.backlog(cursor, durable)).await?;
        Box::pin(self.send(&ServerFrame::Synced {
            seq: durable.max(cursor),
        }))
        .await?;
        let period = self.state.settings.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + period, period);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut heard = Instant::now();
        let shutdown = self.state.shutdown.clone();
        let kill = self.kill.clone();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Err(End::Shutdown),
                reason = kill.killed() => return Err(End::Killed(reason)),
                change = registration.rx.recv() => {
                    let change = change.ok_or_else(|| {
                        End::Killed(kill.reason().unwrap_or(CloseReason::TooSlow))
                    })?;
                    stage::hop(change.published);
                    let span = tracing::debug_span!(target: stage::TARGET, "deliver");
                    Box::pin(self.live(change, &mut registration.rx, durable).instrument(span))
                        .await?;
                }
                message = stream.next() => {
                    let message = message.ok_or(End::Peer)?.map_err(|e| read_failed(&e))?;
                    heard = Instant::now();
                    Box::pin(self.incoming(message)).await?;
                }
                _ = ping.tick() => {
                    if heard.elapsed() > period * 5 / 2 {
                        return Err(End::Silent);
                    }
                    Box::pin(self.write(Message::Ping(Vec::new().into()))).await?;
                }
            }
        }
    }

    /// Sends `first` and whatever else the hub has queued (up to [`LIVE_BATCH`]) that
    /// this device may see, newer than the backlog's end `durable`: each change's frame
    /// as the hub serialised it once for all the user's channels, flushed once (the
    /// channel's write buffer gathers them into as few writes as its size allows).
    async fn live(
        &mut self,
        first: Arc<Live>,
        queued: &mut mpsc::Receiver<Arc<Live>>,
        durable: Seq,
    ) -> Result<(), End> {
        let mut changes = vec![first];
        while changes.len() < LIVE_BATCH {
            let Ok(next) = queued.try_recv() else { break };
            changes.push(next);
        }
        let now = self.state.now();
        let mut frames = Vec::with_capacity(changes.len());
        let mut newest = self.sent;
        for live in &changes {
            let change = &live.change;
            if change.seq > durable
                && feed::visible(
                    self.state.store.as_ref(),
                    &self.device,
                    &change.notification,
                    now,
                )
                .await?
            {
                frames.push(Message::Text(live.frame().map_err(|_| End::Peer)?));
                newest = newest.max(change.seq);
            }
        }
        let count = frames.len() as u64;
        self.write_all(frames).await?;
        self.sent = newest;
        self.state.metrics.delivered(count);
        Ok(())
    }

    async fn backlog(&mut self, cursor: Seq, durable: Seq) -> Result<(), End> {
        let mut after = cursor;
        while after < durable {
            let now = self.state.now();
            let feed::Page { items, last, .. } = feed::page(
                self.state.store.as_ref(),
                &self.device,
                after,
                Some(durable),
                feed::PageLimit {
                    items: BACKLOG_PAGE,
                    bytes: usize::MAX,
                },
                now,
            )
            .await?;
            for item in items {
                let seq = item.seq;
                self.send(&ServerFrame::Change {
                    seq,
                    notification: item.notification,
                })
                .await?;
                self.sent = self.sent.max(seq);
            }
            if last <= after {
                break;
            }
            after = last;
        }
        Ok(())
    }

    async fn send(&mut self, frame: &ServerFrame) -> Result<(), End> {
        let text = serde_json::to_string(frame).map_err(|_| End::Peer)?;
        self.write(Message::Text(Utf8Bytes::from(text))).await?;
        if matches!(frame, ServerFrame::Change { .. }) {
            self.state.metrics.delivered(1);
        }
        Ok(())
    }

    /// Writes one message, giving way to the hub's kill, shutdown and the send timeout.
    async fn write(&mut self, message: Message) -> Result<(), End> {
        self.write_all(vec![message]).await
    }

    /// Writes `messages` and flushes once (one write for all, as far as the socket
    /// takes them), giving way to the hub's kill, shutdown and the send timeout.
    async fn write_all(&mut self, messages: Vec<Message>) -> Result<(), End> {
        if messages.is_empty() {
            return Ok(());
        }
        let shutdown = self.state.shutdown.clone();
        let kill = self.kill.clone();
        let sink = &mut self.sink;
        let written = async move {
            for message in messages {
                sink.feed(message).await?;
            }
            sink.flush().await
        };
        tokio::select! {
            result = tokio::time::timeout(SEND_TIMEOUT, written) => match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(End::Peer),
                Err(_) => Err(End::Killed(CloseReason::TooSlow)),
            },
            reason = kill.killed() => Err(End::Killed(reason)),
            () = shutdown.cancelled() => Err(End::Shutdown),
        }
    }

    /// The closing handshake: sends a close frame saying why, then waits for the
    /// device's close frame before the connection is dropped, so a device that was busy
    /// writing still reads why (bounded in time: the device may not be reading at all).
    async fn close(&mut self, end: &End, stream: &mut SplitStream<WebSocket>) {
        let (code, reason) = match end {
            End::Peer => return,
            End::Shutdown => (1001, "service shutting down; reconnect later"),
            End::Killed(CloseReason::TooSlow) => {
                (1013, "too slow; reconnect and resync from your cursor")
            }
            End::Killed(CloseReason::Revoked) => (1008, "this device was revoked"),
            End::Killed(CloseReason::Replaced) => (
                4001,
                "replaced by a newer channel of this device (is the same device signed in twice?)",
            ),
            End::Killed(CloseReason::Resync) => (
                1012,
                "the service reopened its store; reconnect and resync from your cursor",
            ),
            End::TooBig => (1009, "frame larger than 65536 bytes"),
            End::Silent => (1001, "no frame or pong for too long"),
            End::Store(e) => {
                tracing::error!(error = %e, "channel failed on the store");
                (1011, "internal error")
            }
        };
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            if self.sink.send(Message::Close(Some(frame))).await.is_err() {
                return;
            }
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
            let _ = self.sink.close().await;
        })
        .await;
    }
}

/// Why reading from the device failed: a frame over the limit, or the connection.
fn read_failed(error: &axum::Error) -> End {
    match super::find_cause::<tungstenite::Error>(error) {
        Some(tungstenite::Error::Capacity(_)) => End::TooBig,
        _ => End::Peer,
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future that an async fn of four arguments returns.
    fn future_size<A, B, C, D, F: Future>(_: impl FnOnce(A, B, C, D) -> F) -> usize {
        size_of::<F>()
    }

    /// Every idle channel is a task holding this future: 3,352 bytes before its steps
    /// were boxed and its arguments taken apart before it was built; 816 after; 856
    /// with the store's watch before the registration.
    #[test]
    fn an_idle_channel_s_task_is_small() {
        let size = future_size(super::serve);
        assert!(size <= 1024, "a channel's future takes {size} bytes");
    }
}
