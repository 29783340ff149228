//! Several service nodes on one PostgreSQL database (a private cluster, `pg.rs`): a
//! device on one node receives what is posted on another, a read on one node reaches a
//! device of the other, tokens work on every node, a device revoked on one node is cut
//! off on the other, and a database restart under a
//! running node is reported (`/healthz` 503), recovered from, and loses nothing. A
//! node (the real binary) SIGKILLed mid-burst: every `201` reaches each device once,
//! the agent moving to the other node by itself, a raw channel resuming there from its
//! cursor. Signing in with a list of nodes passes over one that is down.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tidings::protocol::{ReadState, Seq, ServerFrame};
use tidings::service::store::PgConfig;
use tokio::sync::Notify;

use crate::crash::post;
use crate::helpers::{
    Channel, DEADLINE, Device, Event, TestService, http_client, note, sign_in_at, wait_until,
};
use crate::pg::{self, Cluster};
use crate::process::{Process, provision};
use crate::test_agent::TestAgent;

/// A node of the database at `url`.
async fn node(url: &str) -> TestService {
    let config = PgConfig::new(url);
    TestService::start_with(move |s| s.database = Some(config)).await
}

/// Reads `count` changes and returns their `seq`s (in the order they came).
async fn seqs(channel: &mut Channel, count: usize) -> Vec<u64> {
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        seen.push(channel.next_change().await.0.0);
    }
    seen
}

