//! The store's durability contract, on a real sled database in a temp dir: reads never
//! pass the durable `seq`, a failed flush fails the store until it is reopened, with
//! nothing published out of `seq` order, and the reopen takes back every refused change
//! that reached the disk.

use std::sync::{Arc, Mutex};

use crate::protocol::validate::StatePatch;
use crate::protocol::{
    NotificationContent, Payload, Priority, ReadState, Seq, TargetPolicy, Timestamp, UserId,
    VisualContent,
};

use super::super::{Lifecycle, Notes};
use super::{Committed, SledStore, StoreError};

fn content(title: &str) -> NotificationContent {
    NotificationContent {
        target_host_name: "contoso.com".to_owned(),
        app_notification_id: None,
        group_name: None,
        display_time_to_live: None,
        expiration_date_time: Timestamp::now().plus(std::time::Duration::from_secs(3600)),
        priority: Priority::None,
        payload: Payload {
            visual_content: Some(VisualContent {
                title: title.to_owned(),
                body: None,
            }),
            raw_content: None,
            encrypted_content: None,
        },
        target_policy: TargetPolicy::default(),
        fallback_policy: None,
    }
}

/// A store in a temp dir that records every published `seq`.
fn store() -> (SledStore, Arc<Mutex<Vec<u64>>>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let published = Arc::new(Mutex::new(Vec::new()));
    let seen = published.clone();
    let publish = Arc::new(move |changes: Vec<Committed>| {
        seen.lock().unwrap().extend(changes.iter().map(|c| c.seq.0));
    });
    let store = SledStore::open(dir.path(), 1 << 20, publish).unwrap();
    (store, published, dir)
}

async fn feed_seqs(store: &SledStore, user: &UserId) -> Vec<u64> {
    let scan = store.feed_scan(user, Seq::ZERO, None, 100).await.unwrap();
    scan.records.iter().map(|r| r.seq.0).collect()
}

#[tokio::test]
async fn no_read_returns_a_change_that_is_not_on_disk() {
    let (store, _, _dir) = store();
    let user = UserId::new("u");
    let now = Timestamp::now();
    let kept = store.upsert(&user, content("kept"), now).await.unwrap();
    store.fail_flushes(true);
    let lost = store.upsert(&user, content("lost"), now).await;
    assert!(matches!(lost, Err(StoreError::Unavailable(ref f)) if f.disk_full));
    assert_eq!(store.durable_seq(&user), kept.seq);
    // The failed change is in memory (its seq is taken), but no read shows it.
    assert_eq!(feed_seqs(&store, &user).await, [kept.seq.0]);
    let ids: Vec<_> = store
        .lock()
        .feed_range(&user, Seq::ZERO, Seq(u64::MAX), 10)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    let unflushed = ids.iter().find(|id| **id != kept.notification.id).unwrap();
    assert!(
        store.get(&user, unflushed, now).await.is_err(),
        "an unflushed version is never returned"
    );
    assert!(
        store
            .get(&user, &kept.notification.id, now)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_failed_flush_fails_writes_until_reopened_and_publishes_in_order() {
    let (store, published, _dir) = store();
    let user = UserId::new("u");
    let now = Timestamp::now();
    let first = store.upsert(&user, content("a"), now).await.unwrap();
    store.fail_flushes(true);
    assert!(store.upsert(&user, content("b"), now).await.is_err());
    store.fail_flushes(false);
    // The disk is fine again, but the store stays failed: a later flush must not make
    // "b" durable unpublished.
    let refused = store.upsert(&user, content("c"), now).await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))));
    assert!(store.failure().is_some());
    let reseeded = Arc::new(Mutex::new(None));
    let reseed = reseeded.clone();
    let reseed = Box::new(move |seqs| *reseed.lock().unwrap() = Some(seqs));
    assert!(store.recover(reseed).unwrap());
    assert!(store.failure().is_none());
    let after = reseeded.lock().unwrap().take().unwrap()[&user];
    // "b" reached the disk as the old handle closed (sled flushes on close), but it was
    // answered with an error: the reopen took it back.
    assert_eq!(after, first.seq);
    let last = store.upsert(&user, content("d"), now).await.unwrap();
    assert_eq!(last.seq, after.next(), "the refused seq is used again");
    assert_eq!(*published.lock().unwrap(), [first.seq.0, last.seq.0]);
    assert_eq!(feed_titles(&store, &user).await, ["a", "d"]);
}

/// A refused change to a notification that was already there (a state change, a
/// replacement, a delete) is taken back to the version before it, not removed, and a
/// refused change that never reached the disk is left alone.
#[tokio::test]
async fn a_refused_change_to_a_kept_notification_is_taken_back_to_the_kept_version() {
    let (store, _, dir) = store();
    let user = UserId::new("u");
    let now = Timestamp::now();
    let kept = store.upsert(&user, content("kept"), now).await.unwrap();
    let id = kept.notification.id.clone();
    store.fail_flushes(true);
    let read = StatePatch {
        read_state: Some(ReadState::Read),
        user_action_state: None,
    };
    assert!(store.update_state(&user, &id, read, now).await.is_err());
    store.fail_flushes(false);
    assert!(store.recover(Box::new(|_| {})).unwrap());
    let record = store.get(&user, &id, now).await.unwrap().unwrap();
    assert_eq!(record.seq, kept.seq);
    assert_eq!(record.state.read_state, ReadState::Unread);
    assert!(store.delete(&user, &id, now).await.unwrap().is_some());
    drop(store);
    // And after a restart: what is on disk is the kept version and then the delete.
    let publish = Arc::new(|_: Vec<Committed>| {});
    let store = SledStore::open(dir.path(), 1 << 20, publish).unwrap();
    assert!(store.get(&user, &id, now).await.unwrap().is_none());
    assert_eq!(store.durable_seq(&user), kept.seq.next());
}

async fn feed_titles(store: &SledStore, user: &UserId) -> Vec<String> {
    let scan = store.feed_scan(user, Seq::ZERO, None, 100).await.unwrap();
    scan.records
        .iter()
        .map(|r| {
            r.content
                .payload
                .visual_content
                .as_ref()
                .unwrap()
                .title
                .clone()
        })
        .collect()
}
