//! The everyday command line, as a user runs it: the real binary, `tidings agent` in
//! local mode in a private HOME, and the commands that talk to it over IPC.

use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{DEADLINE, wait_until};
use crate::home::{Home, terminate};

/// The history as `tidings history --json` gives it.
async fn history(home: &Home, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["history"];
    args.extend_from_slice(extra);
    home.json(&args).await["items"].as_array().unwrap().clone()
}

/// Sends a note with `title` through the agent; returns its id.
async fn send(home: &Home, title: &str) -> String {
    let sent = home.json(&["send", "--title", title, "--body", "b"]).await;
    sent["id"].as_str().unwrap().to_owned()
}

/// Waits until the note `id` is in the agent's history (it arrives over the channel).
async fn wait_stored(home: &Home, id: &str) {
    wait_until(&format!("{id} is in the history"), || async {
        history(home, &["--limit", "1000"])
            .await
            .iter()
            .any(|n| n["id"] == id)
    })
    .await;
}

#[tokio::test]
async fn send_then_history_read_dismiss_delete_and_status() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let id = send(&home, "Hello").await;
    wait_stored(&home, &id).await;
    let items = history(&home, &[]).await;
    assert_eq!(items[0]["payload"]["visualContent"]["title"], "Hello");
    assert_eq!(items[0]["readState"], "unread");
    let status = home.json(&["status"]).await;
    assert_eq!(
        (status["state"].as_str(), status["user"].as_str()),
        (Some("connected"), Some("tester"))
    );
    assert_eq!(
        (status["total"].as_u64(), status["unread"].as_u64()),
        (Some(1), Some(1))
    );

    home.json(&["read", &id]).await;
    assert_eq!(history(&home, &[]).await[0]["readState"], "read");
    assert_eq!(home.json(&["status"]).await["unread"], 0);
    assert!(history(&home, &["--unread"]).await.is_empty());
    home.json(&["unread", &id]).await;
    assert_eq!(home.json(&["status"]).await["unread"], 1);

    let dismissed = home.json(&["dismiss", &id]).await;
    assert_eq!(dismissed["updated"], 1);
    assert_eq!(history(&home, &[]).await[0]["userActionState"], "dismissed");
    let shown = home.json(&["show", &id]).await;
    assert_eq!(shown["userActionState"], "dismissed");

    home.json(&["delete", &id]).await;
    assert!(
        history(&home, &[]).await.is_empty(),
        "deleted notifications leave the history"
    );
    assert_eq!(home.json(&["status"]).await["total"], 0);

    // The human forms, and an id that is not there.
    let table = home.run(&["history"]).await;
    assert!(table.status.success());
    assert_eq!(
        String::from_utf8_lossy(&table.stdout).trim(),
        "no notifications"
    );
    let missing = home.run(&["read", "no-such-id"]).await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not stored here"));
    let unknown = home.run(&["show", "no-such-id"]).await;
    assert_eq!(unknown.status.code(), Some(1));
    terminate(agent).await;
}

#[tokio::test]
async fn the_human_history_is_a_table_without_colour_when_piped() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let id = send(&home, "Table row").await;
    wait_stored(&home, &id).await;
    let output = home.run(&["history"]).await;
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("ID") && header.contains("TITLE"),
        "{header}"
    );
    let row = lines.next().unwrap();
    assert!(
        row.starts_with(&id) && row.contains("just now") && row.contains("Table row"),
        "{row}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no escape codes when stdout is not a terminal"
    );
    let status = String::from_utf8(home.run(&["status"]).await.stdout).unwrap();
    assert!(
        status.contains("connected") && status.contains("headless"),
        "{status}"
    );
    terminate(agent).await;
}

