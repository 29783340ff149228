//! The agent's outbox against a real service whose store refuses writes for a while: a
//! change the service cannot take now (`serviceUnavailable`) stays in the outbox and
//! goes again once it can. (A change refused for good is dropped: the unit test of
//! `agent::answers` and `agent.rs`'s offline changes cover that.)

use tidings::agent::store::LocalChange;
use tidings::protocol::ReadState;
use tidings::protocol::validate::StatePatch;

use crate::helpers::{TestService, note, wait_until};
use crate::test_agent::TestAgent;

#[tokio::test]
async fn a_change_the_service_cannot_take_now_is_kept_and_sent_again() {
    // On sled in both passes: only its flushes can be made to fail on purpose.
    let service = TestService::start_with(|settings| settings.database = None).await;
    let (app, device, unsid) = service.alice_and_contoso().await;
    let observer = service.sign_in("alice", "linux").await;
    observer.subscribe("contoso.com").await;
    let dir = tempfile::tempdir().unwrap();
    let agent = TestAgent::start(&service.url, &device, dir.path());
    let posted = service
        .post_ok(&app, &unsid, &note("contoso.com", "later"))
        .await;
    wait_until("the agent has it", || async {
        agent.handle.store().get(&posted.id).unwrap().is_some()
    })
    .await;

    let sled = service.state.store.as_sled().expect("a sled store");
    sled.fail_flushes(true);
    let read = LocalChange::Update(StatePatch {
        read_state: Some(ReadState::Read),
        user_action_state: None,
    });
    agent
        .handle
        .change(std::slice::from_ref(&posted.id), read)
        .await
        .unwrap();
    // Nothing else writes: the store fails on the agent's change, which the service
    // answers `serviceUnavailable` (and its recovery then closes the channel).
    wait_until("the service could not take the change", || async {
        service.state.store.failure().is_some()
    })
    .await;
    assert_eq!(agent.handle.store().outbox().unwrap().len(), 1);

    sled.fail_flushes(false);
    wait_until("the change reaches the service once it can", || async {
        observer
            .feed(0)
            .await
            .iter()
            .any(|n| n["id"] == posted.id.as_str() && n["readState"] == "read")
    })
    .await;
    wait_until("the outbox is confirmed", || async {
        agent.handle.store().outbox().unwrap().is_empty()
    })
    .await;
    agent.stop().await;
    service.stop().await;
}
