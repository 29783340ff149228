//! Group commit on PostgreSQL (a private cluster, `pg.rs`): a burst of concurrent
//! writes of several users is committed in a few transactions, each announced with one
//! `pg_notify` that names every user's new head; each user's changes keep consecutive
//! `seq`s in order, replacements and state changes queued together apply one after the
//! other, and a device gets the changes once each, in order.

use std::collections::HashMap;

use futures_util::StreamExt;
use tidings::protocol::validate::StatePatch;
use tidings::protocol::{
    NotificationContent, NotificationInput, ReadState, Seq, Timestamp, UserId,
};
use tidings::service::store::PgConfig;
use tokio_postgres::AsyncMessage;

use crate::helpers::{DEADLINE, TestService, note};
use crate::pg;

/// Every `tidings_feed` payload sent on the database at `url` from now on (while the
/// client returned is kept).
async fn listen(
    url: &str,
) -> (
    tokio_postgres::Client,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let AsyncMessage::Notification(note) = message {
                let _ = tx.send(note.payload().to_owned());
            }
        }
    });
    client.batch_execute("LISTEN tidings_feed").await.unwrap();
    (client, rx)
}

/// The heads a batch payload names: "<millis>\n<seq> <user>\n..." (then, after a line
/// `-`, the changes it carries).
fn heads(payload: &str) -> Vec<(String, u64)> {
    let heads = payload.split("\n-").next().unwrap_or_default();
    let (_, lines) = heads.split_once('\n').expect("a batch announcement");
    lines
        .split('\n')
        .map(|line| {
            let (seq, user) = line.split_once(' ').unwrap();
            (user.to_owned(), seq.parse().unwrap())
        })
        .collect()
}

/// Reads announcements until each user's head reached the one given; returns how many
/// there were.
async fn until_announced(
    announced: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    heads_wanted: &[(&UserId, u64)],
) -> usize {
    let mut count = 0;
    let mut highest: HashMap<String, u64> = HashMap::new();
    while heads_wanted
        .iter()
        .any(|(user, head)| highest.get(user.as_str()) != Some(head))
    {
        let payload = tokio::time::timeout(DEADLINE, announced.recv())
            .await
            .expect("every head announced")
            .unwrap();
        for (user, seq) in heads(&payload) {
            let head = highest.entry(user).or_default();
            *head = (*head).max(seq);
        }
        count += 1;
    }
    count
}

/// A post's content for contoso.com.
fn content(app_id: Option<String>, title: &str, now: Timestamp) -> NotificationContent {
    let mut body = note("contoso.com", title);
    if let Some(app_id) = app_id {
        body["appNotificationId"] = app_id.into();
    }
    NotificationInput::from_json(body.to_string().as_bytes())
        .unwrap()
        .validate(now)
        .unwrap()
}

#[tokio::test]
async fn a_burst_of_writes_is_committed_in_few_transactions_each_announced_once() {
    let url = pg::shared().new_database();
    let config = PgConfig::new(&url);
    let service = TestService::start_with(move |s| s.database = Some(config)).await;
    let (_, device, _) = service.alice_and_contoso().await;
    service.add_user("bob").await;
    let store = service.state.store.clone();
    let id_of = |name: &'static str| {
        let store = store.clone();
        async move { store.user_by_name(name).await.unwrap().unwrap().id }
    };
    let (alice, bob) = (id_of("alice").await, id_of("bob").await);
    // Listening before the channel: its setup makes no feed change.
    let (db, mut announced) = listen(&url).await;
    // Another node watches both users (as one holding channels of theirs would), so
    // every batch of theirs is announced.
    db.execute(
        "INSERT INTO feed_heads (user_id, seq, watchers)
         SELECT u, 0, ARRAY['elsewhere'] FROM unnest($1::text[]) AS u",
        &[&vec![alice.as_str(), bob.as_str()]],
    )
    .await
    .unwrap();
    let mut channel = device.channel(0).await;
    channel.until_synced().await;

    // 64 posts at once: alice's replace four notifications in turn (same
    // appNotificationId), bob's are all new.
    let now = Timestamp::now();
    let writes = (0..64).map(|i| {
        let store = store.clone();
        let (user, app_id) = if i % 2 == 0 {
            (alice.clone(), Some(format!("slot-{}", i % 8)))
        } else {
            (bob.clone(), None)
        };
        let content = content(app_id, &format!("n{i}"), now);
        async move {
            (
                user.clone(),
                store.upsert(&user, content, now).await.unwrap(),
            )
        }
    });
    let stored = futures_util::future::join_all(writes).await;
    let mut by_user: HashMap<UserId, Vec<u64>> = HashMap::new();
    for (user, s) in &stored {
        by_user.entry(user.clone()).or_default().push(s.seq.0);
    }
    for seqs in by_user.values_mut() {
        seqs.sort_unstable();
        assert_eq!(
            *seqs,
            (1..=32).collect::<Vec<u64>>(),
            "consecutive, none twice"
        );
    }
    let alice_ids: std::collections::HashSet<_> = stored
        .iter()
        .filter(|(user, _)| *user == alice)
        .map(|(_, s)| s.notification.id.clone())
        .collect();
    assert_eq!(alice_ids.len(), 4, "replaced in place: four notifications");

    // Then, at once: a read of each of alice's four and a post of bob's.
    let read = StatePatch {
        read_state: Some(ReadState::Read),
        user_action_state: None,
    };
    let reads = alice_ids.iter().map(|id| {
        let (store, alice) = (store.clone(), alice.clone());
        async move {
            store
                .update_state(&alice, id, read, Timestamp::now())
                .await
                .unwrap()
        }
    });
    let extra = store.upsert(&bob, content(None, "last", now), now);
    let (read, extra) = tokio::join!(futures_util::future::join_all(reads), extra);
    let mut read_seqs: Vec<u64> = read.into_iter().map(|c| c.unwrap().seq.0).collect();
    read_seqs.sort_unstable();
    assert_eq!(read_seqs, [33, 34, 35, 36]);
    assert_eq!(extra.unwrap().seq, Seq(33));

    // The device sees alice's changes in order, once each, up to the last. (A version
    // superseded before this node published it is skipped: it published from the
    // database then, which holds each notification's last version.)
    let mut seen = vec![0];
    while seen.last() != Some(&36) {
        let (seq, got) = channel.next_change().await;
        assert!(
            seq.0 > *seen.last().unwrap(),
            "in order, once: {seen:?} then {seq:?}"
        );
        if seq.0 > 32 {
            assert_eq!(got.state.read_state, ReadState::Read);
        }
        seen.push(seq.0);
    }
    assert_eq!(
        seen[seen.len() - 4..],
        [33, 34, 35, 36],
        "the reads, each one"
    );

    // Every head was announced, in few announcements.
    let payloads = until_announced(&mut announced, &[(&alice, 36), (&bob, 33)]).await;
    assert!(
        payloads <= 69 / 4,
        "69 writes in {payloads} transactions: not gathered"
    );
    service.stop().await;
}
