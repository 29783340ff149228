//! A private D-Bus session bus for the benches that measure the agent with its panel
//! icon on: `dbus-daemon` with a config of its own, no panel on it.

use std::process::{Command, Stdio};

/// A private D-Bus session bus (`dbus-daemon`), stopped when dropped.
pub struct PrivateBus {
    daemon: std::process::Child,
    pub address: String,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    /// A new bus; `None` when `dbus-daemon` is not installed.
    pub fn start() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, BUS_CONFIG).unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(daemon.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        Some(Self {
            daemon,
            address: line.trim().to_owned(),
            _dir: dir,
        })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A session bus where anyone may own names and talk; nothing is activated (the
/// tests' own).
const BUS_CONFIG: &str = include_str!("../../tests/it/session-bus.conf");
