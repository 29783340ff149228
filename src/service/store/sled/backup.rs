//! Backups: the whole store copied into one file while the service runs, and a copy
//! restored into an empty data directory.
//!
//! The copy is consistent: it is made under the store's write lock, so no change lands
//! halfway through it, and everything answered `201` before it began is in it. Writes
//! wait meanwhile (`docs/backups.md` has the measured pace). The copy is of the data:
//! sled's own files are not copied, so it restores into any later build of tidings.
//!
//! The format: the line `tidings-backup 1\n`; then, for each tree, `T`, the name's
//! length (u32, little-endian) and the name; for each of its entries, `E`, the key's
//! length and the key, the value's length and the value; at the end `Z`, the number of
//! entries (u64) and the SHA-256 of every byte before the `Z`. A restore checks the
//! header, the count and the digest, and removes what it wrote if any is wrong.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{SledStore, StoreError};

/// The first line of a backup file.
const HEADER: &[u8] = b"tidings-backup 1\n";

/// What a backup holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackupSummary {
    /// Trees copied.
    pub trees: u64,
    /// Keys copied, in all trees.
    pub entries: u64,
    /// The file's size.
    pub bytes: u64,
}

fn fail(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backup(format!("{}: {what}: {e}", path.display()))
}

/// Writes bytes and keeps their digest.
struct Out {
    file: BufWriter<File>,
    digest: Sha256,
    bytes: u64,
}

impl Out {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.digest.update(bytes);
        self.bytes += bytes.len() as u64;
        self.file.write_all(bytes)
    }

    fn put_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let length = u32::try_from(bytes.len()).map_err(std::io::Error::other)?;
        self.put(&length.to_le_bytes())?;
        self.put(bytes)
    }
}

impl SledStore {
    /// Copies the whole store into the new file `path` (mode 0600), consistently: writes
    /// wait until it is done. Blocking: run it off the async runtime.
    pub fn backup(&self, path: &Path) -> Result<BackupSummary, StoreError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options
            .open(path)
            .map_err(|e| fail(path, "cannot create it", e))?;
        let mut out = Out {
            file: BufWriter::new(file),
            digest: Sha256::new(),
            bytes: 0,
        };
        let mut summary = BackupSummary::default();
        {
            let _writes_wait = self.lock();
            let backend = self.backend()?;
            out.put(HEADER).map_err(|e| fail(path, "writing", e))?;
            for name in backend.db.tree_names() {
                let tree = backend.db.open_tree(&name)?;
                out.put(b"T")
                    .and_then(|()| out.put_chunk(&name))
                    .map_err(|e| fail(path, "writing", e))?;
                summary.trees += 1;
                for entry in &tree {
                    let (key, value) = entry?;
                    out.put(b"E")
                        .and_then(|()| out.put_chunk(&key))
                        .and_then(|()| out.put_chunk(&value))
                        .map_err(|e| fail(path, "writing", e))?;
                    summary.entries += 1;
                }
            }
        }
        let digest = out.digest.clone().finalize();
        let mut trailer = b"Z".to_vec();
        trailer.extend_from_slice(&summary.entries.to_le_bytes());
        trailer.extend_from_slice(&digest);
        out.file
            .write_all(&trailer)
            .map_err(|e| fail(path, "writing", e))?;
        let file = out
            .file
            .into_inner()
            .map_err(|e| fail(path, "writing", e.error()))?;
        file.sync_all()
            .map_err(|e| fail(path, "flushing it to disk", e))?;
        summary.bytes = out.bytes + trailer.len() as u64;
        Ok(summary)
    }

    /// Restores the backup `path` into the data directory `dir`, which must hold no
    /// store yet. The store is written beside its place (`db.restoring-PID`), checked
    /// by opening it again, and only then renamed to `db`: a restore that is killed
    /// leaves no store, never half of one. On any error nothing is left behind; a
    /// directory left by a killed restore is removed by the next restore or start.
    pub fn restore(dir: &Path, path: &Path) -> Result<BackupSummary, StoreError> {
        let db_dir = dir.join("db");
        if db_dir.exists() {
            return Err(StoreError::Backup(format!(
                "{} already holds a store; restore into an empty data directory",
                dir.display()
            )));
        }
        remove_unfinished_restores(dir);
        let file = File::open(path).map_err(|e| fail(path, "cannot open it", e))?;
        let writing = dir.join(format!("{RESTORING}{}", std::process::id()));
        let restored = restore_into(&writing, BufReader::new(file), path)
            .and_then(|summary| verify(&writing, &summary).map(|()| summary))
            .and_then(|summary| {
                std::fs::rename(&writing, &db_dir)
                    .and_then(|()| sync_dir(dir))
                    .map_err(|e| fail(&db_dir, "cannot put the restored store in place", e))?;
                Ok(summary)
            });
        if restored.is_err() {
            let _ = std::fs::remove_dir_all(&writing);
        }
        restored
    }
}

