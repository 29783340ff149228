//! The service's answers to the outbox's changes: applied, refused for good (the
//! notification is gone, or the change is invalid), or not now (the service's store
//! takes no writes just now).

use std::collections::HashSet;

use crate::protocol::{ErrorCode, ErrorDetail};

use super::AgentError;
use super::store::AgentStore;

/// Settles the answer to the change `request_id`: an applied change and one refused for
/// good leave the outbox (a refusal is logged: the user's change is lost, and says why);
/// any other failure (`serviceUnavailable`) keeps it. Either way it counts as unsent on
/// this connection, so a kept change goes again with the next outbox send.
pub(super) fn settle(
    store: &AgentStore,
    sent: &mut HashSet<String>,
    request_id: &str,
    ok: bool,
    error: Option<&ErrorDetail>,
) -> Result<(), AgentError> {
    tracing::debug!(request_id, ok, "outbox answer");
    let permanent = error.is_some_and(is_for_good);
    if ok || permanent {
        if !ok {
            tracing::warn!(
                request_id,
                ?error,
                "the service refused a local change; dropped"
            );
        }
        store.confirm(request_id)?;
    }
    sent.remove(request_id);
    Ok(())
}

/// Whether sending the change again can never succeed.
fn is_for_good(error: &ErrorDetail) -> bool {
    matches!(error.code, ErrorCode::NotFound | ErrorCode::InvalidRequest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::store::LocalChange;
    use crate::protocol::validate::StatePatch;
    use crate::protocol::{ErrorBody, Notification, NotificationId, ReadState, Seq};

    async fn store_with_three_changes() -> (tempfile::TempDir, AgentStore, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let store = AgentStore::open(&dir.path().join("agent"), 1 << 20).unwrap();
        let note: Notification = serde_json::from_value(serde_json::json!({
            "id": "n1",
            "targetHostName": "contoso.com",
            "expirationDateTime": "2030-01-01T00:00:00Z",
            "priority": "None",
            "payload": {"visualContent": {"title": "t"}},
            "targetPolicy": {},
            "createdDateTime": "2026-01-01T00:00:00Z",
            "lastModifiedDateTime": "2026-01-01T00:00:00Z",
            "readState": "unread",
            "userActionState": "noInteraction",
            "status": "active"
        }))
        .unwrap();
        store.apply(vec![(Seq(1), note)]).await.unwrap();
        let read = LocalChange::Update(StatePatch {
            read_state: Some(ReadState::Read),
            user_action_state: None,
        });
        let ids = [NotificationId::new("n1")];
        for _ in 0..3 {
            store.change_locally(&ids, read).await.unwrap();
        }
        let queued = store.outbox().unwrap();
        let ids = queued.into_iter().map(|e| e.request_id).collect();
        (dir, store, ids)
    }

    fn refusal(code: ErrorCode) -> ErrorDetail {
        ErrorBody::new(code, "refused").error
    }

    #[tokio::test]
    async fn applied_and_refused_for_good_leave_the_outbox_and_not_now_stays_to_go_again() {
        let (_dir, store, ids) = store_with_three_changes().await;
        let mut sent: HashSet<String> = ids.iter().cloned().collect();
        let unavailable = refusal(ErrorCode::ServiceUnavailable);
        settle(&store, &mut sent, &ids[0], false, Some(&unavailable)).unwrap();
        settle(
            &store,
            &mut sent,
            &ids[1],
            false,
            Some(&refusal(ErrorCode::NotFound)),
        )
        .unwrap();
        settle(&store, &mut sent, &ids[2], true, None).unwrap();
        let left: Vec<_> = store
            .outbox()
            .unwrap()
            .into_iter()
            .map(|e| e.request_id)
            .collect();
        assert_eq!(
            left,
            [ids[0].clone()],
            "only the change the service could not take now"
        );
        assert!(
            sent.is_empty(),
            "every answered change counts as unsent, so a kept one goes again"
        );
        let invalid = refusal(ErrorCode::InvalidRequest);
        settle(&store, &mut sent, &ids[0], false, Some(&invalid)).unwrap();
        assert!(store.outbox().unwrap().is_empty());
    }
}
