//! What a device sends on its channel: acks, state updates and deletes (each answered
//! with a `result` frame), and frames the channel refuses with a reason (binary, not
//! JSON, an invalid change).

use axum::extract::ws::Message;

use crate::protocol::{ClientFrame, ErrorBody, ErrorCode, NotificationId, ServerFrame, StatePatch};
use crate::service::store::{StoreError, Stored};

use super::{End, Session};

impl Session {
    /// Handles one message from the device.
    pub(super) async fn incoming(&mut self, message: Message) -> Result<(), End> {
        match message {
            Message::Text(text) => self.frame(text.as_str()).await,
            Message::Binary(_) => {
                self.refuse(
                    String::new(),
                    "binary frames are not supported; send JSON text",
                )
                .await
            }
            Message::Close(_) => Err(End::Peer),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
        }
    }

    async fn frame(&mut self, text: &str) -> Result<(), End> {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(e) => {
                let request_id = request_id_of(text);
                return self
                    .refuse(request_id, &format!("invalid frame: {e}"))
                    .await;
            }
        };
        let now = self.state.now();
        let store = self.state.store.clone();
        let user = self.device.user.clone();
        match frame {
            ClientFrame::Ack { seq } => {
                let acked = seq.min(self.sent);
                store.record_ack(&self.device.id, acked, now);
                let newest = store.durable_seq(&user);
                self.state.metrics.ack_lag(newest.0.saturating_sub(acked.0));
                Ok(())
            }
            ClientFrame::Update {
                request_id,
                id,
                read_state,
                user_action_state,
            } => {
                let patch = StatePatch {
                    read_state,
                    user_action_state,
                };
                if let Err(e) = patch.check() {
                    return self.refuse(request_id, &e.to_string()).await;
                }
                let applied = store.update_state(&user, &id, patch, now).await;
                self.answer(request_id, &id, applied).await
            }
            ClientFrame::Delete { request_id, id } => {
                let applied = store.delete(&user, &id, now).await;
                self.answer(request_id, &id, applied).await
            }
        }
    }

    /// Answers an update or delete: applied, not found, or (the store takes no writes
    /// now) unavailable, which the device keeps in its outbox and sends again later.
    async fn answer(
        &mut self,
        request_id: String,
        id: &NotificationId,
        applied: Result<Option<Stored>, StoreError>,
    ) -> Result<(), End> {
        let error = match applied {
            Ok(Some(_)) => None,
            Ok(None) => Some(ErrorBody::new(
                ErrorCode::NotFound,
                format!("no notification {id}"),
            )),
            Err(StoreError::Unavailable(failure)) => Some(ErrorBody::new(
                ErrorCode::ServiceUnavailable,
                failure.message,
            )),
            Err(other) => return Err(End::Store(other)),
        };
        let ok = error.is_none();
        let error = error.map(|body| body.error);
        self.send(&ServerFrame::Result {
            request_id,
            ok,
            error,
        })
        .await
    }

    async fn refuse(&mut self, request_id: String, message: &str) -> Result<(), End> {
        let error = Some(ErrorBody::new(ErrorCode::InvalidRequest, message).error);
        self.send(&ServerFrame::Result {
            request_id,
            ok: false,
            error,
        })
        .await
    }
}

/// The `requestId` of a frame that did not parse, if it has one.
fn request_id_of(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("requestId")?.as_str().map(str::to_owned))
        .unwrap_or_default()
}