/// Makes a rename in `dir` durable (Unix: the directory is synced; Windows has no
/// handle for that, and NTFS journals the rename itself).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// The name, before the process id, of a store being restored.
const RESTORING: &str = "db.restoring-";

/// Removes what a killed restore left in `dir` (its store is never used: a complete
/// restore is renamed to `db`, an unfinished one never is).
pub(super) fn remove_unfinished_restores(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(RESTORING) {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::warn!(path = %path.display(), "removed what an interrupted restore left");
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "an interrupted restore left this; remove it by hand");
                }
            }
        }
    }
}

/// Opens the restored store afresh and checks that it holds every entry restored.
/// sled's own threads may hold its lock for a moment after it was closed: the open is
/// retried for a few seconds.
fn verify(db_dir: &Path, summary: &BackupSummary) -> Result<(), StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let db = loop {
        match sled::Config::new().path(db_dir).flush_every_ms(None).open() {
            Ok(db) => break db,
            Err(sled::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => return Err(e.into()),
        }
    };
    let mut entries = 0_u64;
    for name in db.tree_names() {
        entries += db.open_tree(&name)?.len() as u64;
    }
    if entries == summary.entries {
        Ok(())
    } else {
        Err(StoreError::Backup(format!(
            "{}: the restored store holds {entries} entries, the backup {}",
            db_dir.display(),
            summary.entries
        )))
    }
}

/// Reads a backup, keeping the digest of what it read.
struct In<R> {
    input: R,
    digest: Sha256,
}

impl<R: Read> In<R> {
    /// Fills `buffer`; `None` when the file ends first.
    fn exact(&mut self, buffer: &mut [u8], hashed: bool) -> Option<()> {
        self.input.read_exact(buffer).ok()?;
        if hashed {
            self.digest.update(&*buffer);
        }
        Some(())
    }

    /// A length-prefixed chunk (hashed).
    fn chunk(&mut self) -> Option<Vec<u8>> {
        let mut length = [0; 4];
        self.exact(&mut length, true)?;
        let mut bytes = vec![0; usize::try_from(u32::from_le_bytes(length)).ok()?];
        self.exact(&mut bytes, true)?;
        Some(bytes)
    }
}

/// Reads a backup and writes it into a new database at `db_dir`.
fn restore_into(db_dir: &Path, input: impl Read, path: &Path) -> Result<BackupSummary, StoreError> {
    let bad = |what: &str| {
        StoreError::Backup(format!(
            "{}: not a tidings backup, or damaged: {what}",
            path.display()
        ))
    };
    let short = || bad("it ends too soon");
    let mut backup = In {
        input,
        digest: Sha256::new(),
    };
    let mut header = vec![0; HEADER.len()];
    backup.exact(&mut header, true).ok_or_else(short)?;
    if header != HEADER {
        return Err(bad("no tidings-backup header"));
    }
    if let Some(parent) = db_dir.parent() {
        crate::config::create_private_dir(parent)
            .map_err(|e| fail(parent, "cannot create it", e))?;
    }
    let db = sled::Config::new()
        .path(db_dir)
        .flush_every_ms(None)
        .open()?;
    let mut summary = BackupSummary::default();
    let mut tree: Option<sled::Tree> = None;
    loop {
        let mut tag = [0; 1];
        backup.exact(&mut tag, false).ok_or_else(short)?;
        match tag[0] {
            b'T' => {
                backup.digest.update(tag);
                let name = backup.chunk().ok_or_else(short)?;
                tree = Some(db.open_tree(name)?);
                summary.trees += 1;
            }
            b'E' => {
                backup.digest.update(tag);
                let key = backup.chunk().ok_or_else(short)?;
                let value = backup.chunk().ok_or_else(short)?;
                let tree = tree
                    .as_ref()
                    .ok_or_else(|| bad("an entry before any tree"))?;
                tree.insert(key, value)?;
                summary.entries += 1;
            }
            b'Z' => break,
            _ => return Err(bad("an unknown record")),
        }
    }
    let mut count = [0; 8];
    backup.exact(&mut count, false).ok_or_else(short)?;
    let mut expected = [0; 32];
    backup.exact(&mut expected, false).ok_or_else(short)?;
    if u64::from_le_bytes(count) != summary.entries {
        return Err(bad("the entry count does not match"));
    }
    if backup.digest.finalize().as_slice() != expected {
        return Err(bad("the checksum does not match"));
    }
    db.flush()?;
    drop(tree);
    drop(db);
    summary.bytes = std::fs::metadata(path).map_or(0, |m| m.len());
    Ok(summary)
}
