//! The reserve: a file of zeros kept in the data directory so that a full disk can be
//! survived.
//!
//! sled fails reads once a flush has failed, and it cannot reopen a database on a disk
//! with no free space at all (opening writes). So the store keeps `bytes` of the disk
//! for itself: when the disk fills, the reserve is deleted to make room for the reopen
//! that lets reads go on; writes stay refused until the reserve can be written whole
//! again, which is also the test that the disk takes writes.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The reserve file's name in the data directory.
const FILE: &str = "reserve";

/// Writes in pieces of this size.
const PIECE: usize = 1 << 20;

/// The reserve of one data directory.
#[derive(Debug, Clone)]
pub struct Reserve {
    path: PathBuf,
    bytes: u64,
}

impl Reserve {
    /// A reserve of `bytes` in `dir` (none when `bytes` is 0).
    pub fn new(dir: &Path, bytes: u64) -> Self {
        Self {
            path: dir.join(FILE),
            bytes,
        }
    }

    /// Makes sure the reserve is on disk, whole and synced. A partial one is removed, so
    /// an error leaves the space free.
    pub fn fill(&self) -> std::io::Result<()> {
        if self.bytes == 0 || std::fs::metadata(&self.path).is_ok_and(|m| m.len() == self.bytes) {
            return Ok(());
        }
        let result = self.write();
        if result.is_err() {
            self.release();
        }
        result
    }

    fn write(&self) -> std::io::Result<()> {
        let mut file = std::fs::File::create(&self.path)?;
        let zeros = vec![0; PIECE];
        let mut left = self.bytes;
        while left > 0 {
            let n = usize::try_from(left).map_or(PIECE, |left| left.min(PIECE));
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.sync_all()
    }

    /// Frees the reserve's space.
    pub fn release(&self) {
        if let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, path = %self.path.display(), "cannot free the reserve");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reserve_is_written_whole_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let reserve = Reserve::new(dir.path(), 3 * 1024 * 1024 + 5);
        reserve.fill().unwrap();
        let len = std::fs::metadata(dir.path().join(FILE)).unwrap().len();
        assert_eq!(len, 3 * 1024 * 1024 + 5);
        reserve.release();
        assert!(!dir.path().join(FILE).exists());
        Reserve::new(dir.path(), 0).fill().unwrap();
        assert!(!dir.path().join(FILE).exists(), "no reserve of 0 bytes");
    }
}
