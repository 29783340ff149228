//! The service's own TLS (`tls_cert` / `tls_key`): rustls with ring, and certificates
//! that can be replaced while the service runs.
//!
//! The certificate in use sits behind a lock that every handshake reads ([`Reloadable`]).
//! It is loaded again on SIGHUP and when either file changes (checked every
//! `tls_reload_interval`, as certbot and friends replace files rather than signal).
//! Open connections keep the certificate they were made with; a new certificate that
//! cannot be used (unreadable, not PEM, a key that does not match) is refused with a
//! log line saying why, and the old one stays in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// Why a certificate and key cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TlsError {
    /// The file at fault.
    pub path: String,
    /// What is wrong, and what to do.
    pub message: String,
}

/// The certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), the server's own certificate first.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Reads and checks `files`.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let fail = |path: &Path, message: String| TlsError {
        path: path.display().to_string(),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect)
        .map_err(|e| {
            fail(
                &files.cert,
                format!("cannot read a PEM certificate chain: {e}"),
            )
        })?;
    if chain.is_empty() {
        return Err(fail(
            &files.cert,
            "holds no certificate (expected -----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| fail(&files.key, format!("cannot read a PEM private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        fail(
            &files.key,
            format!("cannot be used with {}: {e}", files.cert.display()),
        )
    })?;
    Ok(Arc::new(certified))
}

/// The certificate in use, replaceable.
#[derive(Debug)]
pub struct Reloadable {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloadable {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(crate::sync::read(&self.current).clone())
    }
}

/// The service's TLS: the acceptor for new connections and what reloads it.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    certificate: Arc<Reloadable>,
    files: TlsFiles,
}

impl Tls {
    /// TLS with the certificate of `files` (an error if it cannot be used).
    pub fn new(files: TlsFiles) -> Result<Self, TlsError> {
        let certificate = Arc::new(Reloadable {
            current: RwLock::new(load(&files)?),
        });
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                path: files.cert.display().to_string(),
                message: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(certificate.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            certificate,
            files,
        })
    }

    /// The acceptor for new connections.
    pub fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Loads the files again; on success new connections get the new certificate, on
    /// failure the old one stays (the error says why).
    pub fn reload(&self) -> Result<(), TlsError> {
        let fresh = load(&self.files)?;
        *crate::sync::write(&self.certificate.current) = fresh;
        Ok(())
    }

    /// Reloads on SIGHUP and when a file's modification time or size changes (checked
    /// every `every`), until `shutdown`.
    pub async fn watch(self, every: std::time::Duration, shutdown: CancellationToken) {
        let mut seen = self.stamps();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut hangup = hangups();
        loop {
            let why = tokio::select! {
                () = shutdown.cancelled() => return,
                () = next_hangup(&mut hangup) => "SIGHUP",
                _ = tick.tick() => {
                    let now = self.stamps();
                    if now == seen {
                        continue;
                    }
                    seen = now;
                    "the files changed"
                }
            };
            match self.reload() {
                Ok(()) => {
                    tracing::info!(cert = %self.files.cert.display(), "TLS certificate reloaded ({why}); new connections use it");
                }
                Err(e) => {
                    tracing::error!(error = %e, "TLS certificate not reloaded ({why}); the one in use stays");
                }
            }
        }
    }

    /// Each file's modification time and size (none for a file that cannot be read).
    fn stamps(&self) -> [Option<(SystemTime, u64)>; 2] {
        let stamp = |path: &Path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        };
        [stamp(&self.files.cert), stamp(&self.files.key)]
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangups() -> Hangups {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        .inspect_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP; TLS files are still checked for changes"))
        .ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {}

/// The next SIGHUP (never, without a way to hear it).
async fn next_hangup(hangups: &mut Hangups) {
    #[cfg(unix)]
    if let Some(signal) = hangups
        && signal.recv().await.is_some()
    {
        return;
    }
    let _ = hangups;
    std::future::pending::<()>().await;
}
