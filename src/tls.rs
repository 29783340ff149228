//! TLS client configuration shared by every layer: rustls with the ring provider,
//! trusting the platform's roots plus, optionally, the CAs of a PEM file. The agent
//! uses it for the service (`--ca-file`), the service for its PostgreSQL link
//! (`store_ca_file`).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use rustls_platform_verifier::Verifier;

/// Makes ring the process's TLS provider (once; later calls change nothing).
pub fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The client TLS configuration: platform roots plus those in `ca_file`.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    install_provider();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let extra = match ca_file {
        Some(path) => read_cas(path)?,
        None => Vec::new(),
    };
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("setting up TLS: {e}"))?;
    let config = match Verifier::new_with_extra_roots(extra.clone(), provider) {
        Ok(verifier) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth(),
        Err(e) => {
            // Seen under Wine, whose CryptoAPI the platform verifier cannot use. Fail
            // closed: trust only the CAs given (none: every TLS handshake fails), so
            // plain-HTTP loopback (local mode) still works.
            tracing::warn!(error = %e, "the platform's certificate checks are unavailable; trusting only the CAs of the CA file");
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(extra);
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    };
    Ok(Arc::new(config))
}

fn read_cas(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bad = |e: &dyn std::fmt::Display| format!("reading the CA file {}: {e}", path.display());
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(bad(&"it holds no PEM certificate"));
    }
    Ok(certs)
}
