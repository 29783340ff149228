//! `tidings agent` as a user runs it: the real binary, with its own HOME and XDG
//! directories, in local mode (nothing configured).

use std::process::Stdio;

use serde_json::json;
use tidings::agent::credentials::Credentials;
use tidings::agent::store::AgentStore;

use crate::helpers::wait_until;
use crate::home::{Home, terminate, wait_for_file};

#[tokio::test]
async fn the_agent_binary_runs_local_mode_with_nothing_configured() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let url = home.local_service_url().await;
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    wait_for_file(&home.agent_dir().join("credentials.toml")).await;
    let creds = Credentials::load(&home.agent_dir()).unwrap().unwrap();
    assert_eq!(
        (creds.service.as_deref(), creds.user.as_str()),
        (None, "tester")
    );

    // A note to my own devices, posted by the agent as this device over the REST API
    // (the agent's credential is its own: each refresh replaces it, and a replaced one
    // used again would revoke the device).
    let posted = home
        .json(&["send", "--title", "hello from local mode"])
        .await;
    assert_eq!(
        posted["payload"]["visualContent"]["title"],
        "hello from local mode"
    );
    wait_until("the agent acks the note", || async {
        let devices = home.admin_json(&["device", "list"]).await;
        devices[0]["ackedSeq"] == 1
    })
    .await;
    let devices = home.admin_json(&["device", "list"]).await;
    assert_eq!(
        (devices[0]["user"].clone(), devices[0]["connected"].clone()),
        (json!("tester"), json!(true))
    );
    terminate(agent).await;
    assert!(
        !home.path("run/tidings/service.url").exists(),
        "the URL file is removed"
    );

    let store = AgentStore::open(&home.agent_dir().join("store"), 1 << 20).unwrap();
    let history = store.history(10, None).unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        history[0]
            .content
            .payload
            .visual_content
            .as_ref()
            .unwrap()
            .title,
        "hello from local mode"
    );
    drop(store);

    // A second start reuses the device instead of registering another.
    let again = home.agent();
    home.local_service_url().await;
    let second = home
        .command(&["agent", "--no-toasts"])
        .output()
        .await
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains("already running"), "{message}");
    home.local_service_url().await;
    wait_until("the agent reconnects", || async {
        home.admin_json(&["device", "list"]).await[0]["connected"] == true
    })
    .await;
    assert_eq!(
        home.admin_json(&["device", "list"])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    terminate(again).await;
}

