//! Unit tests of the agent's store: idempotent apply, history order, the cursor, the
//! single-instance lock.

use super::*;
use crate::protocol::{NotificationInput, Status, Timestamp, UserState};

fn notification(id: &str, title: &str) -> Notification {
    let body = format!(
        r#"{{"targetHostName":"contoso.com","payload":{{"visualContent":{{"title":"{title}"}}}}}}"#
    );
    let content = NotificationInput::from_json(body.as_bytes())
        .unwrap()
        .validate(Timestamp::now())
        .unwrap();
    Notification {
        id: NotificationId::new(id),
        content,
        created_date_time: Timestamp::now(),
        last_modified_date_time: Timestamp::now(),
        state: UserState::FRESH,
    }
}

fn open() -> (tempfile::TempDir, AgentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = AgentStore::open(&dir.path().join("agent"), 1 << 20).unwrap();
    (dir, store)
}

#[tokio::test]
async fn changes_apply_once_and_replays_change_nothing() {
    let (_dir, store) = open();
    let batch = vec![
        (Seq(1), notification("a", "one")),
        (Seq(2), notification("b", "two")),
    ];
    let (applied, cursor) = store.apply(batch.clone()).await.unwrap();
    assert_eq!(applied.len(), 2);
    assert!(matches!(&applied[0], Applied::Created(r) if r.seq == Seq(1)));
    assert_eq!(cursor, Seq(2));
    let (again, cursor) = store.apply(batch).await.unwrap();
    assert!(again.is_empty(), "a replay applies nothing");
    assert_eq!(cursor, Seq(2));
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn a_newer_change_updates_and_an_older_one_is_ignored() {
    let (_dir, store) = open();
    store
        .apply(vec![(Seq(1), notification("a", "one"))])
        .await
        .unwrap();
    let mut dismissed = notification("a", "one");
    dismissed.state.status = Status::Deleted;
    let (applied, _) = store
        .apply(vec![
            (Seq(5), dismissed),
            (Seq(3), notification("a", "stale")),
        ])
        .await
        .unwrap();
    assert_eq!(applied.len(), 1);
    assert!(matches!(&applied[0], Applied::Updated(r) if r.seq == Seq(5)));
    let stored = store.get(&NotificationId::new("a")).unwrap().unwrap();
    assert_eq!((stored.seq, stored.state.status), (Seq(5), Status::Deleted));
    assert_eq!(store.len(), 1, "one history entry per notification");
    assert_eq!(
        store.count().unwrap(),
        1,
        "the kept counter follows updates"
    );
    assert_eq!(store.cursor().unwrap(), Seq(5));
}

#[tokio::test]
async fn history_is_newest_first_and_pages_with_before() {
    let (_dir, store) = open();
    let changes = (1..=5)
        .map(|i| (Seq(i), notification(&format!("n{i}"), "t")))
        .collect();
    store.apply(changes).await.unwrap();
    let newest: Vec<u64> = store
        .history(2, None)
        .unwrap()
        .iter()
        .map(|r| r.seq.0)
        .collect();
    assert_eq!(newest, vec![5, 4]);
    let older: Vec<u64> = store
        .history(10, Some(Seq(4)))
        .unwrap()
        .iter()
        .map(|r| r.seq.0)
        .collect();
    assert_eq!(older, vec![3, 2, 1]);
}

#[tokio::test]
async fn the_store_survives_reopening_and_refuses_a_second_opener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent");
    let store = AgentStore::open(&path, 1 << 20).unwrap();
    store
        .apply(vec![(Seq(7), notification("a", "kept"))])
        .await
        .unwrap();
    let second = AgentStore::open(&path, 1 << 20);
    let message = second.err().expect("locked").to_string();
    assert!(message.contains("already running"), "{message}");
    drop(store);
    let reopened = AgentStore::open(&path, 1 << 20).unwrap();
    assert_eq!(reopened.cursor().unwrap(), Seq(7));
    assert_eq!(
        reopened.history(10, None).unwrap()[0]
            .content
            .payload
            .visual_content
            .as_ref()
            .unwrap()
            .title,
        "kept"
    );
}

