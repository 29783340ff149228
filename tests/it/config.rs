//! The config file and its precedence, through the real binary: flag over environment
//! over file over default, `tidings config` saying where each value came from, and
//! mistakes answered with the file, the line and the key.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::helpers::DEADLINE;

const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// `tidings ARGS` with a clean environment plus `env`.
fn tidings(args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("HOME", "/nonexistent")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts `tidings service` with `args` and `env`; returns the data directory it
/// logged once it listens, and stops it.
async fn data_dir_used(args: &[&str], env: &[(&str, &Path)]) -> String {
    let mut all = vec!["service", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut child = tidings(&all, env).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let dir = tokio::time::timeout(DEADLINE, async {
        let mut dir = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("data_dir=") {
                dir = Some(line[at + "data_dir=".len()..].trim().to_owned());
            }
            if line.contains("listening on") {
                return dir.expect("the data directory is logged first");
            }
        }
        panic!("the service exited before listening");
    })
    .await
    .expect("the service listens");
    child.kill().await.unwrap();
    dir
}

#[tokio::test]
async fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let config = path("config.toml");
    let in_file = path("from-file");
    std::fs::write(&config, format!("[service]\ndata_dir = {in_file:?}\n")).unwrap();
    let config_arg = ["--config", config.to_str().unwrap()];
    let from_env = path("from-env");
    let env = [("TIDINGS_DATA_DIR", from_env.as_path())];
    let from_flag = path("from-flag");

    let mut with_flag = config_arg.to_vec();
    with_flag.extend(["--data-dir", from_flag.to_str().unwrap()]);
    assert_eq!(
        data_dir_used(&with_flag, &env).await,
        from_flag.display().to_string()
    );
    assert_eq!(
        data_dir_used(&config_arg, &env).await,
        from_env.display().to_string()
    );
    assert_eq!(
        data_dir_used(&config_arg, &[]).await,
        in_file.display().to_string()
    );

    let shown = tidings(
        &["config", "--json", "--config", config.to_str().unwrap()],
        &env,
    )
    .output()
    .await
    .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let data_dir = &shown["service"]["data_dir"];
    assert_eq!(data_dir["value"], from_env.display().to_string());
    assert_eq!(data_dir["source"], "environment TIDINGS_DATA_DIR");
    assert_eq!(shown["service"]["max_channels"]["value"], "9000");
    assert_eq!(shown["service"]["max_channels"]["source"], "default");
    assert_eq!(shown["agent"]["toasts"]["value"], "true");
}

#[tokio::test]
async fn a_mistake_in_the_config_names_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let cases = [
        (
            "[service]\n# limits\nmax_channels = \"many\"\n",
            "config.toml:3: [service] max_channels: \"many\" is not a whole number",
        ),
        (
            "[agent]\nhistroy_cap = 5\n",
            "config.toml:2: [agent] has no key histroy_cap; did you mean history_cap?",
        ),
    ];
    for (text, says) in cases {
        std::fs::write(&config, text).unwrap();
        for command in ["service", "agent", "config"] {
            let ran = tidings(&[command, "--config", config.to_str().unwrap()], &[])
                .output()
                .await
                .unwrap();
            let stderr = String::from_utf8_lossy(&ran.stderr);
            assert_eq!(ran.status.code(), Some(1), "{command}: {stderr}");
            assert!(stderr.contains(says), "{command}: {stderr}");
        }
    }
    let missing = dir.path().join("nowhere.toml");
    let ran = tidings(&["config", "--config", missing.to_str().unwrap()], &[])
        .output()
        .await
        .unwrap();
    assert_eq!(ran.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&ran.stderr).contains("nowhere.toml: no such file"));
    let bad_env = tidings(&["config"], &[("TIDINGS_MAX_CHANNELS", Path::new("lots"))])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad_env.stderr);
    assert!(
        stderr.contains("environment TIDINGS_MAX_CHANNELS: [service] max_channels: \"lots\""),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_postgres_store_is_configured_with_its_password_hidden_and_its_mistakes_named() {
    let url = Path::new("postgres://tidings:hunter2@db.example.org/tidings");
    let shown = tidings(&["config", "--json"], &[("TIDINGS_STORE", url)])
        .output()
        .await
        .unwrap();
    assert!(shown.status.success(), "{shown:?}");
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let store = shown["service"]["store"]["value"].as_str().unwrap();
    assert!(!store.contains("hunter2"), "{store}");
    assert!(store.contains("db.example.org"), "{store}");

    let bad = tidings(&["config"], &[("TIDINGS_STORE", Path::new("mysql://x"))])
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("neither sled nor a PostgreSQL URL"), "{said}");

    // Under systemd the password comes from the db-password credential when no key
    // gives one: an unreadable one (a directory here) is named.
    let credentials = tempfile::tempdir().unwrap();
    std::fs::create_dir(credentials.path().join("db-password")).unwrap();
    let looked_up = tidings(
        &["service", "--listen", "127.0.0.1:0"],
        &[
            ("TIDINGS_STORE", url),
            ("CREDENTIALS_DIRECTORY", credentials.path()),
        ],
    )
    .output()
    .await
    .unwrap();
    assert!(!looked_up.status.success());
    let said = String::from_utf8_lossy(&looked_up.stderr);
    assert!(said.contains("credential db-password"), "{said}");

    // A sled backup cannot be restored into PostgreSQL: said before anything is touched.
    let restore = tidings(
        &["service", "--restore", "/nonexistent/backup"],
        &[("TIDINGS_STORE", url)],
    )
    .output()
    .await
    .unwrap();
    assert!(!restore.status.success());
    let said = String::from_utf8_lossy(&restore.stderr);
    assert!(said.contains("pg_restore"), "{said}");
}

#[tokio::test]
async fn secrets_that_others_can_read_are_warned_of() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[service]\nmetrics_token = \"s3cret\"\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config_arg = config.to_str().unwrap();
    let data = dir.path().join("data");
    let process =
        crate::process::Process::start_with(&data, "127.0.0.1:0", &["--config", config_arg]).await;
    assert!(process.logged(&["holds metrics_token and others may read it", "chmod 600"]));
    drop(process);
    let flagged = crate::process::Process::start_with(
        &dir.path().join("data2"),
        "127.0.0.1:0",
        &["--metrics-token", "s3cret"],
    )
    .await;
    assert!(flagged.logged(&["--metrics-token", "process list"]));
    assert!(
        !flagged.logged(&["s3cret"]),
        "the secret itself is never logged"
    );
    drop(flagged);

    // The token from a file: /metrics wants it, and nothing is warned of.
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, "from-a-file\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let from_file = crate::process::Process::start_with(
        &dir.path().join("data3"),
        "127.0.0.1:0",
        &["--metrics-token-file", token_file.to_str().unwrap()],
    )
    .await;
    let http = crate::helpers::http_client();
    let metrics = format!("{}/metrics", from_file.url);
    let without = http.get(&metrics).send().await.unwrap().status();
    let with = http
        .get(&metrics)
        .bearer_auth("from-a-file")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!((without.as_u16(), with.as_u16()), (401, 200));
    assert!(!from_file.logged(&["process list"]));
}
