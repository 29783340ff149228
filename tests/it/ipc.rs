//! The agent's IPC protocol on the real agent binary's socket, spoken as raw lines the
//! way an app in any language would: bad input, limits, many clients, other users.

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::helpers::DEADLINE;
use crate::home::{Home, terminate};

/// One raw connection.
struct Raw {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Raw {
    async fn connect(home: &Home) -> Self {
        let (read, writer) = UnixStream::connect(home.socket())
            .await
            .unwrap()
            .into_split();
        Self {
            reader: BufReader::new(read),
            writer,
        }
    }

    /// Sends `line` (a newline is added) and reads one answer line.
    async fn exchange(&mut self, line: &[u8]) -> Value {
        self.writer.write_all(line).await.unwrap();
        self.writer.write_all(b"\n").await.unwrap();
        self.read().await
    }

    async fn read(&mut self) -> Value {
        let mut answer = String::new();
        tokio::time::timeout(DEADLINE, self.reader.read_line(&mut answer))
            .await
            .expect("an answer in time")
            .unwrap();
        serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer:?}"))
    }

    async fn call(&mut self, id: u64, method: &str, params: Value) -> Value {
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.exchange(request.to_string().as_bytes()).await
    }
}

fn code(answer: &Value) -> i64 {
    answer["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {answer}"))
}

#[tokio::test]
async fn bad_requests_get_errors_and_the_connection_stays_usable() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let mut raw = Raw::connect(&home).await;

    let parse = raw.exchange(b"{\"jsonrpc\": \"2.0\", \"id\": 1, ").await;
    assert_eq!((code(&parse), parse["id"].clone()), (-32700, Value::Null));
    let not_rpc = raw.exchange(b"[1, 2, 3]").await;
    assert_eq!(code(&not_rpc), -32600);
    let wrong_version = raw
        .exchange(br#"{"jsonrpc":"1.0","id":7,"method":"status"}"#)
        .await;
    assert_eq!(
        (code(&wrong_version), wrong_version["id"].as_i64()),
        (-32600, Some(7))
    );
    let unknown = raw.call(2, "frobnicate", json!({})).await;
    assert_eq!((code(&unknown), unknown["id"].as_i64()), (-32601, Some(2)));

    for (method, params) in [
        ("list", json!({"limit": 5000})),
        ("list", json!({"limit": 0})),
        ("list", json!({"bogus": true})),
        ("list", json!({"status": "sideways"})),
        ("get", json!({})),
        ("markRead", json!({"ids": "not-a-list"})),
        ("markRead", json!({"ids": []})),
        ("dismiss", Value::Null),
        ("subscribe", json!({"targetHostName": "not a host!"})),
        (
            "send",
            json!({"targetHostName": "contoso.com", "payload": {"visualContent": {"title": "t"}}}),
        ),
        ("send", json!({"payload": {"visualContent": {"title": ""}}})),
        ("send", json!("a string")),
    ] {
        let answer = raw.call(3, method, params.clone()).await;
        assert_eq!(code(&answer), -32602, "{method} {params}: {answer}");
        assert!(!answer["error"]["message"].as_str().unwrap().is_empty());
    }
    let missing = raw.call(4, "get", json!({"id": "no-such-id"})).await;
    assert_eq!(code(&missing), -32004);

    // A line over 1 MiB is refused whole; the next line is read as usual.
    let mut huge = br#"{"jsonrpc":"2.0","id":5,"method":"send","params":{"x":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 1024 * 1024));
    huge.extend_from_slice(br#""}}"#);
    let too_long = raw.exchange(&huge).await;
    assert_eq!(code(&too_long), -32600);
    assert!(
        too_long["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than")
    );

    // So is a line that is not UTF-8, and the one after it is read as usual.
    let not_utf8 = raw
        .exchange(b"{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"\xff\"}")
        .await;
    assert_eq!(
        (code(&not_utf8), not_utf8["id"].clone()),
        (-32700, Value::Null)
    );
    assert!(
        not_utf8["error"]["message"]
            .as_str()
            .unwrap()
            .contains("UTF-8")
    );

    // Still the same connection, still answering.
    let status = raw.call(6, "status", json!({})).await;
    assert_eq!(status["id"], 6);
    assert_eq!(status["result"]["state"], "connected");
    // A notification (no id) gets no answer; the next request's answer is next.
    raw.writer
        .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"status\"}\n")
        .await
        .unwrap();
    assert_eq!(
        raw.call(8, "subscriptions", json!(null)).await["result"],
        json!([])
    );
    terminate(agent).await;
}