#[tokio::test]
async fn local_changes_stay_applied_until_the_service_confirms_them() {
    use crate::protocol::validate::StatePatch;
    use crate::protocol::{ReadState, UserActionState};
    let (_dir, store) = open();
    store
        .apply(vec![(Seq(1), notification("a", "one"))])
        .await
        .unwrap();
    let dismiss = LocalChange::Update(StatePatch {
        read_state: Some(ReadState::Read),
        user_action_state: Some(UserActionState::Dismissed),
    });
    let ids = [NotificationId::new("a"), NotificationId::new("unknown")];
    assert_eq!(store.change_locally(&ids, dismiss).await.unwrap().len(), 1);
    let outbox = store.outbox().unwrap();
    assert_eq!(outbox.len(), 1, "unknown ids are skipped");
    // A change from the service that crossed ours does not undo what the user did.
    store
        .apply(vec![(Seq(2), notification("a", "renamed"))])
        .await
        .unwrap();
    let record = store.get(&NotificationId::new("a")).unwrap().unwrap();
    assert_eq!(record.state.user_action_state, UserActionState::Dismissed);
    assert_eq!(
        record.content.payload.visual_content.unwrap().title,
        "renamed"
    );
    assert!(store.confirm(&outbox[0].request_id).unwrap());
    assert!(store.outbox().unwrap().is_empty());
    store
        .apply(vec![(Seq(3), notification("a", "again"))])
        .await
        .unwrap();
    let record = store.get(&NotificationId::new("a")).unwrap().unwrap();
    assert_eq!(
        record.state.user_action_state,
        UserActionState::NoInteraction,
        "the service is the source of truth"
    );
}

#[tokio::test]
async fn retention_purges_expired_then_caps_oldest_read_first() {
    let (_dir, store) = open();
    let mut changes: Vec<(Seq, Notification)> = (1..=5)
        .map(|i| (Seq(i), notification(&format!("n{i}"), "t")))
        .collect();
    changes[3].1.state.read_state = crate::protocol::ReadState::Read; // n4, read
    changes[0].1.content.expiration_date_time = Timestamp::from_millis(1); // n1, expired
    store.apply(changes).await.unwrap();
    let removed = store.purge(Timestamp::now(), 2).unwrap();
    let removed: Vec<&str> = removed.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        removed,
        vec!["n1", "n4", "n2"],
        "expired, then read, then oldest"
    );
    let left: Vec<u64> = store
        .history(10, None)
        .unwrap()
        .iter()
        .map(|r| r.seq.0)
        .collect();
    assert_eq!(left, vec![5, 3]);
    assert_eq!(store.count().unwrap(), 2, "the kept counter follows purges");
    assert!(store.purge(Timestamp::now(), 2).unwrap().is_empty());
}

#[tokio::test]
async fn the_kept_tally_follows_every_write_path() {
    let (_dir, store) = open();
    let check = |store: &AgentStore| {
        let kept = store.tally().unwrap();
        assert_eq!(kept, store.count_tally().unwrap(), "kept tally = counted");
        (kept.total, kept.unread)
    };
    assert_eq!(check(&store), (0, 0));
    let batch = (1..=4)
        .map(|i| (Seq(i), notification(&format!("n{i}"), "t")))
        .collect();
    store.apply(batch).await.unwrap();
    assert_eq!(check(&store), (4, 4));
    let read = LocalChange::Update(crate::protocol::validate::StatePatch {
        read_state: Some(crate::protocol::ReadState::Read),
        user_action_state: None,
    });
    store
        .change_locally(&[NotificationId::new("n1")], read)
        .await
        .unwrap();
    assert_eq!(check(&store), (4, 3));
    // The service's echo of the read, then a replace, fresh but overlaid with the read
    // still pending here; once the read is confirmed, a replace is unread again.
    let mut echo = notification("n1", "t");
    echo.state.read_state = crate::protocol::ReadState::Read;
    store.apply(vec![(Seq(5), echo)]).await.unwrap();
    assert_eq!(check(&store), (4, 3));
    store
        .apply(vec![(Seq(6), notification("n1", "replaced"))])
        .await
        .unwrap();
    assert_eq!(check(&store), (4, 3));
    for entry in store.outbox().unwrap() {
        store.confirm(&entry.request_id).unwrap();
    }
    store
        .apply(vec![(Seq(7), notification("n1", "again"))])
        .await
        .unwrap();
    assert_eq!(check(&store), (4, 4));
    store
        .change_locally(&[NotificationId::new("n2")], LocalChange::Delete)
        .await
        .unwrap();
    assert_eq!(check(&store), (3, 3));
    let mut deleted = notification("n3", "t");
    deleted.state.status = Status::Deleted;
    store.apply(vec![(Seq(8), deleted)]).await.unwrap();
    assert_eq!(check(&store), (2, 2));
    store.purge(Timestamp::now(), 1).unwrap();
    assert_eq!(check(&store), (1, 1));
    let far = Timestamp::now().plus(std::time::Duration::from_secs(400 * 24 * 3600));
    store.purge(far, 10).unwrap();
    assert_eq!(check(&store), (0, 0));
}

