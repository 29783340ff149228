//! A full disk, for real: the service's data directory on a small tmpfs this test
//! mounts (CI runs as root; anywhere else the test says loudly that it did not run).
//! Writes get 507, `/healthz` 503, reads stay 200; once the tmpfs is grown the service
//! reopens its store by itself, every 201 is there and the device sees every `seq` once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use tidings::protocol::ServerFrame;

use crate::helpers::{DEADLINE, Event, http_client, wait_until};
use crate::process::{Process, provision};

/// A tmpfs mounted for the test, unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "8m"), or says why it cannot.
    pub fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            return Err(format!(
                "mount -t tmpfs failed ({status}); the test needs root"
            ));
        }
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Posts a 4 KB notification; returns the status and, on 201, the id.
async fn post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    unsid: &str,
    n: usize,
) -> (u16, Option<String>) {
    let response = http
        .post(format!("{url}/beta/me/notifications"))
        .bearer_auth(token)
        .header("X-UNS-ID", unsid)
        .json(&json!({
            "targetHostName": "contoso.com",
            "payload": {"visualContent": {"title": format!("n{n}"), "body": format!("{n:04000}")}}
        }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["id"].as_str().map(str::to_owned))
}

async fn status_of(http: &reqwest::Client, url: String) -> u16 {
    http.get(url).send().await.unwrap().status().as_u16()
}

/// sled on either run (its own disk is what is tested), a quick recovery and a reserve
/// that fits the small disk.
const SERVICE_ARGS: &[&str] = &[
    "--store",
    "sled",
    "--recovery-interval",
    "100ms",
    "--store-reserve-mib",
    "2",
];

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_losing_nothing() {
    let tmpfs = match Tmpfs::mount("8m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("\n*** SKIPPED the full-disk test: {why} ***\n");
            assert!(std::env::var_os("CI").is_none(), "CI runs as root: {why}");
            return;
        }
    };
    let data: PathBuf = tmpfs.path().join("service");
    let process = Process::start_with(&data, "127.0.0.1:0", SERVICE_ARGS).await;
    let url = process.url.clone();
    let (app, device, unsid) = provision(&data, &url).await;
    let mut channel = device.channel(0).await;
    channel.until_synced().await;
    // Everything the live channel gets, until the service closes it to resync.
    let live = tokio::spawn(async move {
        let mut seqs = Vec::new();
        loop {
            match channel.next_event().await {
                Event::Frame(ServerFrame::Change { seq, .. }) => seqs.push(seq.0),
                Event::Frame(_) => {}
                Event::Closed(code) => return (seqs, code),
            }
        }
    });

    let http = http_client();
    let mut stored = Vec::new();
    let refused = loop {
        let (status, id) = post(&http, &url, &app.token, &unsid, stored.len()).await;
        match (status, id) {
            (201, Some(id)) => stored.push(id),
            (status, _) => break status,
        }
        assert!(stored.len() < 5000, "8 MiB never filled");
    };
    assert_eq!(refused, 507, "a full disk is 507 Insufficient Storage");
    assert_eq!(post(&http, &url, &app.token, &unsid, 0).await.0, 507);
    assert_eq!(status_of(&http, format!("{url}/healthz")).await, 503);
    // Reads go on: the feed, and the app's GET of a stored notification.
    let feed = http
        .get(format!("{url}/v1/me/notifications?since=0&top=5"))
        .bearer_auth(&device.token)
        .send()
        .await
        .unwrap();
    assert_eq!(feed.status(), 200);
    let get = http
        .get(format!("{url}/beta/me/notifications/{}", stored[0]))
        .bearer_auth(&app.token)
        .header("X-UNS-ID", &unsid)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);

    tmpfs.resize("64m");
    wait_until("the service recovers", || {
        let http = http.clone();
        let url = format!("{url}/healthz");
        async move { status_of(&http, url).await == 200 }
    })
    .await;
    let (status, last) = post(&http, &url, &app.token, &unsid, 99_999).await;
    assert_eq!(status, 201);
    stored.push(last.unwrap());

    let (mut seen, code) = tokio::time::timeout(DEADLINE, live).await.unwrap().unwrap();
    assert_eq!(
        code,
        Some(1012),
        "the channel is closed so that the device resyncs"
    );
    let cursor = seen.last().copied().unwrap_or(0);
    let mut resumed = device.channel(cursor).await;
    let (backlog, _) = resumed.until_synced().await;
    seen.extend(backlog.iter().map(|(seq, _)| seq.0));
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no seq twice");
    let max = *seen.iter().max().unwrap();
    assert_eq!(
        seen,
        (1..=max).collect::<Vec<_>>(),
        "every seq once, in order"
    );

    // Paged: the feed's pages are capped at 1 MiB.
    let all = device.whole_feed().await;
    let ids: HashSet<&str> = all.values().map(String::as_str).collect();
    for id in &stored {
        assert!(
            ids.contains(id.as_str()),
            "{id} was answered 201 and is gone"
        );
    }
    assert_eq!(
        ids.len(),
        stored.len(),
        "a post answered 507 is in the feed after the recovery"
    );
    drop(process);
}

/// Fills what is left of the disk under `dir` with a file there (the soak's full disk).
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 1 << 16];
    while file.write_all(&chunk).is_ok() {}
    path
}

#[tokio::test]
async fn a_service_killed_on_a_full_disk_starts_again_for_reads_and_recovers() {
    // The soak found it: killed while the disk was full, the service could not open
    // its store again ("No space left on device") and a restart failed in a loop.
    let tmpfs = match Tmpfs::mount("16m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            eprintln!("\n*** SKIPPED the full-disk restart test: {why} ***\n");
            assert!(std::env::var_os("CI").is_none(), "CI runs as root: {why}");
            return;
        }
    };
    let data: PathBuf = tmpfs.path().join("service");
    let mut process = Process::start_with(&data, "127.0.0.1:0", SERVICE_ARGS).await;
    let (app, device, unsid) = provision(&data, &process.url).await;
    let http = http_client();
    let mut stored = Vec::new();
    for n in 0..5 {
        let (status, id) = post(&http, &process.url, &app.token, &unsid, n).await;
        assert_eq!(status, 201);
        stored.push(id.unwrap());
    }
    process.child.kill().await.unwrap();
    let ballast = fill(tmpfs.path());

    // On the same address: the device knows it.
    let listen = process.url.trim_start_matches("http://").to_owned();
    let process = Process::start_with(&data, &listen, SERVICE_ARGS).await;
    let url = process.url.clone();
    assert_eq!(status_of(&http, format!("{url}/healthz")).await, 503);
    assert_eq!(post(&http, &url, &app.token, &unsid, 5).await.0, 507);
    let held: HashSet<String> = device.whole_feed().await.into_values().collect();
    for id in &stored {
        assert!(
            held.contains(id),
            "{id} was answered 201 and is not read back"
        );
    }

    std::fs::remove_file(ballast).unwrap();
    wait_until("the service takes writes again", || {
        let http = http.clone();
        let url = format!("{url}/healthz");
        async move { status_of(&http, url).await == 200 }
    })
    .await;
    assert_eq!(post(&http, &url, &app.token, &unsid, 6).await.0, 201);
    assert_eq!(device.whole_feed().await.len(), stored.len() + 1);
    drop(process);
}
