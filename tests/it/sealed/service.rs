//! The service carries encrypted content to the device that can open it, refuses
//! entries no device of the user can open, and holds no cleartext anywhere.

use std::path::PathBuf;

use serde_json::json;
use tidings::protocol::sealed::DeviceKeys;

use super::{ciphertext, sealed_by_python};
use crate::helpers::TestService;

/// Every file the service side keeps: its data directory, and with PostgreSQL its
/// database's files and the cluster's write-ahead log, after a checkpoint (so what the
/// database holds is on disk).
async fn service_side_files(service: &TestService) -> Vec<(PathBuf, Vec<u8>)> {
    let mut roots = vec![service.dir.path().to_owned()];
    if let Some(url) = crate::pg::enabled()
        .then(|| std::fs::read_to_string(service.dir.path().join("database-url")).ok())
        .flatten()
    {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute("CHECKPOINT").await.unwrap();
        let current = "SELECT oid FROM pg_database WHERE datname = current_database()";
        let oid: u32 = client.query_one(current, &[]).await.unwrap().get(0);
        let data = crate::pg::shared().data();
        roots.push(data.join("base").join(oid.to_string()));
        roots.push(data.join("pg_wal"));
    }
    let mut files = Vec::new();
    while let Some(dir) = roots.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                roots.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files.push((path, bytes));
            }
        }
    }
    files
}

/// Whether `needle` is in `haystack` (memchr's search: the write-ahead log alone is
/// tens of megabytes).
fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

#[tokio::test]
async fn the_service_carries_encrypted_content_it_cannot_read_and_refuses_bad_entries() {
    let service = TestService::start().await;
    let (app, laptop, unsid) = service.alice_and_contoso().await;
    let phone = service.sign_in("alice", "android").await;
    let phone_unsid = phone.subscribe("contoso.com").await;
    service.add_user("bob").await;
    let bobs = service.sign_in("bob", "linux").await;
    let bobs_unsid = bobs.subscribe("contoso.com").await;
    let (laptop_keys, phone_keys) = (
        DeviceKeys::generate().unwrap(),
        DeviceKeys::generate().unwrap(),
    );
    let secret = format!("one-time code {}", std::process::id() * 7919);
    let cleartext = json!({"visualContent": {"title": secret}}).to_string();
    let entries = json!([
        {"unsid": unsid, "content": sealed_by_python(&laptop_keys.public(), &cleartext)},
        {"unsid": phone_unsid, "content": sealed_by_python(&phone_keys.public(), &cleartext)},
    ]);
    let body = json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": entries}});
    let mut channel = phone.channel(0).await;
    channel.until_synced().await;
    let created = service.post_ok(&app, &unsid, &body).await;
    assert!(created.content.payload.visual_content.is_none());

    // The phone's channel carries both entries as sent; only the phone's opens for it.
    let (_, delivered) = channel.next_change().await;
    let carried = delivered.content.payload.encrypted_content.unwrap();
    assert_eq!(carried.len(), 2);
    assert_eq!(carried[1].unsid.as_str(), phone_unsid);
    assert_eq!(
        phone_keys.open(&carried[1].content).unwrap(),
        cleartext.as_bytes()
    );
    assert!(phone_keys.open(&carried[0].content).is_err());

    // Entries that no device of this user can open are refused, naming the entry.
    let good = sealed_by_python(&laptop_keys.public(), &cleartext);
    let refused = [
        (
            json!([{"unsid": unsid, "content": good}, {"unsid": bobs_unsid, "content": good}]),
            "payload.encryptedContent[1].unsid",
        ),
        (
            json!([{"unsid": "no-such-unsid", "content": good}]),
            "payload.encryptedContent[0].unsid",
        ),
        (
            json!([{"unsid": unsid, "content": &good[..90]}]),
            "payload.encryptedContent[0].content",
        ),
        (
            json!([{"unsid": unsid, "content": "A".repeat(40_000)}]),
            "payload.encryptedContent[0].content",
        ),
    ];
    for (entries, field) in refused {
        let body =
            json!({"targetHostName": "contoso.com", "payload": {"encryptedContent": entries}});
        let response = service.post(&app, &unsid, &body).await;
        assert_eq!(response.status(), 400);
        let error: serde_json::Value = response.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(field), "{message}");
    }
    drop(laptop);

    // The cleartext is nowhere on the service side: not in its store, not in /metrics.
    let (_, metrics) = crate::metrics::scrape(&service).await;
    assert!(!metrics.contains(&secret));
    let files = service_side_files(&service).await;
    assert!(
        files
            .iter()
            .any(|(_, bytes)| holds(bytes, carried[1].content.as_bytes())
                || holds(bytes, &ciphertext(&carried[1].content))),
        "the ciphertext should be stored somewhere: is the scan looking in the right place?"
    );
    for (path, bytes) in &files {
        assert!(
            !holds(bytes, secret.as_bytes()),
            "the cleartext is in {}",
            path.display()
        );
    }
    service.stop().await;
}