#[tokio::test]
async fn keys_last_as_long_as_their_subscription() {
    use crate::protocol::Unsid;
    let (_dir, store) = open();
    let sub = |unsid: &str| Subscription {
        unsid: Unsid::new(unsid),
        target_host_name: "contoso.com".into(),
        expiration_date_time: Timestamp::now(),
    };
    store.save_subscription(&sub("u1")).await.unwrap();
    let first = store.ensure_keys(&Unsid::new("u1")).await.unwrap();
    // Renewed under the same UNSID: the same keys.
    store.save_subscription(&sub("u1")).await.unwrap();
    let again = store.ensure_keys(&Unsid::new("u1")).await.unwrap();
    assert_eq!(first.public(), again.public());
    assert_eq!(store.keyring().unwrap().len(), 1);
    // Subscribed anew under another UNSID: the old subscription's keys are gone.
    store.save_subscription(&sub("u2")).await.unwrap();
    assert!(store.all_keys().unwrap().is_empty());
    let second = store.ensure_keys(&Unsid::new("u2")).await.unwrap();
    assert_ne!(second.public(), first.public());
    let ring = store.keyring().unwrap();
    assert_eq!(ring.len(), 1);
    assert_eq!(ring[&Unsid::new("u2")].0, "contoso.com");
    // Signed out: no keys at all.
    store.forget_all_keys().await.unwrap();
    assert!(store.keyring().unwrap().is_empty());
}

#[tokio::test]
async fn a_replay_asked_again_while_one_runs_is_not_forgotten_with_it() {
    let (_dir, store) = open();
    assert_eq!(store.resync().unwrap(), 0);
    store.want_resync().await.unwrap();
    let first = store.resync().unwrap();
    assert!(first > 0);
    store.want_resync().await.unwrap();
    store.resynced(first).await.unwrap();
    let second = store.resync().unwrap();
    assert!(second > first, "asked again meanwhile: still wanted");
    store.resynced(second).await.unwrap();
    assert_eq!(store.resync().unwrap(), 0);
}

#[tokio::test]
async fn paused_apps_are_kept_sorted_once_each_and_survive_a_restart() {
    let (dir, store) = open();
    assert!(store.paused_apps().unwrap().is_empty());
    store.set_paused("zeta.example", true).await.unwrap();
    store.set_paused("chat.example", true).await.unwrap();
    store.set_paused("chat.example", true).await.unwrap();
    assert_eq!(
        store.paused_apps().unwrap(),
        ["chat.example", "zeta.example"]
    );
    store.set_paused("zeta.example", false).await.unwrap();
    drop(store);
    let store = AgentStore::open(&dir.path().join("agent"), 1 << 20).unwrap();
    assert!(store.is_paused("chat.example").unwrap());
    assert!(!store.is_paused("zeta.example").unwrap());
    store.set_paused("chat.example", false).await.unwrap();
    assert!(store.paused_apps().unwrap().is_empty());
}
