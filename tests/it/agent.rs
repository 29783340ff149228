//! The agent's sync core against the real service, in-process: durable cache, acks,
//! resume from the cursor, reconnects, and a revoked device.
//!
//! The presenter here is a recorder, so these tests see exactly what the agent asks
//! the desktop to do; the real desktop (dunst under Xvfb) is in `desktop.rs`.

use tidings::agent::store::LocalChange;
use tidings::agent::{AgentError, Settings};
use tidings::protocol::local::EventKind;
use tidings::protocol::validate::StatePatch;
use tidings::protocol::{ReadState, Seq, UserActionState};

use crate::helpers::{Device, TestService, note, reopen_agent_store, wait_until};
use crate::test_agent::TestAgent;

fn start_agent(service_url: &str, device: &Device, dir: &std::path::Path) -> TestAgent {
    TestAgent::start(service_url, device, dir)
}

fn start_agent_with(
    service_url: &str,
    device: &Device,
    dir: &std::path::Path,
    tune: impl FnOnce(&mut Settings),
) -> TestAgent {
    TestAgent::start_with(service_url, device, dir, tune)
}

async fn wait_acked(service: &TestService, device: &str, seq: u64) {
    wait_until(&format!("device {device} acks {seq}"), || async {
        service.device_info(device).await["ackedSeq"] == seq
    })
    .await;
}

async fn stored(dir: &std::path::Path) -> (usize, Seq) {
    let store = reopen_agent_store(&dir.join("store")).await;
    (store.len(), store.cursor().unwrap())
}

#[tokio::test]
async fn two_agents_of_one_user_both_store_what_is_posted() {
    let service = TestService::start().await;
    let (app, laptop, unsid) = service.alice_and_contoso().await;
    let phone = service.sign_in("alice", "linux").await;
    phone.subscribe("contoso.com").await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on_laptop = start_agent(&service.url, &laptop, dirs.0.path());
    let on_phone = start_agent(&service.url, &phone, dirs.1.path());
    for i in 0..3 {
        service
            .post_ok(&app, &unsid, &note("contoso.com", &format!("n{i}")))
            .await;
    }
    wait_acked(&service, &laptop.id, 3).await;
    wait_acked(&service, &phone.id, 3).await;
    assert_eq!(on_laptop.recorder.shown(), 3);
    assert_eq!(on_phone.recorder.shown(), 3);
    // Read elsewhere (here: through the REST API) closes the toast on both.
    let first = on_phone.recorder.shown.lock().unwrap()[0].clone();
    laptop.mark_read(first.as_str()).await;
    wait_acked(&service, &laptop.id, 4).await;
    wait_acked(&service, &phone.id, 4).await;
    assert_eq!(
        *on_phone.recorder.closed.lock().unwrap(),
        vec![first.clone()]
    );
    assert_eq!(*on_laptop.recorder.closed.lock().unwrap(), vec![first]);
    on_laptop.stop().await;
    on_phone.stop().await;
    assert_eq!(stored(dirs.0.path()).await, (3, Seq(4)));
    assert_eq!(stored(dirs.1.path()).await, (3, Seq(4)));
    service.stop().await;
}

#[tokio::test]
async fn a_restarted_agent_resumes_from_its_cursor_without_duplicates() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let dir = tempfile::tempdir().unwrap();
    let first = start_agent(&service.url, &device, dir.path());
    for i in 0..20 {
        service
            .post_ok(&app, &unsid, &note("contoso.com", &format!("a{i}")))
            .await;
    }
    wait_acked(&service, &device.id, 20).await;
    first.stop().await;
    for i in 0..20 {
        service
            .post_ok(&app, &unsid, &note("contoso.com", &format!("b{i}")))
            .await;
    }
    let second = start_agent(&service.url, &device, dir.path());
    wait_acked(&service, &device.id, 40).await;
    assert_eq!(
        second.recorder.presented(),
        20,
        "only what is new since the cursor"
    );
    second.stop().await;
    assert_eq!(stored(dir.path()).await, (40, Seq(40)));
    service.stop().await;
}

