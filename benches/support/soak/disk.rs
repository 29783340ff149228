//! The sled node's disk: a tmpfs of its own holding its data directory, so the schedule
//! can fill it (a ballast file written until the disk refuses more) and free it again,
//! as a full disk does to a real server. Mounting needs root (CI runs as root); without
//! it the run says so loudly and leaves the fault out.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The tmpfs's size: room for an hour's store, held in memory only as it fills.
const SIZE_MIB: u64 = 1024;

/// A tmpfs mounted on a node's data directory; unmounted when dropped.
pub struct Disk {
    path: PathBuf,
}

impl Disk {
    /// Mounts a tmpfs on `path` (made if missing); `None`, having said why, when this
    /// process may not mount.
    pub fn mount(path: &Path) -> Result<Option<Self>, String> {
        std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={SIZE_MIB}m"), "tmpfs"])
            .arg(path)
            .status()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !status.success() {
            println!(
                "\n*** soak: mount -t tmpfs failed ({status}): not root? The full-disk fault is LEFT OUT of this run ***\n"
            );
            return Ok(None);
        }
        Ok(Some(Self {
            path: path.to_owned(),
        }))
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ballast(&self) -> PathBuf {
        self.path.join("ballast")
    }

    /// Fills the disk: writes the ballast until the disk refuses more; the bytes it
    /// took.
    pub fn fill(&self) -> Result<u64, String> {
        let mut file = std::fs::File::create(self.ballast()).map_err(|e| e.to_string())?;
        let chunk = vec![0u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => return Ok(written),
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => return Ok(written),
                Err(e) => return Err(format!("filling the disk: {e}")),
            }
        }
    }

    /// Frees what [`Self::fill`] took.
    pub fn free(&self) {
        let _ = std::fs::remove_file(self.ballast());
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
