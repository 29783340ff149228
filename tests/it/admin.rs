//! The admin socket: its methods, and bad requests answered with JSON-RPC errors on a
//! connection that stays usable.

use serde_json::{Value, json};
use tidings::ipc::ClientError;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use crate::helpers::TestService;

#[tokio::test]
async fn users_and_apps_are_listed_and_conflicts_refused() {
    let service = TestService::start().await;
    service.add_user("alice").await;
    let generated = service
        .admin("user.add", json!({"name": "bob"}))
        .await
        .unwrap();
    assert!(
        generated["password"].as_str().unwrap().len() >= 24,
        "a strong password is generated"
    );
    let again = service
        .admin("user.add", json!({"name": "alice", "password": "x"}))
        .await;
    match again {
        Err(ClientError::Rpc(e)) => assert_eq!(e.code, -32009, "{e}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    let users = service.admin("user.list", json!({})).await.unwrap();
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["alice", "bob"]);
    service.add_app("contoso.com").await;
    let apps = service.admin("app.list", json!({})).await.unwrap();
    assert_eq!(apps[0]["hostname"], "contoso.com");
    assert!(
        apps[0].get("clientSecret").is_none(),
        "secrets are shown once, never listed"
    );
    for bad in [
        json!({"hostname": "localhost"}),
        json!({"hostname": "not a host"}),
        json!({}),
    ] {
        let refused = service.admin("app.add", bad.clone()).await;
        assert!(
            matches!(refused, Err(ClientError::Rpc(ref e)) if e.code == -32602),
            "{bad}: {refused:?}"
        );
    }
    service.stop().await;
}

#[tokio::test]
async fn bad_lines_get_errors_and_the_connection_stays_usable() {
    let service = TestService::start().await;
    let stream = UnixStream::connect(service.state.settings.admin_socket_path())
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"{}\"}}",
        "x".repeat(1024 * 1024 + 10)
    );
    let cases = [
        ("{not json".to_owned(), -32700),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"user.rename"}"#.to_owned(),
            -32601,
        ),
        (
            r#"{"jsonrpc":"2.0","id":2,"method":"user.add","params":{"name":7}}"#.to_owned(),
            -32602,
        ),
        (
            r#"{"jsonrpc":"1.0","id":3,"method":"user.list"}"#.to_owned(),
            -32600,
        ),
        (huge, -32600),
    ];
    for (line, code) in cases {
        write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let answer: Value =
            serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
    write
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"user.list\"}\n")
        .await
        .unwrap();
    let answer: Value = serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(answer["id"], 4);
    assert_eq!(answer["result"], json!([]));
    service.stop().await;
}

#[tokio::test]
async fn the_admin_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let service = TestService::start().await;
    let path = service.state.settings.admin_socket_path();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    service.stop().await;
    assert!(!path.exists(), "the socket is removed at shutdown");
}