#[tokio::test]
async fn list_pages_filter_and_watch_filters_by_app_with_raw_content() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let mut raw = Raw::connect(&home).await;
    let mut watcher = Raw::connect(&home).await;
    let watching = watcher.call(1, "watch", json!({"app": "localhost"})).await;
    assert!(watching["result"].is_object(), "{watching}");
    let mut other = Raw::connect(&home).await;
    assert!(other.call(1, "watch", json!({"app": "contoso.com"})).await["result"].is_object());

    let mut ids = Vec::new();
    for i in 0..5 {
        let body = json!({"payload": {"rawContent": format!("raw {i}")}});
        let sent = raw.call(10 + i, "send", body).await;
        ids.push(sent["result"]["id"].as_str().unwrap().to_owned());
        let event = watcher.read().await;
        assert_eq!(event["method"], "event");
        assert_eq!(event["params"]["kind"], "created");
        assert_eq!(
            event["params"]["notification"]["payload"]["rawContent"],
            format!("raw {i}")
        );
    }
    // Pages of 2, newest first, through `next`.
    let mut seen = Vec::new();
    let mut before = Value::Null;
    loop {
        let mut params = json!({"limit": 2});
        if !before.is_null() {
            params["before"] = before.clone();
        }
        let page = raw.call(20, "list", params).await["result"].clone();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_owned()),
        );
        before = page["next"].clone();
        if before.is_null() {
            break;
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let refused = raw
        .call(
            29,
            "markRead",
            json!({"ids": [ids[0], ids[1], "no-such-id"]}),
        )
        .await;
    assert_eq!(
        refused["error"]["code"], -32004,
        "an unknown id refuses the call"
    );
    let read = raw
        .call(30, "markRead", json!({"ids": [ids[0], ids[1]]}))
        .await;
    assert_eq!(read["result"]["updated"], 2);
    let unread = raw.call(31, "list", json!({"unreadOnly": true})).await;
    assert_eq!(unread["result"]["items"].as_array().unwrap().len(), 3);
    assert_eq!(
        raw.call(32, "list", json!({"app": "contoso.com"})).await["result"]["items"],
        json!([])
    );
    for _ in 0..2 {
        let event = watcher.read().await;
        assert_eq!(
            (
                event["params"]["kind"].as_str(),
                event["params"]["notification"]["readState"].as_str()
            ),
            (Some("updated"), Some("read"))
        );
    }
    raw.call(33, "delete", json!({"ids": [ids[4]]})).await;
    assert_eq!(watcher.read().await["params"]["kind"], "deleted");
    let tombstones = raw.call(34, "list", json!({"status": "deleted"})).await;
    assert_eq!(tombstones["result"]["items"][0]["id"], ids[4].as_str());

    // The contoso watcher heard nothing of localhost's notes: its next line is the
    // answer to a request made now.
    let answer = other.call(2, "status", json!({})).await;
    assert_eq!(answer["id"], 2, "{answer}");
    terminate(agent).await;
}

#[tokio::test]
async fn a_list_answer_stops_at_its_byte_cap_and_pages_on_with_next() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let mut raw = Raw::connect(&home).await;
    let mut watcher = Raw::connect(&home).await;
    assert!(watcher.call(1, "watch", json!({})).await["result"].is_object());
    // 40 notes of 15,000 bytes each: about 600 KB of items, over the 512 KiB an answer
    // may hold.
    let mut ids = Vec::new();
    for i in 0..40 {
        let body = json!({"payload": {"rawContent": format!("{i:05}{}", "x".repeat(14_995))}});
        let sent = raw.call(10 + i, "send", body).await;
        ids.push(sent["result"]["id"].as_str().unwrap().to_owned());
    }
    for _ in 0..40 {
        assert_eq!(watcher.read().await["params"]["kind"], "created");
    }
    let first = raw.call(60, "list", json!({"limit": 40})).await["result"].clone();
    let items = first["items"].as_array().unwrap();
    let bytes: usize = items.iter().map(|item| item.to_string().len()).sum();
    assert!(
        (30..40).contains(&items.len()) && bytes <= 512 * 1024,
        "{} items, {bytes} bytes",
        items.len()
    );
    assert_eq!(first["next"], items.last().unwrap()["seq"]);
    let rest = raw
        .call(61, "list", json!({"limit": 40, "before": first["next"]}))
        .await["result"]
        .clone();
    assert!(rest["next"].is_null(), "the second page is the last");
    let seen: Vec<&str> = items
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(seen, newest_first);
    terminate(agent).await;
}