/// `Agent::run` returns only once its parts have ended: IPC connections (which hold
/// the store) and `watch` forwarders included. So the same store and socket open again
/// at once, as `systemctl restart` needs; a part left running would hold the store.
#[tokio::test]
async fn a_stopped_agent_has_let_go_of_its_store_and_socket_with_clients_connected() {
    let service = TestService::start().await;
    let (_app, device, _unsid) = service.alice_and_contoso().await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("agent.sock");
    let serving = |s: &mut Settings| s.ipc_socket = Some(socket.clone());
    let agent = start_agent_with(&service.url, &device, dir.path(), serving);
    let mut watcher = wait_for_ipc(&socket).await;
    watcher.call("watch", serde_json::json!({})).await.unwrap();
    let _idle = wait_for_ipc(&socket).await;
    agent.stop().await;
    assert!(
        !socket.exists(),
        "the socket is removed once the server ended"
    );
    let after_stop = tokio::time::timeout(crate::helpers::DEADLINE, watcher.next_notification())
        .await
        .expect("the watch ends");
    assert!(
        matches!(after_stop, Ok(None)),
        "the watch connection was closed: {after_stop:?}"
    );
    let again = start_agent_with(&service.url, &device, dir.path(), serving);
    let mut client = wait_for_ipc(&socket).await;
    let status = client.call("status", serde_json::json!({})).await.unwrap();
    let served = status["service"].as_str().unwrap_or_default();
    assert!(served.starts_with(&service.url), "{status}");
    again.stop().await;
    service.stop().await;
}

/// A client of the agent's IPC socket, once it serves.
async fn wait_for_ipc(socket: &std::path::Path) -> tidings::ipc::Client {
    let path = socket.to_owned();
    wait_until("the agent serves IPC", || {
        let path = path.clone();
        async move { tidings::ipc::Client::connect(&path).await.is_ok() }
    })
    .await;
    tidings::ipc::Client::connect(socket).await.unwrap()
}

#[tokio::test]
async fn the_agent_reconnects_by_itself_when_the_service_restarts() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&service.url, &device, dir.path());
    service
        .post_ok(&app, &unsid, &note("contoso.com", "before"))
        .await;
    wait_acked(&service, &device.id, 1).await;
    let service = service.restart_on_same_port().await;
    for i in 0..10 {
        service
            .post_ok(&app, &unsid, &note("contoso.com", &format!("after {i}")))
            .await;
    }
    wait_acked(&service, &device.id, 11).await;
    assert_eq!(agent.recorder.presented(), 11);
    agent.stop().await;
    assert_eq!(stored(dir.path()).await, (11, Seq(11)));
    service.stop().await;
}

#[tokio::test]
async fn a_revoked_device_stops_its_agent_with_a_clear_error() {
    let service = TestService::start().await;
    let (_, device, _) = service.alice_and_contoso().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&service.url, &device, dir.path());
    wait_until("the agent is connected", || async {
        service.device_info(&device.id).await["connected"] == true
    })
    .await;
    service
        .admin("device.revoke", serde_json::json!({"id": device.id}))
        .await
        .unwrap();
    let err = agent.ended().await.unwrap_err();
    assert!(matches!(err, AgentError::SignedOut), "{err}");
    assert!(err.to_string().contains("sign in again"));
    service.stop().await;
}

fn dismiss() -> LocalChange {
    LocalChange::Update(StatePatch {
        read_state: Some(ReadState::Read),
        user_action_state: Some(UserActionState::Dismissed),
    })
}

#[tokio::test]
async fn a_dismiss_on_one_agent_reaches_the_others_store() {
    let service = TestService::start().await;
    let (app, laptop, unsid) = service.alice_and_contoso().await;
    let phone = service.sign_in("alice", "linux").await;
    phone.subscribe("contoso.com").await;
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let on_laptop = start_agent(&service.url, &laptop, dirs.0.path());
    let on_phone = start_agent(&service.url, &phone, dirs.1.path());
    let posted = service
        .post_ok(&app, &unsid, &note("contoso.com", "dismiss me"))
        .await;
    wait_acked(&service, &laptop.id, 1).await;
    wait_acked(&service, &phone.id, 1).await;

    let started = tokio::time::Instant::now();
    assert_eq!(
        on_laptop
            .handle
            .change(std::slice::from_ref(&posted.id), dismiss())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        *on_laptop.recorder.closed.lock().unwrap(),
        vec![posted.id.clone()],
        "closed here at once"
    );
    wait_until("the dismiss reaches the phone's store", || async {
        let record = on_phone.handle.store().get(&posted.id).unwrap().unwrap();
        record.state.user_action_state == UserActionState::Dismissed
    })
    .await;
    eprintln!(
        "dismiss reached the other agent's store in {:?}",
        started.elapsed()
    );
    // The store is written before the toast is closed: wait for the close too.
    wait_until("the phone closes its toast", || async {
        *on_phone.recorder.closed.lock().unwrap() == vec![posted.id.clone()]
    })
    .await;
    wait_until("the laptop's outbox is confirmed", || async {
        on_laptop.handle.store().outbox().unwrap().is_empty()
    })
    .await;
    on_laptop.stop().await;
    on_phone.stop().await;
    service.stop().await;
}