#[tokio::test]
async fn a_device_on_one_node_gets_what_another_node_stored_and_reads_travel_back() {
    let url = pg::shared().new_database();
    // Both start at once on the empty database: the migrations run once.
    let (a, b) = tokio::join!(node(&url), node(&url));
    let (app, on_a, unsid) = a.alice_and_contoso().await;
    // Signed in on B with the account made through A; subscribed there too.
    let on_b = b.sign_in("alice", "windows").await;
    on_b.subscribe("contoso.com").await;
    let mut channel_a = on_a.channel(0).await;
    let mut channel_b = on_b.channel(0).await;
    channel_a.until_synced().await;
    channel_b.until_synced().await;

    // The app's token came from A; B takes it (one signing key in the database).
    let posted = b.post_ok(&app, &unsid, &note("contoso.com", "via B")).await;
    let (seq, got) = channel_a.next_change().await;
    assert_eq!((seq, &got.id), (Seq(1), &posted.id));
    assert_eq!(channel_b.next_change().await.0, Seq(1));

    // Read on A's device; B's device sees the change, with the next seq.
    channel_a
        .send_json(
            &json!({"type": "update", "requestId": "r1", "id": posted.id, "readState": "read"}),
        )
        .await;
    let (seq, changed) = channel_b.next_change().await;
    assert_eq!(seq, Seq(2));
    assert_eq!(changed.state.read_state, ReadState::Read);

    // Interleaved posts on both nodes reach both devices once each, in seq order.
    for i in 0..20 {
        let on = if i % 2 == 0 { &a } else { &b };
        on.post_ok(&app, &unsid, &note("contoso.com", &format!("n{i}")))
            .await;
    }
    let expected: Vec<u64> = (3..23).collect();
    // A's own device sees the read first (its seq 2), then the burst.
    assert_eq!(channel_a.next_change().await.0, Seq(2));
    assert_eq!(seqs(&mut channel_a, 20).await, expected);
    assert_eq!(seqs(&mut channel_b, 20).await, expected);
    // A heard of B's commits through LISTEN/NOTIFY, and says how long that took.
    let (samples, _) = crate::metrics::scrape(&a).await;
    let heard = crate::metrics::value(&samples, "tidings_notify_lag_seconds", None);
    assert!(heard >= 10.0, "A observed {heard} notify lags");

    // Revoked through A: its channel on B closes too.
    a.admin("device.revoke", json!({"id": on_b.id}))
        .await
        .unwrap();
    match channel_b.next_event().await {
        Event::Closed(code) => assert_eq!(code, Some(1008)),
        Event::Frame(frame) => panic!("expected the revoked device's channel to close: {frame:?}"),
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_database_restart_is_reported_and_recovered_from_and_its_devices_miss_nothing() {
    // Its own cluster: other tests share the common one.
    let cluster = Cluster::start();
    let url = cluster.new_database();
    let a = node(&url).await;
    let b = node(&url).await;
    let (app, device, unsid) = a.alice_and_contoso().await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    a.post_ok(&app, &unsid, &note("contoso.com", "before"))
        .await;
    assert_eq!(channel.next_change().await.0, Seq(1));

    cluster.stop_server();
    let health = |node: &TestService| {
        let (http, url) = (node.http.clone(), format!("{}/healthz", node.url));
        async move { http.get(url).send().await.map(|r| r.status().as_u16()).ok() }
    };
    wait_until("node A reports the lost database", || async {
        health(&a).await == Some(503)
    })
    .await;
    let down = std::time::Instant::now();
    let refused = a.post(&app, &unsid, &note("contoso.com", "refused")).await;
    assert_eq!(refused.status(), 503, "a post while the database is down");
    // Reconnects are paced (250 ms, doubling): a fourth attempt comes no sooner than
    // 1.75 s after the first. (A loop woken by each failed reconnect made thousands.)
    wait_until("four attempts to reach the database", || async {
        let (samples, _) = crate::metrics::scrape(&a).await;
        crate::metrics::value(&samples, "tidings_store_recovery_attempts_total", None) >= 4.0
    })
    .await;
    let (samples, _) = crate::metrics::scrape(&a).await;
    let attempts = crate::metrics::value(&samples, "tidings_store_recovery_attempts_total", None);
    assert!(
        attempts <= 6.0 && down.elapsed() >= std::time::Duration::from_secs(1),
        "{attempts} attempts in {:?}: the recovery loop is not paced",
        down.elapsed()
    );

    cluster.start_server();
    // B stores a burst as soon as it can (A may still be reconnecting): A's device
    // must get all of it, once, in order.
    let mut stored = 0;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while stored < 10 {
        let response = b
            .post(
                &app,
                &unsid,
                &note("contoso.com", &format!("after {stored}")),
            )
            .await;
        match response.status().as_u16() {
            201 => stored += 1,
            // Polled, every few milliseconds, up to the deadline.
            503 if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            other => panic!(
                "post after the restart: {other} {}",
                response.text().await.unwrap()
            ),
        }
    }
    assert_eq!(seqs(&mut channel, 10).await, (2..12).collect::<Vec<u64>>());
    wait_until("node A is healthy again", || async {
        health(&a).await == Some(200)
    })
    .await;
    a.post_ok(&app, &unsid, &note("contoso.com", "on A again"))
        .await;
    assert_eq!(channel.next_change().await.0, Seq(12));
    a.stop().await;
    b.stop().await;
}

/// Posts `count` notes (at most), each to A and, when A does not answer, to B (as a
/// load balancer would); notifies `enough` at the 100th `201`. Returns the ids of 201s.
async fn burst(
    nodes: [String; 2],
    token: String,
    unsid: String,
    count: usize,
    answered: Arc<AtomicUsize>,
    enough: Arc<Notify>,
) -> Vec<String> {
    let http = http_client();
    let mut ids = Vec::new();
    for i in 0..count {
        let title = format!("{unsid}-{i}");
        let mut id = post(&http, &nodes[0], &token, &unsid, &title).await;
        if id.is_none() {
            id = post(&http, &nodes[1], &token, &unsid, &title).await;
        }
        if let Some(id) = id {
            ids.push(id);
            if answered.fetch_add(1, Ordering::Relaxed) + 1 == 100 {
                enough.notify_one();
            }
        }
    }
    ids
}

/// Reads a channel until it closes: `seq` → id, each `seq` once.
async fn watch(mut channel: Channel) -> BTreeMap<u64, String> {
    let mut seen = BTreeMap::new();
    while let Event::Frame(frame) = channel.next_event().await {
        if let ServerFrame::Change { seq, notification } = frame {
            let again = seen.insert(seq.0, notification.id.to_string());
            assert!(again.is_none(), "seq {seq} delivered twice");
        }
    }
    seen
}

#[tokio::test]
async fn a_node_killed_mid_burst_loses_no_201_and_its_devices_carry_on_at_the_other() {
    let url = pg::shared().new_database();
    let dir = tempfile::tempdir().unwrap();
    let store = ["--store", url.as_str()];
    let mut a = Process::start_with(&dir.path().join("a"), "127.0.0.1:0", &store).await;
    let b = Process::start_with(&dir.path().join("b"), "127.0.0.1:0", &store).await;
    let (app, device, unsid) = provision(&dir.path().join("a"), &a.url).await;

    // An agent that knows both nodes (it starts on A), and a raw channel on A.
    let agent = TestAgent::start(&format!("{},{}", a.url, b.url), &device, dir.path());
    let watcher = sign_in_at(&http_client(), &a.url, "alice", "windows").await;
    watcher.subscribe("contoso.com").await;
    let mut channel = watcher.channel(0).await;
    channel.until_synced().await;
    let watching = tokio::spawn(watch(channel));

    let answered = Arc::new(AtomicUsize::new(0));
    let enough = Arc::new(Notify::new());
    let posters: Vec<_> = (0..4)
        .map(|_| {
            let nodes = [a.url.clone(), b.url.clone()];
            tokio::spawn(burst(
                nodes,
                app.token.clone(),
                unsid.clone(),
                100,
                answered.clone(),
                enough.clone(),
            ))
        })
        .collect();
    enough.notified().await;
    a.child.kill().await.unwrap();
    let mut created = HashSet::new();
    for poster in posters {
        created.extend(poster.await.unwrap());
    }
    assert!(created.len() >= 300, "{} answered 201", created.len());

    // The raw channel closed with A; it resumes at B from the last seq it saw.
    let mut seen = watching.await.unwrap();
    let cursor = seen.keys().max().copied().unwrap_or(0);
    let at_b = Device {
        url: b.url.clone(),
        ..watcher
    };
    let (rest, _) = at_b.channel(cursor).await.until_synced().await;
    for (seq, notification) in rest {
        assert!(seq.0 > cursor, "seq {seq} again after cursor {cursor}");
        assert!(seen.insert(seq.0, notification.id.to_string()).is_none());
    }
    let ids: HashSet<&String> = seen.values().collect();
    let missing = created.iter().filter(|id| !ids.contains(id)).count();
    assert_eq!(missing, 0, "of {} answered 201", created.len());
    let highest = seen.keys().max().copied().unwrap();
    assert_eq!(seen.len() as u64, highest, "no seq skipped: 1..={highest}");

    // The agent moved to B by itself and holds every one of them, once.
    wait_until("the agent has every notification answered 201", || async {
        let stored: HashSet<String> = agent
            .handle
            .store()
            .history(10_000, None)
            .unwrap()
            .into_iter()
            .map(|r| r.id.to_string())
            .collect();
        created.iter().all(|id| stored.contains(id))
    })
    .await;
    assert_eq!(agent.handle.service_url(), b.url);
    assert_eq!(agent.handle.store().len(), seen.len());
    agent.stop().await;
}

#[tokio::test]
async fn one_node_at_a_time_purges_expired_notifications() {
    let url = pg::shared().new_database();
    let node = node(&url).await;
    let (app, _device, unsid) = node.alice_and_contoso().await;
    let mut short = note("contoso.com", "short-lived");
    let soon = node.state.now().plus(std::time::Duration::from_secs(60));
    short["expirationDateTime"] = json!(soon.to_rfc3339());
    node.post_ok(&app, &unsid, &short).await;
    let alice = node
        .state
        .store
        .user_by_name("alice")
        .await
        .unwrap()
        .unwrap()
        .id;
    let stored = || async {
        let scan = node
            .state
            .store
            .feed_scan(&alice, Seq::ZERO, None, 10)
            .await;
        scan.unwrap().records.len()
    };

    // Another node is purging (it holds the lock) when the notification expires: this
    // node leaves the work to it, its own purge task included.
    let (other, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let lock = tidings::service::store::LOCK_PURGE;
    other
        .execute("SELECT pg_advisory_lock($1)", &[&lock])
        .await
        .unwrap();
    node.state
        .clock
        .advance(std::time::Duration::from_secs(120));
    let purged = node.state.store.purge_expired(node.state.now(), 100).await;
    assert_eq!(purged.unwrap(), 0);
    assert_eq!(stored().await, 1);
    other
        .execute("SELECT pg_advisory_unlock($1)", &[&lock])
        .await
        .unwrap();
    wait_until("the node's purge task removes it", || async {
        stored().await == 0
    })
    .await;
    node.stop().await;
}

#[tokio::test]
async fn a_node_refuses_a_database_of_a_newer_schema_and_says_what_to_do() {
    let url = pg::shared().new_database();
    node(&url).await.stop().await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .execute("INSERT INTO tidings_schema (version) VALUES (999)", &[])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut settings = tidings::service::Settings::new(dir.path().to_owned());
    settings.database = Some(PgConfig::new(&url));
    let refused = tidings::service::ServiceState::open(settings).await;
    let said = refused
        .err()
        .expect("a newer schema is refused")
        .to_string();
    assert!(
        said.contains("version 999") && said.contains("upgrade this node"),
        "{said}"
    );
}

/// A node reads other nodes' changes only for users it has channels for; a channel
/// that opens there while another node posts still gets every change once, in order,
/// whether the node passed over them (the backlog then brings them) or published them.
#[tokio::test]
async fn a_channel_opening_on_a_node_that_passed_over_its_user_misses_nothing() {
    const BEFORE: u64 = 10;
    const DURING: u64 = 60;
    let url = pg::shared().new_database();
    let (a, b) = tokio::join!(node(&url), node(&url));
    let (app, _on_a, unsid) = a.alice_and_contoso().await;
    let on_b = b.sign_in("alice", "windows").await;
    on_b.subscribe("contoso.com").await;
    for i in 0..BEFORE {
        a.post_ok(&app, &unsid, &note("contoso.com", &format!("before {i}")))
            .await;
    }
    let burst = async {
        for i in 0..DURING {
            a.post_ok(&app, &unsid, &note("contoso.com", &format!("during {i}")))
                .await;
        }
    };
    let watch = async {
        // Opened once the burst is under way.
        tokio::task::yield_now().await;
        let mut channel = on_b.channel(0).await;
        let (backlog, synced) = channel.until_synced().await;
        let mut seen: Vec<u64> = backlog.iter().map(|(seq, _)| seq.0).collect();
        assert_eq!(seen.last().copied().unwrap_or(0), synced.0);
        while seen.len() < usize::try_from(BEFORE + DURING).unwrap() {
            seen.push(channel.next_change().await.0.0);
        }
        seen
    };
    let ((), seen) = tokio::join!(burst, watch);
    let every: Vec<u64> = (1..=BEFORE + DURING).collect();
    assert_eq!(seen, every, "each change once, in seq order");
    a.stop().await;
    b.stop().await;
}

/// A database of schema 1 (no usage kept beside the heads) gets each user's usage
/// counted from their rows when a node of this version first opens it.
#[tokio::test]
async fn the_usage_a_user_keeps_is_counted_when_the_schema_is_upgraded() {
    let url = pg::shared().new_database();
    let service = node(&url).await;
    let (app, _device, unsid) = service.alice_and_contoso().await;
    for i in 0..3 {
        service
            .post_ok(&app, &unsid, &note("contoso.com", &format!("n{i}")))
            .await;
    }
    let dir = service.stop().await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE feed_heads DROP COLUMN kept, DROP COLUMN kept_bytes,
                 DROP COLUMN watchers;
             DELETE FROM tidings_schema WHERE version >= 2",
        )
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT user_id, count(*), sum(octet_length(record))::bigint FROM notifications GROUP BY user_id",
            &[],
        )
        .await
        .unwrap();
    let (user, count, bytes): (String, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let mut settings = crate::helpers::test_settings(dir.path().to_owned());
    settings.database = Some(PgConfig::new(&url));
    let state = tidings::service::ServiceState::open(settings)
        .await
        .unwrap();
    let usage = state
        .store
        .usage(&tidings::protocol::UserId::new(user))
        .await
        .unwrap();
    assert_eq!(
        (usage.notifications, usage.bytes),
        (count.unsigned_abs(), bytes.unsigned_abs())
    );
    assert_eq!(count, 3);
}

#[tokio::test]
async fn the_database_link_is_tls_checked_against_the_ca_given() {
    let cluster = Cluster::start_with(|dir| {
        let pki = crate::tls::make_pki_for(dir, "db", "127.0.0.1");
        // PostgreSQL takes a key only its own user can read.
        std::fs::set_permissions(
            &pki.key,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        std::fs::copy(&pki.ca, dir.join("ca-for-client.pem")).unwrap();
        format!(
            "-c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            pki.cert.display(),
            pki.key.display()
        )
    });
    let plain = cluster.new_database();
    let url = plain.replace("sslmode=disable", "sslmode=require");
    let ca = cluster.dir.path().join("ca-for-client.pem");

    // Without the CA the server's certificate is not trusted: the node does not start.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = tidings::service::Settings::new(dir.path().join("untrusting"));
    settings.database = Some(PgConfig::new(&url));
    let refused = tidings::service::ServiceState::open(settings).await;
    let said = refused
        .err()
        .expect("an untrusted certificate is refused")
        .to_string();
    assert!(said.contains("cannot reach the database"), "{said}");
    assert!(
        said.contains("UnknownIssuer"),
        "the certificate check says why: {said}"
    );
    assert!(
        said.contains("store_ca_file") && !said.contains("--ca-file"),
        "and names the setting that fixes it: {said}"
    );

    let mut config = PgConfig::new(&url);
    config.ca_file = Some(ca);
    let node = TestService::start_with(move |s| s.database = Some(config)).await;
    let (app, device, unsid) = node.alice_and_contoso().await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    node.post_ok(&app, &unsid, &note("contoso.com", "over TLS"))
        .await;
    assert_eq!(channel.next_change().await.0, Seq(1));
    node.stop().await;
}

#[tokio::test]
async fn sign_in_with_a_list_of_nodes_passes_over_a_node_that_is_down() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };

    let list = format!("{down},{}", service.url);
    let creds = tidings::agent::login(&list, "alice", "alice-pw", "laptop", None)
        .await
        .unwrap();
    assert_eq!(
        creds.service.as_deref(),
        Some(list.as_str()),
        "the whole list is kept"
    );
    let devices = service.admin("device.list", json!({})).await.unwrap();
    assert!(devices.to_string().contains(&creds.device_id), "{devices}");

    // A wrong password is an answer, not a node down: it is not tried elsewhere.
    let twice = format!("{},{}", service.url, service.url);
    let wrong = tidings::agent::login(&twice, "alice", "not-it", "laptop", None).await;
    assert!(
        wrong
            .unwrap_err()
            .to_string()
            .contains("user name or password")
    );

    // Every node down: the error says the last node could not be reached.
    let error = tidings::agent::login(
        &format!("{down},{down}"),
        "alice",
        "alice-pw",
        "laptop",
        None,
    )
    .await
    .unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn a_node_whose_notification_queue_overflows_catches_up_and_skips_nothing() {
    let url = pg::shared().new_database();
    let mut tiny = PgConfig::new(&url);
    tiny.notify_queue = 1;
    let a = TestService::start_with(move |s| s.database = Some(tiny)).await;
    let b = node(&url).await;
    let (app, device, unsid) = a.alice_and_contoso().await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    // A flood of announcements in one transaction (for users that do not exist: each
    // costs A a query) overflows A's queue of one, while B stores real notes whose
    // announcements come in the middle of it and are dropped too.
    let (raw, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let flood = raw.batch_execute(
        "SELECT pg_notify('tidings_feed', '1 0 ghost-' || n) FROM generate_series(1, 500) AS n",
    );
    let bodies: Vec<_> = (0..30)
        .map(|i| note("contoso.com", &format!("real {i}")))
        .collect();
    let posts = async {
        for body in &bodies {
            b.post_ok(&app, &unsid, body).await;
        }
    };
    let (flooded, ()) = tokio::join!(flood, posts);
    flooded.unwrap();
    assert_eq!(
        seqs(&mut channel, bodies.len()).await,
        (1..=30).collect::<Vec<u64>>(),
        "every change once, in order"
    );
    let (samples, _) = crate::metrics::scrape(&a).await;
    assert!(
        crate::metrics::value(&samples, "tidings_notify_overflows_total", None) >= 1.0,
        "A's queue of one overflowed"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn the_services_sessions_commit_synchronously_whatever_the_database_default() {
    let url = pg::shared().new_database();
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let name = admin
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} SET synchronous_commit = off"
        ))
        .await
        .unwrap();
    let show = |config: tokio_postgres::Config| async move {
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let row = client
            .query_one("SHOW synchronous_commit", &[])
            .await
            .unwrap();
        row.get::<_, String>(0)
    };
    let plain: tokio_postgres::Config = url.parse().unwrap();
    assert_eq!(
        show(plain).await,
        "off",
        "the database's default, for others"
    );
    let ours = PgConfig::new(&url).connection().unwrap();
    assert_eq!(show(ours).await, "on", "a 201 waits for the WAL on disk");
}

#[tokio::test]
#[allow(clippy::float_cmp)] // counts: whole numbers, exact in an f64
async fn another_nodes_changes_come_in_their_announcement_and_are_read_back_only_when_too_big() {
    let url = pg::shared().new_database();
    let (a, b) = tokio::join!(node(&url), node(&url));
    let (app, on_a, unsid) = a.alice_and_contoso().await;
    let on_b = b.sign_in("alice", "windows").await;
    on_b.subscribe("contoso.com").await;
    let mut channel = on_b.channel(0).await;
    channel.until_synced().await;
    let reads = || async {
        let (samples, _) = crate::metrics::scrape(&b).await;
        crate::metrics::value(&samples, "tidings_notify_reads_total", None)
    };
    let before = reads().await;

    // Posts, a replace in place and a read, all on A: B publishes each from A's
    // announcement, in order, reading nothing back.
    let first = a.post_ok(&app, &unsid, &note("contoso.com", "one")).await;
    let mut replaced = note("contoso.com", "two");
    replaced["appNotificationId"] = json!("same");
    a.post_ok(&app, &unsid, &replaced).await;
    replaced["payload"]["visualContent"]["title"] = json!("two, replaced");
    a.post_ok(&app, &unsid, &replaced).await;
    on_a.mark_read(first.id.as_str()).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        let (seq, notification) = channel.next_change().await;
        got.push((
            seq.0,
            notification.content.payload.visual_content.map(|v| v.title),
        ));
    }
    assert_eq!(
        got.iter().map(|(seq, _)| *seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(got[2].1.as_deref(), Some("two, replaced"));
    assert_eq!(
        reads().await,
        before,
        "every change came in its announcement"
    );

    // A change too big to ride along (16 KiB of raw content) is read back, once.
    let mut big = note("contoso.com", "big");
    big["payload"]["rawContent"] = json!("r".repeat(16 * 1024));
    let posted = a.post_ok(&app, &unsid, &big).await;
    let (seq, notification) = channel.next_change().await;
    assert_eq!((seq, &notification.id), (Seq(5), &posted.id));
    assert_eq!(reads().await, before + 1.0);
    a.post_ok(&app, &unsid, &note("contoso.com", "small again"))
        .await;
    assert_eq!(channel.next_change().await.0, Seq(6));
    assert_eq!(reads().await, before + 1.0);
    a.stop().await;
    b.stop().await;
}
