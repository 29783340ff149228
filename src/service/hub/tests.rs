//! The hub's own tests: registration, fan-out, overflow, replacement, revoke, resync and
//! pass-over, on the hub alone (the channel and the store are tested against the real
//! service in `tests/it`).

use super::*;
use crate::protocol::{Notification, NotificationId, NotificationInput, Timestamp};

fn change(user: &UserId, seq: u64) -> Committed {
    let body = br#"{"targetHostName":"contoso.com","payload":{"visualContent":{"title":"t"}}}"#;
    let content = NotificationInput::from_json(body)
        .unwrap()
        .validate(Timestamp::now())
        .unwrap();
    Committed {
        user: user.clone(),
        seq: Seq(seq),
        notification: Notification {
            id: NotificationId::new("n"),
            content,
            created_date_time: Timestamp::now(),
            last_modified_date_time: Timestamp::now(),
            state: crate::protocol::UserState::FRESH,
        },
    }
}

#[test]
fn a_live_change_is_serialised_once_as_the_change_frame() {
    let committed = change(&UserId::new("alice"), 9);
    let owned = crate::protocol::ServerFrame::Change {
        seq: committed.seq,
        notification: committed.notification.clone(),
    };
    let live = Live::new(committed);
    let first = live.frame().unwrap();
    assert_eq!(first.as_str(), serde_json::to_string(&owned).unwrap());
    let again = live.frame().unwrap();
    assert_eq!(
        first.as_str().as_ptr(),
        again.as_str().as_ptr(),
        "the second channel shares the first one's text"
    );
}

#[test]
fn a_seed_taken_before_a_published_change_does_not_move_its_head_back() {
    let hub = Arc::new(Hub::new(8, 2));
    let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
    // The store's snapshot said 4; another node's change 5 was published before
    // the seed arrived.
    hub.publish(vec![change(&alice, 5)]);
    hub.seed(HashMap::from([
        (alice.clone(), Seq(4)),
        (bob.clone(), Seq(7)),
    ]));
    let device = DeviceId::new("d");
    assert_eq!(hub.register(&alice, &device).durable, Seq(5));
    assert_eq!(hub.register(&bob, &device).durable, Seq(7));
}

#[tokio::test]
async fn a_kill_reaches_a_channel_waiting_for_it_and_one_that_looks_later() {
    let waiting = Kill::default();
    let waiter = tokio::spawn({
        let kill = waiting.clone();
        async move { kill.killed().await }
    });
    tokio::task::yield_now().await;
    waiting.kill(CloseReason::Revoked);
    waiting.kill(CloseReason::TooSlow);
    let woke = tokio::time::timeout(std::time::Duration::from_secs(10), waiter).await;
    let reason = woke.expect("the waiting channel was not woken").unwrap();
    assert_eq!(reason, CloseReason::Revoked, "the first reason holds");

    let later = Kill::default();
    later.kill(CloseReason::Replaced);
    assert_eq!(later.killed().await, CloseReason::Replaced);
    assert_eq!(later.reason(), Some(CloseReason::Replaced));
}

/// A user's channel that has taken every change offered so far.
fn drain(registration: &mut Registration) -> Vec<u64> {
    let mut seqs = Vec::new();
    while let Ok(live) = registration.rx.try_recv() {
        seqs.push(live.change.seq.0);
    }
    seqs
}

#[test]
fn a_channel_gets_its_users_changes_after_the_head_it_registered_at() {
    let hub = Arc::new(Hub::new(8, 2));
    let (alice, bob) = (UserId::new("alice"), UserId::new("bob"));
    let device = DeviceId::new("laptop");
    assert_eq!(
        hub.register(&alice, &device).durable,
        Seq::ZERO,
        "a user never seen"
    );
    hub.publish(vec![change(&alice, 1), change(&alice, 2)]);
    let mut channel = hub.register(&alice, &device);
    assert_eq!(
        channel.durable,
        Seq(2),
        "what is durable is read from the store"
    );
    hub.publish(vec![change(&bob, 1), change(&alice, 3), change(&alice, 4)]);
    assert_eq!(
        drain(&mut channel),
        [3, 4],
        "only alice's, only after the head"
    );
    assert!(channel.kill.reason().is_none());
}

#[test]
fn a_channel_whose_queue_is_full_is_closed_as_too_slow_and_the_others_go_on() {
    let hub = Arc::new(Hub::new(2, 2));
    let alice = UserId::new("alice");
    let slow = hub.register(&alice, &DeviceId::new("phone"));
    let mut reading = hub.register(&alice, &DeviceId::new("laptop"));
    for seq in 1..=3 {
        hub.publish(vec![change(&alice, seq)]);
        drain(&mut reading);
    }
    assert_eq!(slow.kill.reason(), Some(CloseReason::TooSlow));
    assert_eq!(hub.channel_count(), 1, "the slow one left the hub");
    assert!(!hub.is_connected(&DeviceId::new("phone")));
    hub.publish(vec![change(&alice, 4)]);
    assert_eq!(drain(&mut reading), [4]);
    assert!(reading.kill.reason().is_none());
}

#[test]
fn a_device_over_its_channels_loses_its_oldest_as_replaced() {
    let hub = Arc::new(Hub::new(8, 2));
    let alice = UserId::new("alice");
    let (laptop, phone) = (DeviceId::new("laptop"), DeviceId::new("phone"));
    let oldest = hub.register(&alice, &laptop);
    let other = hub.register(&alice, &phone);
    let second = hub.register(&alice, &laptop);
    assert!(oldest.kill.reason().is_none(), "two per device are allowed");
    let newest = hub.register(&alice, &laptop);
    assert_eq!(oldest.kill.reason(), Some(CloseReason::Replaced));
    for kept in [&other, &second, &newest] {
        assert!(kept.kill.reason().is_none());
    }
    assert_eq!((hub.channel_count(), hub.device_count()), (3, 2));
    drop(newest);
    assert_eq!(
        hub.channel_count(),
        2,
        "a dropped registration leaves the hub"
    );
}

#[test]
fn revoke_resync_and_pass_over_touch_what_they_name() {
    let hub = Arc::new(Hub::new(8, 2));
    let (alice, carol) = (UserId::new("alice"), UserId::new("carol"));
    let (laptop, phone) = (DeviceId::new("laptop"), DeviceId::new("phone"));
    let on_laptop = hub.register(&alice, &laptop);
    let on_phone = hub.register(&alice, &phone);
    hub.revoke(&laptop);
    assert_eq!(on_laptop.kill.reason(), Some(CloseReason::Revoked));
    assert!(on_phone.kill.reason().is_none());

    assert!(
        !hub.pass_over(&alice, Seq(9)),
        "alice has a channel: publish instead"
    );
    assert!(hub.pass_over(&carol, Seq(9)));
    assert_eq!(hub.register(&carol, &phone).durable, Seq(9));

    hub.resync(HashMap::from([(alice.clone(), Seq(3))]));
    assert_eq!(on_phone.kill.reason(), Some(CloseReason::Resync));
    assert_eq!(hub.channel_count(), 0);
    assert_eq!(
        hub.register(&alice, &phone).durable,
        Seq(3),
        "the store's head"
    );
}
