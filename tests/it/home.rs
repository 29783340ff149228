//! A private HOME with XDG directories for the real binary, as a fresh login has, and
//! the helpers to run `tidings` commands in it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{DEADLINE, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// A private HOME with XDG directories, as a fresh login would have.
pub struct Home {
    dir: tempfile::TempDir,
    /// Extra environment for every command (a desktop session's bus, ...).
    env: Vec<(String, String)>,
    /// What the agents started here logged, line by line.
    log: Arc<Mutex<Vec<String>>>,
}

impl Home {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        std::fs::create_dir_all(&run).unwrap();
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o700);
        std::fs::set_permissions(&run, private).unwrap();
        Self {
            dir,
            env: Vec::new(),
            log: Arc::default(),
        }
    }

    pub fn path(&self, rest: &str) -> PathBuf {
        self.dir.path().join(rest)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.path("data"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_RUNTIME_DIR", self.path("run"))
            .env("USER", "tester")
            .env("TIDINGS_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .kill_on_drop(true);
        command
    }

    /// Adds `key=value` to the environment of every command run in this home.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    pub fn agent(&self) -> Child {
        self.spawn_agent(&["agent", "--no-toasts"])
    }

    /// `tidings agent` with desktop toasts.
    pub fn agent_with_toasts(&self) -> Child {
        self.spawn_agent(&["agent"])
    }

    fn spawn_agent(&self, args: &[&str]) -> Child {
        let mut child = self.command(args).stderr(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let log = self.log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                log.lock().unwrap().push(line);
            }
        });
        child
    }

    /// Whether an agent started here has logged a line containing every one of `parts`.
    pub fn logged(&self, parts: &[&str]) -> bool {
        let log = self.log.lock().unwrap();
        log.iter()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    }

    pub async fn admin_json(&self, args: &[&str]) -> Value {
        let mut all = vec!["admin"];
        all.extend_from_slice(args);
        all.push("--json");
        let output = self.command(&all).output().await.unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    pub fn agent_dir(&self) -> PathBuf {
        self.path("data/tidings/agent")
    }
}

pub async fn wait_for_file(path: &Path) -> String {
    wait_until(&format!("{} exists", path.display()), || async {
        path.exists()
    })
    .await;
    std::fs::read_to_string(path).unwrap()
}

pub async fn terminate(mut child: Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = tokio::time::timeout(DEADLINE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM ends the agent cleanly");
}

impl Home {
    /// The agent's IPC socket.
    pub fn socket(&self) -> PathBuf {
        self.path("run/tidings/agent.sock")
    }

    /// The URL of local mode's embedded service, once the agent has written it.
    pub async fn local_service_url(&self) -> String {
        let written = wait_for_file(&self.path("run/tidings/service.url")).await;
        written.trim().to_owned()
    }

    /// Starts `tidings agent` and waits until its IPC socket answers.
    pub async fn serving_agent(&self) -> Child {
        self.serving(self.agent()).await
    }

    /// Starts `tidings agent` with desktop toasts and waits until its IPC socket answers.
    pub async fn serving_agent_with_toasts(&self) -> Child {
        self.serving(self.agent_with_toasts()).await
    }

    async fn serving(&self, agent: Child) -> Child {
        let socket = self.socket();
        wait_until("the agent serves IPC", || async {
            tidings::ipc::Client::connect(&socket).await.is_ok()
        })
        .await;
        agent
    }

    /// Runs `tidings ARGS` to its end.
    pub async fn run(&self, args: &[&str]) -> std::process::Output {
        tokio::time::timeout(DEADLINE, self.command(args).output())
            .await
            .expect("the command ends in time")
            .unwrap()
    }

    /// Runs `tidings ARGS --json`, which must succeed, and parses its output.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let output = self.run(&all).await;
        assert!(
            output.status.success(),
            "tidings {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

impl Home {
    /// `tidings login URL --user USER` with `password` on stdin.
    pub async fn login(&self, url: &str, user: &str, password: &str) {
        let args = ["login", url, "--user", user, "--password-stdin"];
        let output = self.run_with_input(&args, &format!("{password}\n")).await;
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// In local mode: registers the app `host`, subscribes this device to it, and sends
    /// a note titled `title` as that app's backend would; returns its id.
    pub async fn send_as_app(&self, host: &str, title: &str) -> String {
        let app = self.admin_json(&["app", "add", host]).await;
        let subscribed = self.run(&["subscribe", host]).await;
        assert!(subscribed.status.success(), "{subscribed:?}");
        let unsid = String::from_utf8(subscribed.stdout).unwrap();
        let args = [
            "send",
            "--unsid",
            unsid.trim(),
            "--client-id",
            app["clientId"].as_str().unwrap(),
            "--client-secret-stdin",
            "--host",
            host,
            "--title",
            title,
            "--json",
        ];
        let secret = format!("{}\n", app["clientSecret"].as_str().unwrap());
        let sent = self.run_with_input(&args, &secret).await;
        assert!(sent.status.success(), "{sent:?}");
        let created: Value = serde_json::from_slice(&sent.stdout).unwrap();
        created["id"].as_str().unwrap().to_owned()
    }

    /// Runs `tidings ARGS` with `input` on its standard input.
    pub async fn run_with_input(&self, args: &[&str], input: &str) -> std::process::Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // A child that exits without reading its input closes the pipe: its status
        // and stderr say why, so a failed write is not the error to report.
        if let Err(e) = tokio::io::AsyncWriteExt::write_all(&mut stdin, input.as_bytes()).await {
            eprintln!("writing to tidings {args:?}: {e}");
        }
        drop(stdin);
        tokio::time::timeout(DEADLINE, child.wait_with_output())
            .await
            .expect("the command ends in time")
            .unwrap()
    }
}
