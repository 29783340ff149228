//! Announcements only where they are heard: with several nodes on PostgreSQL, a batch
//! is announced only when a node other than its own holds a channel of one of its
//! users (the node marks the user in the database as its first channel of theirs
//! opens, and unmarks them as its last closes). A channel that opens on a node that
//! heard nothing of its user still gets everything, and one of a node restarted under
//! the same id is not passed over for marks the node left.

use tidings::protocol::Seq;
use tidings::service::store::PgConfig;

use crate::helpers::{Device, TestService, note, wait_until};
use crate::pg;

/// A node of the database at `url`, named `id` among the nodes.
async fn node(url: &str, id: &str) -> TestService {
    let mut config = PgConfig::new(url);
    config.node = id.to_owned();
    TestService::start_with(move |s| s.database = Some(config)).await
}

/// A connection to the database at `url`, as an administrator's.
async fn database(url: &str) -> tokio_postgres::Client {
    let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    db
}

/// Nodes `a` and `b` of a new database, and a connection to it.
async fn two_nodes() -> (TestService, TestService, tokio_postgres::Client) {
    let url = pg::shared().new_database();
    let (a, b) = tokio::join!(node(&url, "a"), node(&url, "b"));
    (a, b, database(&url).await)
}

/// The nodes `user` is marked watched by.
async fn marks(db: &tokio_postgres::Client, user: &str) -> Vec<String> {
    let row = db
        .query_opt(
            "SELECT h.watchers FROM feed_heads h JOIN users u ON u.id = h.user_id WHERE u.name = $1",
            &[&user],
        )
        .await
        .unwrap();
    row.map(|r| r.get(0)).unwrap_or_default()
}

/// The `seq`s of the next `count` changes on `channel`.
async fn seqs(channel: &mut crate::helpers::Channel, count: usize) -> Vec<u64> {
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        seen.push(channel.next_change().await.0.0);
    }
    seen
}

/// How many announcements of other nodes `node` heard.
async fn heard(node: &TestService) -> f64 {
    let (samples, _) = crate::metrics::scrape(node).await;
    crate::metrics::value(&samples, "tidings_notify_lag_seconds", None)
}

#[tokio::test]
async fn a_batch_is_announced_only_when_another_node_watches_one_of_its_users() {
    let (a, b, db) = two_nodes().await;
    let (app, on_a, alice) = a.alice_and_contoso().await;
    // Bob's channel on B is the yardstick: once B has his change, it has heard every
    // announcement committed before it.
    a.add_user("bob").await;
    let bob_on_b = b.sign_in("bob", "linux").await;
    let bob = bob_on_b.subscribe("contoso.com").await;
    let mut bobs = bob_on_b.channel(0).await;
    bobs.until_synced().await;
    let mut alices_on_a = on_a.channel(0).await;
    alices_on_a.until_synced().await;
    wait_until("bob marked by B, alice by A", || async {
        marks(&db, "bob").await == ["b"] && marks(&db, "alice").await == ["a"]
    })
    .await;
    // Yardstick: a post to Bob on A, heard by B.
    let yardstick = async |b_bob: &mut crate::helpers::Channel, n: u64| {
        a.post_ok(&app, &bob, &note("contoso.com", "yardstick"))
            .await;
        assert_eq!(b_bob.next_change().await.0, Seq(n));
    };
    let before = heard(&b).await;
    for i in 0..5 {
        a.post_ok(&app, &alice, &note("contoso.com", &format!("only A {i}")))
            .await;
    }
    yardstick(&mut bobs, 1).await;
    let more = heard(&b).await - before;
    assert!(
        (more - 1.0).abs() < 0.5,
        "B heard {more} batches, only Bob's should be: no node but A watches Alice"
    );

    // Alice's second device opens its channel on B: it gets all five, then hears A.
    let second: Device = b.sign_in("alice", "windows").await;
    second.subscribe("contoso.com").await;
    let mut alices_on_b = second.channel(0).await;
    let (backlog, synced) = alices_on_b.until_synced().await;
    assert_eq!((backlog.len(), synced), (5, Seq(5)));
    assert_eq!(marks(&db, "alice").await, ["a", "b"]);
    a.post_ok(&app, &alice, &note("contoso.com", "heard on B"))
        .await;
    assert_eq!(alices_on_b.next_change().await.0, Seq(6));

    // The channel closes: B unmarks Alice, and hears nothing of her again.
    drop(alices_on_b);
    wait_until("B unmarks alice", || async {
        marks(&db, "alice").await == ["a"]
    })
    .await;
    let before = heard(&b).await;
    a.post_ok(&app, &alice, &note("contoso.com", "A alone again"))
        .await;
    yardstick(&mut bobs, 2).await;
    let more = heard(&b).await - before;
    assert!(
        (more - 1.0).abs() < 0.5,
        "B heard {more} batches, not Bob's alone"
    );
    for seq in 1..=7 {
        assert_eq!(alices_on_a.next_change().await.0, Seq(seq));
    }
    a.stop().await;
    b.stop().await;
}