#[tokio::test]
async fn changes_made_offline_survive_a_restart_and_sync_on_reconnect() {
    let service = TestService::start().await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let observer = service.sign_in("alice", "linux").await;
    observer.subscribe("contoso.com").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&service.url, &device, dir.path());
    let kept = service
        .post_ok(&app, &unsid, &note("contoso.com", "keep"))
        .await;
    let gone = service
        .post_ok(&app, &unsid, &note("contoso.com", "delete"))
        .await;
    wait_acked(&service, &device.id, 2).await;
    let url = service.url.clone();
    let service_dir = service.stop().await;

    agent
        .handle
        .change(std::slice::from_ref(&kept.id), dismiss())
        .await
        .unwrap();
    agent
        .handle
        .change(std::slice::from_ref(&gone.id), LocalChange::Delete)
        .await
        .unwrap();
    agent.stop().await;

    let again = start_agent(&url, &device, dir.path());
    assert_eq!(
        again.handle.store().outbox().unwrap().len(),
        2,
        "the outbox survived the restart"
    );
    let local = again.handle.store().get(&kept.id).unwrap().unwrap();
    assert_eq!(local.state.user_action_state, UserActionState::Dismissed);

    let service = TestService::resume(service_dir, &url).await;
    let observer = Device {
        url: service.url.clone(),
        ..observer
    };
    wait_until("the offline changes reach the service", || async {
        let feed = observer.feed(0).await;
        feed.len() == 2
            && feed
                .iter()
                .any(|n| n["id"] == kept.id.as_str() && n["userActionState"] == "dismissed")
            && feed
                .iter()
                .any(|n| n["id"] == gone.id.as_str() && n["status"] == "deleted")
    })
    .await;
    wait_until("the outbox is confirmed", || async {
        again.handle.store().outbox().unwrap().is_empty()
    })
    .await;
    let local = again.handle.store().get(&kept.id).unwrap().unwrap();
    assert!(
        local.seq.0 > 2,
        "the service's echo replaced the local copy"
    );
    assert_eq!(local.state.user_action_state, UserActionState::Dismissed);
    again.stop().await;
    service.stop().await;
}

