//! The toast-feedback responder: what the user does with a toast (click, "Mark as
//! read", close) arrives from the presenter and becomes a local change, here at once
//! and through the outbox on every device (see `present`).

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::AgentHandle;
use super::toast::Feedback;

/// Answers feedback until `stop`, or until the presenter drops its sink.
pub(super) async fn run(
    handle: AgentHandle,
    mut feedback: mpsc::UnboundedReceiver<Feedback>,
    stop: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = feedback.recv() => next,
        };
        match next {
            Some(feedback) => handle.feedback(feedback).await,
            None => return,
        }
    }
}
