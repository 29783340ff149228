//! The local transport under the JSON-RPC server and client: a Unix socket on Unix, a
//! named pipe on Windows. Everything above works on any `AsyncRead + AsyncWrite`.
//!
//! Unix: the socket file is made 0600 in a 0700 directory; a socket file left by a
//! crash is removed only after a connect to it fails; each peer's uid is checked with
//! `SO_PEERCRED` (own user and root only).
//!
//! Windows: the address is a pipe name (`\\.\pipe\...`). The first instance is created
//! with `FILE_FLAG_FIRST_PIPE_INSTANCE`, so a second server is refused; remote clients
//! are rejected; the pipe's default security descriptor (full control for the creator,
//! SYSTEM and administrators, read-only for others, so others cannot send a request)
//! stands in for the uid check.

use std::path::Path;

/// Checks a connected peer: `Err` holds why it is refused.
pub type PeerCheck = Result<(), String>;

#[cfg(unix)]
pub use unix::{Listener, ServerStream, connect};
#[cfg(windows)]
pub use windows::{Listener, ServerStream, connect};

/// Whether `error` means nothing listens at the address.
pub fn is_not_running(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::NotFound | ErrorKind::ConnectionRefused
    )
}

/// What to say when an address is taken.
fn in_use(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!("{} is in use by a running process", path.display()),
    )
}

#[cfg(unix)]
mod unix {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use tokio::net::{UnixListener, UnixStream};

    use super::{PeerCheck, in_use};

    /// The server side of one connection.
    pub type ServerStream = UnixStream;

    /// A bound socket.
    pub struct Listener {
        inner: UnixListener,
        path: PathBuf,
    }

    impl Listener {
        /// Binds `path` (mode 0600); a stale socket file is replaced, a live one is
        /// `AddrInUse`.
        pub async fn bind(path: &Path) -> std::io::Result<Self> {
            if path.exists() {
                if UnixStream::connect(path).await.is_ok() {
                    return Err(in_use(path));
                }
                std::fs::remove_file(path)?;
            }
            let inner = UnixListener::bind(path)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            Ok(Self {
                inner,
                path: path.to_owned(),
            })
        }

        /// The next connection, with the verdict on its peer.
        pub async fn accept(&mut self) -> std::io::Result<(ServerStream, PeerCheck)> {
            let (stream, _) = self.inner.accept().await?;
            let check = peer_allowed(&stream);
            Ok((stream, check))
        }

        /// Removes the socket file (at shutdown).
        pub fn remove(&self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Only the server's own user (and root) may talk to it.
    fn peer_allowed(stream: &UnixStream) -> PeerCheck {
        let own = rustix::process::getuid().as_raw();
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == own || cred.uid() == 0 => Ok(()),
            Ok(cred) => {
                tracing::warn!(uid = cred.uid(), pid = ?cred.pid(), "refused an IPC peer of another user");
                Err(format!(
                    "refused: this socket serves uid {own} only, not uid {}",
                    cred.uid()
                ))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read an IPC peer's credentials; refused");
                Err("refused: the peer's credentials could not be read".to_owned())
            }
        }
    }

    /// Connects to the socket at `path`.
    pub async fn connect(path: &Path) -> std::io::Result<UnixStream> {
        UnixStream::connect(path).await
    }
}

#[cfg(windows)]
mod windows {
    use std::path::Path;
    use std::time::Duration;

    use tokio::net::windows::named_pipe::{
        ClientOptions, NamedPipeClient, NamedPipeServer, ServerOptions,
    };

    use super::{PeerCheck, in_use};

    /// The server side of one connection.
    pub type ServerStream = NamedPipeServer;

    /// `ERROR_PIPE_BUSY`: every instance is taken; wait and retry.
    const PIPE_BUSY: i32 = 231;

    /// A pipe with one instance waiting for the next client.
    pub struct Listener {
        name: String,
        next: NamedPipeServer,
    }

    impl Listener {
        /// Creates the pipe `path`; `AddrInUse` when another server has it.
        pub async fn bind(path: &Path) -> std::io::Result<Self> {
            let name = path.to_string_lossy().into_owned();
            let next = ServerOptions::new()
                .first_pipe_instance(true)
                .reject_remote_clients(true)
                .create(&name)
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::PermissionDenied => in_use(path),
                    _ => e,
                })?;
            Ok(Self { name, next })
        }

        /// The next connection (a fresh instance waits for the one after).
        pub async fn accept(&mut self) -> std::io::Result<(ServerStream, PeerCheck)> {
            self.next.connect().await?;
            let fresh = ServerOptions::new()
                .reject_remote_clients(true)
                .create(&self.name)?;
            Ok((std::mem::replace(&mut self.next, fresh), Ok(())))
        }

        /// Pipes vanish with their last handle: nothing to remove.
        pub fn remove(&self) {}
    }

    /// Connects to the pipe `path`, waiting briefly while every instance is busy.
    pub async fn connect(path: &Path) -> std::io::Result<NamedPipeClient> {
        let name = path.to_string_lossy().into_owned();
        let mut tries = 0;
        loop {
            match ClientOptions::new().open(&name) {
                Err(e) if e.raw_os_error() == Some(PIPE_BUSY) && tries < 100 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
    }
}