#[tokio::test]
async fn watch_prints_an_event_for_each_notification_as_it_arrives() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let mut watch = home
        .command(&["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut events = BufReader::new(watch.stdout.take().unwrap()).lines();
    let mut notes = BufReader::new(watch.stderr.take().unwrap()).lines();
    // `watch` says on stderr when it is subscribed; nothing sent after that is missed.
    let said = tokio::time::timeout(DEADLINE, notes.next_line())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        said.as_deref(),
        Some("watching for notifications (Ctrl-C to stop)")
    );
    let mut next_event = async || -> Value {
        let line = tokio::time::timeout(DEADLINE, events.next_line())
            .await
            .expect("an event in time")
            .unwrap()
            .expect("watch keeps running");
        serde_json::from_str(&line).unwrap()
    };
    let first = send(&home, "one").await;
    let event = next_event().await;
    assert_eq!(
        (event["kind"].as_str(), event["notification"]["id"].as_str()),
        (Some("created"), Some(first.as_str()))
    );
    for title in ["two", "three"] {
        let id = send(&home, title).await;
        let event = next_event().await;
        assert_eq!(event["kind"], "created");
        assert_eq!(event["notification"]["id"], id.as_str());
        assert_eq!(
            event["notification"]["payload"]["visualContent"]["title"],
            title
        );
    }
    home.json(&["read", &first]).await;
    let event = next_event().await;
    assert_eq!(
        (
            event["kind"].as_str(),
            event["notification"]["readState"].as_str()
        ),
        (Some("updated"), Some("read"))
    );
    home.json(&["delete", &first]).await;
    assert_eq!(next_event().await["kind"], "deleted");
    watch.kill().await.unwrap();
    terminate(agent).await;
}

#[tokio::test]
async fn subscribe_prints_a_unsid_that_an_app_backend_sends_to() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let app = home.admin_json(&["app", "add", "contoso.com"]).await;
    let subscribed = home.run(&["subscribe", "contoso.com"]).await;
    assert!(
        subscribed.status.success(),
        "{}",
        String::from_utf8_lossy(&subscribed.stderr)
    );
    let unsid = String::from_utf8(subscribed.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert!(unsid.len() >= 16, "{unsid:?}");
    let subs = home.json(&["status"]).await;
    assert_eq!(subs["state"], "connected");

    let url = std::fs::read_to_string(home.path("run/tidings/service.url")).unwrap();
    let secret = app["clientSecret"].as_str().unwrap();
    let client_id = app["clientId"].as_str().unwrap();
    // Without --service, `send` as a backend posts to the local service.
    let backend = |secret: String, title: &'static str, service: Option<String>| {
        let unsid = unsid.clone();
        let home = &home;
        async move {
            let mut args = vec![
                "send",
                "--unsid",
                &unsid,
                "--client-id",
                client_id,
                "--client-secret-stdin",
                "--host",
                "contoso.com",
                "--title",
                title,
                "--priority",
                "high",
                "--json",
            ];
            if let Some(service) = &service {
                args.extend(["--service", service.as_str()]);
            }
            home.run_with_input(&args, &format!("{secret}\n")).await
        }
    };
    let sent = backend(secret.to_owned(), "Your order shipped", None).await;
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let created: Value = serde_json::from_slice(&sent.stdout).unwrap();
    let id = created["id"].as_str().unwrap();
    wait_stored(&home, id).await;
    let items = history(&home, &["--app", "contoso.com"]).await;
    assert_eq!(items.len(), 1);
    assert_eq!(
        (items[0]["id"].as_str(), items[0]["priority"].as_str()),
        (Some(id), Some("High"))
    );

    // A wrong secret is refused with a hint, exit code 1.
    let refused = backend(
        "not-the-secret".to_owned(),
        "x",
        Some(url.trim().to_owned()),
    )
    .await;
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("tidings admin app add"));
    terminate(agent).await;
}

#[tokio::test]
async fn exit_codes_say_not_running_and_usage() {
    let home = Home::new();
    let status = home.run(&["status"]).await;
    assert_eq!(status.status.code(), Some(3));
    let message = String::from_utf8_lossy(&status.stderr);
    assert!(
        message.contains("not running") && message.contains("tidings agent"),
        "{message}"
    );
    assert_eq!(
        home.run(&["history", "--limit"]).await.status.code(),
        Some(2)
    );
    assert_eq!(
        home.run(&["read"]).await.status.code(),
        Some(2),
        "ids are required"
    );
    assert_eq!(
        home.run(&["send", "--title", "t", "--unsid", "u"])
            .await
            .status
            .code(),
        Some(2)
    );

    let completions = home.run(&["completions", "bash"]).await;
    assert!(completions.status.success());
    assert!(String::from_utf8_lossy(&completions.stdout).contains("tidings"));
    let manpage = home.run(&["manpage"]).await;
    assert!(String::from_utf8_lossy(&manpage.stdout).contains(".TH tidings"));
}

