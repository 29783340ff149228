//! The agent over TLS: a test CA made with rcgen, a TLS-terminating proxy in front of
//! the real service (the service itself serves plain HTTP on loopback; TLS termination
//! belongs to a later issue), the agent trusting the CA through `ca_file`.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tidings::agent::{self, Settings};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_util::sync::CancellationToken;

use crate::helpers::{TestService, note, wait_until};

/// A CA and a server certificate for `localhost` it signed.
struct Pki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn make_pki(name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// Terminates TLS on a loopback port and forwards to `backend`. Returns the https URL.
async fn tls_proxy(pki: &Pki, backend: String, stop: CancellationToken) -> String {
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = tokio::select! {
                accepted = listener.accept() => accepted.unwrap(),
                () = stop.cancelled() => return,
            };
            let (acceptor, backend, stop) = (acceptor.clone(), backend.clone(), stop.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut plain = TcpStream::connect(&backend).await.unwrap();
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                    () = stop.cancelled() => {}
                }
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test]
async fn the_agent_trusts_the_ca_it_is_given_and_refuses_others() {
    let service = TestService::start().await;
    let (app, _, _) = service.alice_and_contoso().await;
    let pki = make_pki("tidings test CA");
    let stop = CancellationToken::new();
    let backend = service.url.trim_start_matches("http://").to_owned();
    let url = tls_proxy(&pki, backend, stop.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();
    let other_ca = dir.path().join("other.pem");
    std::fs::write(&other_ca, make_pki("some other CA").ca_pem).unwrap();

    let refused = agent::login(&url, "alice", "alice-pw", "laptop", Some(&other_ca))
        .await
        .unwrap_err();
    assert!(
        refused.to_string().to_lowercase().contains("certificate"),
        "{refused}"
    );
    let without = agent::login(&url, "alice", "alice-pw", "laptop", None).await;
    assert!(without.is_err(), "the test CA is not a platform root");

    let creds = agent::login(&url, "alice", "alice-pw", "laptop", Some(&ca_file))
        .await
        .unwrap();
    assert_eq!(creds.ca_file.as_deref(), Some(ca_file.as_path()));
    let mut settings = Settings::new(
        url.clone(),
        creds.refresh_token.clone(),
        dir.path().join("agent"),
    );
    settings.ca_file = Some(ca_file.clone());
    let agent = crate::test_agent::TestAgent::launch(settings);
    let handle = agent.handle.clone();
    let sub = handle.subscribe("contoso.com").await.unwrap();
    let posted = service
        .post_ok(&app, sub.unsid.as_str(), &note("contoso.com", "over TLS"))
        .await;
    wait_until("the notification arrives over wss://", || async {
        handle.store().get(&posted.id).unwrap().is_some()
    })
    .await;
    agent.stop().await;
    stop.cancel();
    service.stop().await;
}