#[tokio::test]
async fn two_hundred_clients_at_once_are_all_answered() {
    let home = Home::new();
    let agent = home.serving_agent().await;
    let mut clients = Vec::new();
    for _ in 0..200 {
        clients.push(Raw::connect(&home).await);
    }
    let calls = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut raw)| async move {
            let id = i as u64;
            let answer = raw.call(id, "list", json!({"limit": 5})).await;
            assert_eq!(answer["id"], id, "{answer}");
            assert!(answer["result"]["items"].is_array(), "{answer}");
            raw
        });
    let done = tokio::time::timeout(DEADLINE, futures_util::future::join_all(calls))
        .await
        .expect("200 clients answered in time");
    assert_eq!(done.len(), 200);
    terminate(agent).await;
}

#[tokio::test]
async fn a_client_of_another_user_is_refused() {
    if !rustix::process::getuid().is_root() {
        eprintln!("\n*** SKIPPED: running a client as another uid needs root ***\n");
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: the peer-uid check must be tested there"
        );
        return;
    }
    let home = Home::new();
    let agent = home.serving_agent().await;
    // Open the way to the socket for everyone, so only the uid check stands.
    let open = |path: std::path::PathBuf, mode| {
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
    };
    open(home.path(""), 0o755);
    open(home.path("run"), 0o755);
    open(home.path("run/tidings"), 0o755);
    open(home.socket(), 0o666);
    let nobody = home
        .command(&["status", "--json"])
        .uid(65_534)
        .gid(65_534)
        .output();
    let output = tokio::time::timeout(DEADLINE, nobody)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains("refused: this socket serves uid 0 only, not uid 65534"),
        "{said}"
    );
    // The agent's own user is still served.
    assert_eq!(home.json(&["status"]).await["state"], "connected");
    terminate(agent).await;
}

/// Answers every call with its method name.
struct Echo;

impl tidings::ipc::Handler for Echo {
    async fn call(
        &self,
        request: tidings::ipc::Request,
        _peer: &tidings::ipc::Peer,
    ) -> Result<tidings::ipc::Reply, tidings::ipc::RpcError> {
        Ok(Value::String(request.method).into())
    }
}

#[tokio::test]
async fn a_client_over_the_cap_is_told_the_server_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("capped.sock");
    let options = tidings::ipc::ServerOptions {
        max_clients: 2,
        ..Default::default()
    };
    let (stop, serving) = serve_echo(&path, options).await;
    let mut first = tidings::ipc::Client::connect(&path).await.unwrap();
    let mut second = tidings::ipc::Client::connect(&path).await.unwrap();
    assert_eq!(first.call("a", json!({})).await.unwrap(), "a");
    assert_eq!(second.call("b", json!({})).await.unwrap(), "b");
    let mut third = tidings::ipc::Client::connect(&path).await.unwrap();
    let busy = third.call("c", json!({})).await.unwrap_err();
    assert!(busy.to_string().contains("busy: 2 clients"), "{busy}");
    drop(first);
    // Once a client leaves, a new one is served.
    wait_served(&path).await;
    stop.cancel();
    serving.await.unwrap();
    assert!(!path.exists(), "the socket file is removed at shutdown");
}

/// An [`Echo`] server on `path` under `options`: its stop switch and its task.
async fn serve_echo(
    path: &std::path::Path,
    options: tidings::ipc::ServerOptions,
) -> (
    tokio_util::sync::CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let server = tidings::ipc::Server::bind(path, options).await.unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn(server.serve(std::sync::Arc::new(Echo), stop.clone()));
    (stop, serving)
}

async fn wait_served(path: &std::path::Path) {
    crate::helpers::wait_until("a freed slot serves a new client", || async {
        let Ok(mut client) = tidings::ipc::Client::connect(path).await else {
            return false;
        };
        client.call("d", json!({})).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn connections_left_idle_give_their_slots_to_new_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.sock");
    let options = tidings::ipc::ServerOptions {
        max_clients: 4,
        quiet_enough: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    let (stop, serving) = serve_echo(&path, options).await;
    // An app opens every slot and leaves the connections idle.
    let mut idle = Vec::new();
    for _ in 0..4 {
        let mut client = tidings::ipc::Client::connect(&path).await.unwrap();
        assert_eq!(client.call("hello", json!({})).await.unwrap(), "hello");
        idle.push(client);
    }
    // `tidings status` still gets in, once an idle connection has been quiet a while.
    wait_served(&path).await;
    stop.cancel();
    serving.await.unwrap();
}
