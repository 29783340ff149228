//! Backups through the real binary: `tidings admin backup FILE` while posts are coming
//! in, restored with `tidings service --restore FILE` into an empty data directory: the
//! restored service's feed holds every notification answered `201` before the backup
//! began, and its device and app credentials still work. A damaged backup, or a data
//! directory that holds a store, is refused and nothing is left behind.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::process::Command;
use tokio::task::JoinHandle;

use crate::helpers::{App, Device, post_as_app};
use crate::process::{Process, provision};

const BIN: &str = env!("CARGO_BIN_EXE_tidings");

/// Runs `tidings ARGS` (paths as given).
async fn tidings(args: &[&Path]) -> std::process::Output {
    Command::new(BIN).args(args).output().await.unwrap()
}

/// `tidings admin --data-dir DATA --json backup FILE`.
async fn backup(data: &Path, file: &Path) -> std::process::Output {
    let words = ["admin", "--data-dir"].map(Path::new);
    tidings(&[
        words[0],
        words[1],
        data,
        Path::new("--json"),
        Path::new("backup"),
        file,
    ])
    .await
}

/// `tidings service --data-dir TARGET --restore FILE`.
async fn restore(target: &Path, file: &Path) -> std::process::Output {
    let words = ["service", "--data-dir", "--restore"].map(Path::new);
    tidings(&[words[0], words[1], target, words[2], file]).await
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Four posters that post until `stop`; each id answered `201` goes into `answered`.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<String>>>,
    posters: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, app: &App, unsid: &str) -> Self {
        let (stop, answered) = (
            Arc::new(AtomicBool::new(false)),
            Arc::<Mutex<Vec<String>>>::default(),
        );
        let posters = (0..4)
            .map(|poster| {
                let (url, token, unsid) = (url.to_owned(), app.token.clone(), unsid.to_owned());
                let (stop, answered) = (stop.clone(), answered.clone());
                tokio::spawn(async move {
                    let http = crate::helpers::http_client();
                    // Bounded: the backup is made long before.
                    for i in 0..10_000 {
                        if stop.load(Ordering::SeqCst) {
                            return;
                        }
                        let body =
                            post_as_app(&http, &url, &token, &unsid, &format!("{poster}-{i}"))
                                .await;
                        answered
                            .lock()
                            .unwrap()
                            .push(body["id"].as_str().unwrap().to_owned());
                    }
                })
            })
            .collect();
        Self {
            stop,
            answered,
            posters,
        }
    }

    /// The ids answered so far, once there are at least `least`.
    async fn answered_at_least(&self, least: usize) -> HashSet<String> {
        while self.answered.lock().unwrap().len() < least {
            tokio::task::yield_now().await;
        }
        self.answered.lock().unwrap().iter().cloned().collect()
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for poster in self.posters {
            poster.await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_backup_under_load_restores_every_notification_answered_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let service = Process::start_sled(&data).await;
    let (app, device, unsid) = provision(&data, &service.url).await;
    let load = Load::start(&service.url, &app, &unsid);
    let before_backup = load.answered_at_least(50).await;
    let file = dir.path().join("nightly.tidings-backup");
    let made = backup(&data, &file).await;
    assert!(made.status.success(), "{}", stderr(&made));
    let summary: serde_json::Value = serde_json::from_slice(&made.stdout).unwrap();
    assert_eq!(summary["path"], file.to_str().unwrap());
    load.stop().await;
    let leftovers = std::fs::read_dir(&data)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("backup-"))
        })
        .count();
    assert_eq!(leftovers, 0, "the service's copy was moved to FILE");
    drop(service);

    let restored_dir = dir.path().join("restored");
    let restored = restore(&restored_dir, &file).await;
    assert!(restored.status.success(), "{}", stderr(&restored));
    let service = Process::start_sled(&restored_dir).await;
    let device = Device {
        url: service.url.clone(),
        ..device
    };
    let in_feed: HashSet<String> = device.whole_feed().await.into_values().collect();
    let missing: Vec<_> = before_backup.difference(&in_feed).collect();
    assert!(
        missing.is_empty(),
        "answered before the backup but not restored: {missing:?}"
    );
    // The app's credential and the device's token were restored too.
    let http = crate::helpers::http_client();
    post_as_app(&http, &service.url, &app.token, &unsid, "after the restore").await;
}