#[tokio::test]
async fn retention_closes_the_toast_and_tells_watchers() {
    let service = TestService::start().await;
    let (app, laptop, unsid) = service.alice_and_contoso().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent_with(&service.url, &laptop, dir.path(), |s| {
        s.history_cap = 2;
        s.chores_every = std::time::Duration::from_millis(20);
    });
    let mut events = agent.handle.events();
    let mut posted = Vec::new();
    for i in 0..3 {
        let sent = service
            .post_ok(&app, &unsid, &note("contoso.com", &format!("n{i}")))
            .await;
        posted.push(sent.id);
    }
    // The oldest of three (none read) goes over a cap of 2, and watchers hear of it
    // after they heard of its creation: events come in the order changes were made.
    let mut created = Vec::new();
    let removed = loop {
        let event = tokio::time::timeout(crate::helpers::DEADLINE, events.recv())
            .await
            .expect("a removed event in time")
            .unwrap();
        let id = event.notification.unwrap().id;
        match event.kind {
            EventKind::Created => created.push(id),
            EventKind::Removed => break id,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(removed, posted[0], "the oldest goes");
    assert!(
        created.contains(&removed),
        "its removal came after its creation: {created:?}"
    );
    assert!(agent.recorder.closed.lock().unwrap().contains(&removed));
    assert!(agent.handle.store().get(&removed).unwrap().is_none());
    assert_eq!(agent.handle.store().len(), 2);
    agent.stop().await;
}

#[tokio::test]
async fn an_app_subscribed_after_the_channel_passed_its_notifications_brings_them() {
    // The soak found it: a device signed in again after a revoke opens its channel
    // before its apps subscribe anew, and the service filters their notifications out
    // of it while the cursor moves on.
    let (service, app, phone, unsid) = {
        let service = TestService::start().await;
        let (app, phone, unsid) = service.alice_and_contoso().await;
        (service, app, phone, unsid)
    };
    let laptop = service.sign_in("alice", "linux").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&service.url, &laptop, dir.path());
    for title in ["one", "two"] {
        service
            .post_ok(&app, &unsid, &note("contoso.com", title))
            .await;
    }
    // A note of the user (every device gets those) moves the laptop's cursor past them.
    phone.post_note("to all my devices").await;
    wait_until("the laptop stores the note", || async {
        agent.handle.store().cursor().unwrap() == Seq(3)
    })
    .await;
    assert_eq!(
        agent.handle.store().len(),
        1,
        "the app's two were filtered out"
    );
    agent.handle.subscribe("contoso.com").await.unwrap();
    service
        .post_ok(&app, &unsid, &note("contoso.com", "three"))
        .await;
    wait_until("the laptop holds the app's three and the note", || async {
        agent.handle.store().len() == 4
    })
    .await;
    assert_eq!(agent.handle.store().cursor().unwrap(), Seq(4));
    // The replay is forgotten once its backlog has ended, which may be just after the
    // last notification is stored.
    wait_until("the replay is forgotten", || async {
        agent.handle.store().resync().unwrap() == 0
    })
    .await;
    agent.stop().await;
    let store = reopen_agent_store(&dir.path().join("store")).await;
    assert_eq!(
        store.resync().unwrap(),
        0,
        "the replay is done and forgotten"
    );
    service.stop().await;
}

#[tokio::test]
async fn the_agent_subscribes_keeps_and_renews_its_subscriptions() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let app = service.add_app("contoso.com").await;
    let device = service.sign_in("alice", "linux").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&service.url, &device, dir.path());
    let refused = agent.handle.subscribe("not a host").await.unwrap_err();
    assert!(refused.to_string().contains("targetHostName"), "{refused}");
    let (sub, keys) = agent.handle.subscribe("Contoso.com").await.unwrap();
    assert_eq!(sub.target_host_name, "contoso.com");
    service
        .post_ok(
            &app,
            sub.unsid.as_str(),
            &note("contoso.com", "via the agent's UNSID"),
        )
        .await;
    wait_acked(&service, &device.id, 1).await;
    assert_eq!(agent.recorder.shown(), 1);

    let far =
        tidings::protocol::Timestamp::now().plus(std::time::Duration::from_secs(31 * 24 * 3600));
    assert_eq!(agent.handle.renew_due(far).await.unwrap(), 1);
    let renewed = agent.handle.store().subscriptions().unwrap();
    assert_eq!(renewed.len(), 1);
    assert_eq!(renewed[0].unsid, sub.unsid, "renewing keeps the UNSID");
    assert!(renewed[0].expiration_date_time >= sub.expiration_date_time);
    let (_, again) = agent.handle.subscribe("contoso.com").await.unwrap();
    assert_eq!(again, keys, "renewing keeps the keys");
    // A subscription kept by an agent from before keys (none for it) gets them when it
    // is next renewed.
    agent.handle.store().forget_all_keys().await.unwrap();
    assert!(agent.handle.store().keyring().unwrap().is_empty());
    assert_eq!(agent.handle.renew_due(far).await.unwrap(), 1);
    let ring = agent.handle.store().keyring().unwrap();
    assert_eq!(ring.len(), 1, "keys made at renewal");
    assert!(ring.contains_key(&sub.unsid));
    assert_eq!(
        agent
            .handle
            .renew_due(tidings::protocol::Timestamp::now())
            .await
            .unwrap(),
        0
    );
    agent.stop().await;
    let store = reopen_agent_store(&dir.path().join("store")).await;
    assert_eq!(
        store.subscriptions().unwrap()[0].unsid,
        sub.unsid,
        "kept across restarts"
    );
    service.stop().await;
}
