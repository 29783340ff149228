//! The real binaries, as a user runs them: `subscribe --json` gives the keys,
//! `send --encrypt-for` encrypts, the agent shows the cleartext, and the service,
//! logging everything it would say, never has it.

use serde_json::{Value, json};

use crate::helpers::wait_until;
use crate::home::{Home, terminate};
use crate::process::{Process, admin};

/// User alice and the app contoso.com, made with `tidings admin` on the service's data.
async fn provision(data: &std::path::Path) -> Value {
    let add_user = ["user", "add", "alice", "--password-stdin"];
    let (code, _, err) = admin(data, &add_user, "alice-pw\n").await;
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = admin(data, &["app", "add", "contoso.com", "--json"], "").await;
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// `tidings send` as `app`'s backend to `unsid` at `url`, encrypting for `pair`.
async fn send(
    home: &Home,
    app: &Value,
    url: &str,
    unsid: &str,
    title: &str,
    pair: &str,
) -> std::process::Output {
    let args = [
        "send",
        "--unsid",
        unsid,
        "--client-id",
        app["clientId"].as_str().unwrap(),
        "--client-secret-stdin",
        "--host",
        "contoso.com",
        "--title",
        title,
        "--body",
        "only this device can read it",
        "--encrypt-for",
        pair,
        "--service",
        url,
        "--json",
    ];
    let secret = format!("{}\n", app["clientSecret"].as_str().unwrap());
    home.run_with_input(&args, &secret).await
}

#[tokio::test]
async fn the_command_line_subscribes_with_keys_and_sends_encrypted_content() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let service = Process::start_logging(&data, "debug").await;
    let app = provision(&data).await;
    let home = Home::new();
    home.login(&service.url, "alice", "alice-pw").await;
    let agent = home.serving_agent().await;

    let subscribed = home.json(&["subscribe", "contoso.com"]).await;
    let unsid = subscribed["unsid"].as_str().unwrap();
    let keys = &subscribed["keys"];
    let pair = format!(
        "{}:{}",
        keys["p256dh"].as_str().unwrap(),
        keys["auth"].as_str().unwrap()
    );
    let mut ipc = tidings::ipc::Client::connect(&home.socket()).await.unwrap();
    let listed = ipc.call("subscriptions", Value::Null).await.unwrap();
    assert_eq!(listed[0]["keys"], *keys, "{listed}");

    let secret = format!("Your code is {}", std::process::id() % 999_983);
    let sent = send(&home, &app, &service.url, unsid, &secret, &pair).await;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let created: Value = serde_json::from_slice(&sent.stdout).unwrap();
    assert!(
        !created.to_string().contains(&secret),
        "the service answered the cleartext"
    );
    let id = created["id"].as_str().unwrap();

    wait_until("the agent stores it", || async {
        home.run(&["show", id]).await.status.success()
    })
    .await;
    let shown = String::from_utf8(home.run(&["show", id]).await.stdout).unwrap();
    assert!(shown.contains(&secret), "{shown}");
    assert!(
        shown.contains("end to end, opened on this device"),
        "{shown}"
    );
    let item = home.json(&["show", id]).await;
    assert_eq!(item["payload"]["encryptedContent"], json!([]), "{item}");

    // A key pair that is no key pair is refused before anything is sent.
    let refused = send(&home, &app, &service.url, unsid, "x", "AAAA:BBBB").await;
    assert_eq!(refused.status.code(), Some(1));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--encrypt-for"), "{said}");

    let metrics = crate::helpers::get_text(&format!("{}/metrics", service.url)).await;
    assert!(!metrics.contains(&secret));
    let log = service.log_text();
    assert!(log.contains("DEBUG"), "the service logged at debug level");
    assert!(
        !log.contains(&secret),
        "the cleartext is in the service's log"
    );
    terminate(agent).await;
}