#[tokio::test]
async fn a_damaged_backup_or_a_used_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let service = Process::start_sled(&data).await;
    provision(&data, &service.url).await;
    let file = dir.path().join("b.tidings-backup");
    let made = backup(&data, &file).await;
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(stderr(&backup(&data, &file).await).contains("exists"));
    drop(service);

    let used = restore(&data, &file).await;
    assert_eq!(used.status.code(), Some(1));
    assert!(stderr(&used).contains("already holds a store"));

    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = dir.path().join("damaged.tidings-backup");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = dir.path().join("fresh");
    let refused = restore(&target, &damaged).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("damaged"), "{}", stderr(&refused));
    assert!(!target.join("db").exists(), "nothing is left behind");
    let good = restore(&target, &file).await;
    assert!(good.status.success(), "{}", stderr(&good));
}

/// A valid backup file of `entries` entries of 1 KiB in one tree, written as the format
/// in `backup.rs` says (big enough that restoring it takes a while).
fn large_backup(file: &Path, entries: u64) {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let mut bytes = b"tidings-backup 1\n".to_vec();
    let chunk = |bytes: &mut Vec<u8>, data: &[u8]| {
        bytes.extend_from_slice(&u32::try_from(data.len()).unwrap().to_le_bytes());
        bytes.extend_from_slice(data);
    };
    bytes.push(b'T');
    chunk(&mut bytes, b"filler");
    for n in 0..entries {
        bytes.push(b'E');
        chunk(&mut bytes, &n.to_be_bytes());
        chunk(&mut bytes, &[u8::try_from(n % 251).unwrap(); 1024]);
    }
    let digest = Sha256::digest(&bytes);
    bytes.push(b'Z');
    bytes.extend_from_slice(&entries.to_le_bytes());
    bytes.extend_from_slice(&digest);
    std::fs::File::create(file)
        .unwrap()
        .write_all(&bytes)
        .unwrap();
}

/// What is in `dir` whose name starts with `db`.
fn stores_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map_or_else(
        |_| Vec::new(),
        |entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("db"))
                .collect()
        },
    )
}

#[tokio::test]
async fn a_killed_restore_leaves_no_store_and_the_next_restore_completes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("large.tidings-backup");
    large_backup(&file, 40_000);
    let target = dir.path().join("restored");
    let words = ["service", "--data-dir", "--restore"];
    let mut child = Command::new(BIN)
        .args([words[0], words[1]])
        .arg(&target)
        .arg(words[2])
        .arg(&file)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed as soon as the restore has begun writing a store.
    crate::helpers::wait_until("the restore begins writing", || {
        let begun = !stores_in(&target).is_empty();
        async move { begun }
    })
    .await;
    child.kill().await.unwrap();
    assert!(
        !target.join("db").exists(),
        "a killed restore left a store in place: {:?}",
        stores_in(&target)
    );

    let again = restore(&target, &file).await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stores_in(&target),
        ["db"],
        "the restore is in place and what the killed one left is gone"
    );
}

#[tokio::test]
async fn a_backup_is_never_written_through_a_planted_symlink() {
    // The backup's target on another file system than the data directory: the backup
    // is copied there, not renamed.
    let tmpfs = match crate::full_disk::Tmpfs::mount("64m") {
        Ok(tmpfs) => tmpfs,
        Err(why) => {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root: {why}");
            eprintln!("SKIPPED a_backup_is_never_written_through_a_planted_symlink: {why}");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("service");
    let service = Process::start_sled(&data).await;
    provision(&data, &service.url).await;
    let victim = dir.path().join("victim");
    let planted = tmpfs.path().join("planted.tidings-backup");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let refused = backup(&data, &planted).await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("exists"), "{}", stderr(&refused));
    assert!(!victim.exists(), "the backup was written through the link");

    let file = tmpfs.path().join("b.tidings-backup");
    let made = backup(&data, &file).await;
    assert!(made.status.success(), "{}", stderr(&made));
    let permissions =
        std::os::unix::fs::PermissionsExt::mode(&file.metadata().unwrap().permissions());
    assert_eq!(
        permissions & 0o777,
        0o600,
        "a copied backup is the owner's alone"
    );
    let left: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("backup-"))
        .collect();
    assert!(left.is_empty(), "the copy's original is removed: {left:?}");
}