#[tokio::test]
async fn login_then_agent_connects_to_that_service() {
    let service = crate::helpers::TestService::start().await;
    service.add_user("alice").await;
    let home = Home::new();
    let refused = home
        .command(&[
            "login",
            "http://notify.example.com",
            "--user",
            "alice",
            "--password-stdin",
        ])
        .output()
        .await
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unencrypted"));
    let mut login = home
        .command(&[
            "login",
            &service.url,
            "--user",
            "alice",
            "--password-stdin",
            "--device-name",
            "laptop",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(login.stdin.as_mut().unwrap(), b"alice-pw\n")
        .await
        .unwrap();
    let output = login.wait_with_output().await.unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("signed in"));
    let creds = Credentials::load(&home.agent_dir()).unwrap().unwrap();
    assert_eq!(creds.service.as_deref(), Some(service.url.as_str()));

    let other = home
        .command(&["agent", "--service", "http://127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    assert_eq!(other.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&other.stderr).contains("tidings login"));

    let agent = home.agent();
    wait_until("the agent connects", || async {
        service.device_info(&creds.device_id).await["connected"] == true
    })
    .await;
    assert_eq!(
        service.device_info(&creds.device_id).await["name"],
        "laptop"
    );
    terminate(agent).await;

    let logout = home.command(&["logout"]).output().await.unwrap();
    assert!(
        logout.status.success(),
        "{}",
        String::from_utf8_lossy(&logout.stderr)
    );
    assert_eq!(service.device_info(&creds.device_id).await["revoked"], true);
    assert!(
        Credentials::load(&home.agent_dir()).unwrap().is_none(),
        "the credential is deleted"
    );
    let again = home.command(&["logout"]).output().await.unwrap();
    assert_eq!(again.status.code(), Some(1), "nothing left to log out of");
    service.stop().await;
}

#[tokio::test]
async fn an_agent_killed_mid_stream_ends_with_each_notification_once() {
    let service = crate::helpers::TestService::start().await;
    let (app, _, unsid) = service.alice_and_contoso().await;
    let home = Home::new();
    let mut login = home
        .command(&["login", &service.url, "--user", "alice", "--password-stdin"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(login.stdin.as_mut().unwrap(), b"alice-pw\n")
        .await
        .unwrap();
    assert!(login.wait().await.unwrap().success());
    let mut creds = Credentials::load(&home.agent_dir()).unwrap().unwrap();
    // The new device subscribes to the app through the REST API, as the agent will; the
    // replaced refresh token goes back into the credential, as the agent would save it.
    let (token, refresh) =
        crate::helpers::refresh_access_token(&service.http, &service.url, &creds.refresh_token)
            .await;
    creds.refresh_token.clone_from(&refresh);
    creds.save(&home.agent_dir()).unwrap();
    let device = crate::helpers::Device {
        url: service.url.clone(),
        id: creds.device_id.clone(),
        token,
        refresh,
        http: service.http.clone(),
    };
    let device_unsid = device.subscribe("contoso.com").await;
    assert_ne!(device_unsid, unsid);

    let mut agent = home.agent();
    let total = 1000_u64;
    let posting = {
        let (http, url, token) = (service.http.clone(), service.url.clone(), app.token.clone());
        tokio::spawn(async move {
            for i in 0..total {
                let title = format!("n{i}");
                crate::helpers::post_as_app(&http, &url, &token, &device_unsid, &title).await;
            }
        })
    };
    wait_until("the agent is part-way through", || async {
        service.device_info(&creds.device_id).await["ackedSeq"]
            .as_u64()
            .unwrap()
            >= 100
    })
    .await;
    agent.kill().await.unwrap();
    let acked_at_kill = service.device_info(&creds.device_id).await["ackedSeq"]
        .as_u64()
        .unwrap();
    assert!(acked_at_kill < total, "killed part-way, at {acked_at_kill}");
    let again = home.agent();
    posting.await.unwrap();
    wait_until("the restarted agent catches up", || async {
        service.device_info(&creds.device_id).await["ackedSeq"] == total
    })
    .await;
    terminate(again).await;
    let store = AgentStore::open(&home.agent_dir().join("store"), 1 << 20).unwrap();
    assert_eq!(
        store.len(),
        1000,
        "each notification stored once (killed at ack {acked_at_kill})"
    );
    assert_eq!(store.cursor().unwrap().0, total);
    service.stop().await;
}

#[tokio::test]
async fn a_config_file_with_a_typo_is_reported_with_its_path() {
    let home = Home::new();
    std::fs::create_dir_all(home.path("config/tidings")).unwrap();
    std::fs::write(
        home.path("config/tidings/config.toml"),
        "[agent]\nhistory_capp = 5\n",
    )
    .unwrap();
    let output = home
        .command(&["agent", "--no-toasts"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("config.toml") && message.contains("history_capp"),
        "{message}"
    );
}

#[tokio::test]
async fn local_mode_exits_when_its_embedded_service_cannot_run() {
    let mut home = Home::new();
    // A data directory so deep that the service's admin socket path is longer than a
    // Unix socket path may be (108 bytes): the embedded service cannot start.
    let deep = home.path(&format!("data/{}", "d".repeat(120)));
    std::fs::create_dir_all(&deep).unwrap();
    home.set_env("XDG_DATA_HOME", deep.to_str().unwrap());
    let output = tokio::time::timeout(
        crate::helpers::DEADLINE,
        home.command(&["agent", "--no-toasts"]).output(),
    )
    .await
    .expect("the agent exits instead of retrying a dead service")
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the local service ended"), "{stderr}");
}

#[tokio::test]
async fn local_modes_user_gets_a_password_for_the_web_inbox_on_the_agents_port() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let url = home.local_service_url().await;
    let http = reqwest::Client::new();
    let sign_in = |password: &'static str| {
        http.post(format!("{url}/web/session"))
            .header("Origin", url.as_str())
            .json(&json!({"username": "tester", "password": password}))
            .send()
    };
    assert_eq!(sign_in("s3cret").await.unwrap().status(), 401);
    let args = ["admin", "user", "passwd", "tester", "--password-stdin"];
    let set = home.run_with_input(&args, "s3cret\n").await;
    assert!(set.status.success(), "{set:?}");
    assert!(String::from_utf8_lossy(&set.stdout).contains("new password for tester"));
    assert_eq!(sign_in("s3cret").await.unwrap().status(), 200);
    let page = http.get(format!("{url}/")).send().await.unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<title>tidings</title>")
    );
    let unknown = home.run(&["admin", "user", "passwd", "nobody"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no user \"nobody\""));
    terminate(agent).await;
}