/// A device moving to a node that has not heard of the change at its cursor yet (the
/// announcement still on its way: here, the node's mark taken away while the change
/// is written) is not sent that change again: opening the channel reads the committed
/// head, so the backlog ends there. (Found by the soak: a device moving between nodes
/// as one was killed got the last change it had taken a second time.)
#[tokio::test]
async fn a_device_moving_to_a_node_that_has_not_heard_of_its_cursor_gets_no_change_twice() {
    let (a, b, db) = two_nodes().await;
    let (app, on_a, alice) = a.alice_and_contoso().await;
    // Another device of Alice's stays on B all along: B watches her.
    let stays = b.sign_in("alice", "windows").await;
    stays.subscribe("contoso.com").await;
    let mut staying = stays.channel(0).await;
    staying.until_synced().await;
    let mut moving = on_a.channel(0).await;
    moving.until_synced().await;
    a.post_ok(&app, &alice, &note("contoso.com", "1")).await;
    assert_eq!(moving.next_change().await.0, Seq(1));
    assert_eq!(staying.next_change().await.0, Seq(1));

    let b_marked = |marked: bool| {
        let db = &db;
        async move {
            let set = if marked {
                "CASE WHEN 'b' = ANY(watchers) THEN watchers ELSE array_append(watchers, 'b') END"
            } else {
                "array_remove(watchers, 'b')"
            };
            db.execute(&format!("UPDATE feed_heads SET watchers = {set}"), &[])
                .await
                .unwrap();
        }
    };
    b_marked(false).await;
    a.post_ok(&app, &alice, &note("contoso.com", "2")).await;
    assert_eq!(moving.next_change().await.0, Seq(2));
    drop(moving);
    // The device moves to B with its cursor at 2, which B has not heard of.
    let moved = Device {
        url: b.url.clone(),
        id: on_a.id.clone(),
        token: on_a.token.clone(),
        refresh: on_a.refresh.clone(),
        http: on_a.http.clone(),
    };
    let mut there = moved.channel(2).await;
    let (backlog, synced) = there.until_synced().await;
    assert_eq!((backlog.len(), synced), (0, Seq(2)));
    b_marked(true).await;
    a.post_ok(&app, &alice, &note("contoso.com", "3")).await;
    assert_eq!(
        there.next_change().await.0,
        Seq(3),
        "the change at the device's cursor is not sent again"
    );
    assert_eq!(seqs(&mut staying, 2).await, [2, 3], "once each, in order");
    a.stop().await;
    b.stop().await;
}

/// A node killed with channels open leaves its marks (they cost only announcements);
/// started again under the same id it clears its own, and leaves other nodes' be.
#[tokio::test]
async fn a_node_started_again_clears_the_marks_it_left() {
    let url = pg::shared().new_database();
    let a = node(&url, "a").await;
    a.alice_and_contoso().await;
    a.stop().await;
    let db = database(&url).await;
    // As a SIGKILL mid-channel leaves them (an in-process node cannot be killed).
    db.execute(
        "INSERT INTO feed_heads (user_id, seq, watchers)
         SELECT id, 0, ARRAY['a', 'z'] FROM users WHERE name = 'alice'
         ON CONFLICT (user_id) DO UPDATE SET watchers = EXCLUDED.watchers",
        &[],
    )
    .await
    .unwrap();
    let again = node(&url, "a").await;
    assert_eq!(
        marks(&db, "alice").await,
        ["z"],
        "its own cleared as it started"
    );
    again.stop().await;
}