#[tokio::test]
async fn a_reader_that_goes_away_is_not_an_error() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    // More history than a pipe holds (64 KiB), so the writer must meet the closed end.
    let mut client = tidings::ipc::Client::connect(&home.socket()).await.unwrap();
    let mut last = String::new();
    for i in 0..200 {
        let body = json!({"payload": {"visualContent": {"title": format!("note {i}"), "body": "x".repeat(300)}}});
        last = client.call("send", body).await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    }
    wait_stored(&home, &last).await;
    let mut reader = home
        .command(&["history", "--limit", "1000", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(reader.stdout.take());
    let output = tokio::time::timeout(DEADLINE, reader.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    terminate(agent).await;
}

/// Bytes that drive a terminal: ESC, BEL, CSI (C1) and the bidi override.
fn drives_a_terminal(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{1b}' | '\u{7}' | '\u{9b}' | '\u{202E}'))
}

#[tokio::test]
async fn titles_that_would_drive_the_terminal_are_shown_not_obeyed() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let mut watch = home
        .command(&["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut notes = BufReader::new(watch.stderr.take().unwrap()).lines();
    tokio::time::timeout(DEADLINE, notes.next_line())
        .await
        .unwrap()
        .unwrap();
    let attack = "\u{1b}]0;PWNED\u{7}\u{1b}[2J\u{9b}31m\u{202E}gpj.exe";
    let sent = home
        .json(&["send", "--title", attack, "--body", attack])
        .await;
    let id = sent["id"].as_str().unwrap().to_owned();
    wait_stored(&home, &id).await;
    let mut events = BufReader::new(watch.stdout.take().unwrap()).lines();
    let event = tokio::time::timeout(DEADLINE, events.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    watch.kill().await.unwrap();
    let history = String::from_utf8(home.run(&["history"]).await.stdout).unwrap();
    let show = String::from_utf8(home.run(&["show", &id]).await.stdout).unwrap();
    for (what, text) in [("watch", &event), ("history", &history), ("show", &show)] {
        assert!(!drives_a_terminal(text), "{what} printed it raw: {text:?}");
        assert!(text.contains("␛]0;PWNED␇␛[2J"), "{what}: {text:?}");
    }
    let json = home.json(&["show", &id]).await;
    assert_eq!(
        json["payload"]["visualContent"]["title"], attack,
        "--json stays exact"
    );
    terminate(agent).await;
}

/// Runs `tidings ARGS`, which must fail with exit code 1; returns its stderr.
async fn fails(home: &Home, args: &[&str]) -> String {
    let output = home.run(args).await;
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(1), "tidings {args:?}: {stderr}");
    stderr
}

#[tokio::test]
async fn errors_are_one_sentence_and_deleted_or_dismissed_mean_what_they_say() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    // One clear sentence, said once, the JSON-RPC code only with --verbose.
    let missing = fails(&home, &["show", "nope"]).await;
    assert_eq!(missing.trim(), "tidings: no notification nope here");
    let verbose = fails(&home, &["--verbose", "show", "nope"]).await;
    assert!(verbose.contains("(JSON-RPC error -32004)"), "{verbose}");
    let limit = fails(&home, &["history", "--limit", "0"]).await;
    let long = "x".repeat(2000);
    let title = fails(&home, &["send", "--title", &long]).await;
    let past = fails(
        &home,
        &["send", "--title", "t", "--expires", "2001-01-01T00:00:00Z"],
    )
    .await;
    for said in [&limit, &title, &past] {
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(!said.contains("code"), "{said}");
    }
    assert!(title.contains("payload.visualContent.title"), "{title}");
    assert!(past.contains("in the past"), "{past}");

    // Dismissed: done with, so no longer unread anywhere.
    let id = send(&home, "Dismiss me").await;
    wait_stored(&home, &id).await;
    assert_eq!(home.json(&["status"]).await["unread"], 1);
    home.json(&["dismiss", &id]).await;
    assert_eq!(home.json(&["status"]).await["unread"], 0);
    assert!(history(&home, &["--unread"]).await.is_empty());
    let table = String::from_utf8(home.run(&["history"]).await.stdout).unwrap();
    assert!(table.contains("dismissed"), "{table}");

    // Deleted: nothing more can be done to it, and it says so.
    home.json(&["delete", &id]).await;
    for action in ["read", "unread", "dismiss", "delete"] {
        let refused = fails(&home, &[action, &id]).await;
        assert!(refused.contains("was deleted"), "{action}: {refused}");
    }
    let shown = String::from_utf8(home.run(&["show", &id]).await.stdout).unwrap();
    assert!(shown.contains("state      deleted"), "{shown}");

    // A normal priority reads as the flag spells it.
    let normal = home
        .json(&["send", "--title", "n", "--priority", "normal"])
        .await;
    let normal_id = normal["id"].as_str().unwrap().to_owned();
    wait_stored(&home, &normal_id).await;
    let shown = String::from_utf8(home.run(&["show", &normal_id]).await.stdout).unwrap();
    assert!(shown.contains("priority   normal"), "{shown}");
    terminate(agent).await;
}

#[tokio::test]
async fn send_help_states_the_services_default_expiry() {
    let home = Home::new();
    let help = String::from_utf8(home.run(&["send", "--help"]).await.stdout).unwrap();
    let days = tidings::protocol::validate::DEFAULT_EXPIRY.as_secs() / 86_400;
    assert!(help.contains(&format!("{days} days")), "{help}");
}

#[tokio::test]
async fn the_first_start_says_where_data_lives_and_how_to_send() {
    let home = Home::new();
    let mut agent = home
        .command(&["agent", "--no-toasts"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(agent.stderr.take().unwrap()).lines();
    let said = tokio::time::timeout(DEADLINE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("first start") {
                return line;
            }
        }
        panic!("the agent never said where its data lives");
    })
    .await
    .unwrap();
    assert!(said.contains("data/tidings/agent"), "{said}");
    assert!(
        said.contains("as \"tester\""),
        "names the user it made: {said}"
    );
    assert!(said.contains("tidings send --title Hello"), "{said}");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    terminate(agent).await;
}

/// `HH:MM` of UTC `offset_minutes` from now.
fn utc_clock(offset_minutes: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = (i64::try_from(now / 60 % 1440).unwrap() + offset_minutes).rem_euclid(1440);
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// Quiet hours (local time; the agent runs with `TZ=UTC` here) hold toasts back as
/// do-not-disturb does, and say until when.
#[tokio::test]
async fn quiet_hours_are_do_not_disturb_until_they_end() {
    for (span, inside) in [((-60, 60), true), ((120, 180), false)] {
        let mut home = Home::new();
        home.set_env("TZ", "UTC");
        let quiet = format!("{}-{}", utc_clock(span.0), utc_clock(span.1));
        std::fs::create_dir_all(home.path("config/tidings")).unwrap();
        let config = format!("[agent]\nquiet_hours = \"{quiet}\"\n");
        std::fs::write(home.path("config/tidings/config.toml"), config).unwrap();
        let agent = home.serving_agent().await;
        let dnd = home.json(&["status"]).await["doNotDisturb"].clone();
        assert_eq!(dnd["on"], inside, "{quiet}: {dnd}");
        if inside {
            let until: tidings::protocol::Timestamp =
                serde_json::from_value(dnd["until"].clone()).unwrap();
            let left = until.since(tidings::protocol::Timestamp::now());
            assert!(left > std::time::Duration::from_secs(58 * 60), "{dnd}");
            assert!(left <= std::time::Duration::from_secs(61 * 60), "{dnd}");
        }
        terminate(agent).await;
    }
}

#[tokio::test]
async fn history_pages_through_notifications_too_large_for_one_answer() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    // Control characters take six bytes each as JSON: each of these is about 58 KB
    // (within the 64 KiB body limit), and 20 make a list past the 1 MiB IPC line limit.
    let raw = "\u{1}".repeat(9_000);
    let body = "b".repeat(4096);
    let mut last = String::new();
    for n in 0..20 {
        let title = format!("big {n}");
        let args = ["send", "--title", &title, "--body", &body, "--raw", &raw];
        last = home.json(&args).await["id"].as_str().unwrap().to_owned();
    }
    wait_stored(&home, &last).await;
    assert_eq!(history(&home, &["--limit", "1000"]).await.len(), 20);
    assert_eq!(history(&home, &["--unread"]).await.len(), 20);
    let table = home.run(&["history"]).await;
    assert!(
        table.status.success(),
        "{}",
        String::from_utf8_lossy(&table.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&table.stdout).lines().count(), 21);
    terminate(agent).await;
}
