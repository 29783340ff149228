//! The service's own TLS, with CAs made in the test (rcgen): the agent over `wss://`
//! trusting the CA it is given and nothing else; a certificate replaced while the
//! service runs (new connections get it, an open channel stays up); a bad certificate
//! on reload, which leaves the old one in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures_util::StreamExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tidings::agent::{self, Settings};
use tidings::protocol::frames::ServerFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::helpers::{DEADLINE, TestService, post_as_app, wait_until};
use crate::process::{Process, provision_with};

/// A CA, and a server certificate for `localhost` it signed, as PEM files in `dir`.
pub struct Pki {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub fn make_pki(dir: &Path, name: &str) -> Pki {
    make_pki_for(dir, name, "localhost")
}

/// [`make_pki`] with the server certificate made out to `host` (a name or an address).
pub fn make_pki_for(dir: &Path, name: &str, host: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![host.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let pki = Pki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca.pem()).unwrap();
    std::fs::write(&pki.cert, leaf.pem()).unwrap();
    std::fs::write(&pki.key, leaf_key.serialize_pem()).unwrap();
    pki
}

/// `http://127.0.0.1:PORT` as the certificate's name sees it: `https://localhost:PORT`.
fn https(url: &str) -> String {
    url.replace("http://127.0.0.1", "https://localhost")
        .replace("https://127.0.0.1", "https://localhost")
}

fn client_trusting(ca: &Path) -> Arc<rustls::ClientConfig> {
    agent::tls::client_config(Some(ca)).unwrap()
}

/// Whether a TLS handshake with the service at `url` succeeds, trusting `ca` alone.
async fn handshake_ok(url: &str, ca: &Path) -> bool {
    let http = agent::api::http_client(&client_trusting(ca)).unwrap();
    http.get(format!("{url}/healthz")).send().await.is_ok()
}

#[tokio::test]
async fn the_agent_syncs_over_the_services_own_tls_trusting_only_its_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path(), "tidings test CA");
    let other = make_pki(dir.path(), "some other CA");
    let files = tidings::service::tls::TlsFiles {
        cert: pki.cert.clone(),
        key: pki.key.clone(),
    };
    let service = TestService::start_with(|s| s.tls = Some(files)).await;
    let url = https(&service.url);
    service.add_user("alice").await;
    let created = service
        .admin("app.add", serde_json::json!({"hostname": "contoso.com"}))
        .await
        .unwrap();
    let http = agent::api::http_client(&client_trusting(&pki.ca)).unwrap();
    let app = crate::helpers::app_token(&http, &url, &created).await;

    let refused = agent::login(&url, "alice", "alice-pw", "laptop", Some(&other.ca))
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("--ca-file"), "says what to do: {refused}");
    let without = agent::login(&url, "alice", "alice-pw", "laptop", None).await;
    assert!(without.is_err(), "the test CA is not a platform root");

    let creds = agent::login(&url, "alice", "alice-pw", "laptop", Some(&pki.ca))
        .await
        .unwrap();
    let mut settings = Settings::new(
        url.clone(),
        creds.refresh_token.clone(),
        dir.path().join("agent"),
    );
    settings.ca_file = Some(pki.ca.clone());
    let agent = crate::test_agent::TestAgent::launch(settings);
    let handle = agent.handle.clone();
    let (sub, _keys) = handle.subscribe("contoso.com").await.unwrap();
    let posted = post_as_app(&http, &url, &app.token, sub.unsid.as_str(), "over TLS").await;
    let id = tidings::protocol::NotificationId::new(posted["id"].as_str().unwrap());
    wait_until("the notification arrives over wss://", || async {
        handle.store().get(&id).unwrap().is_some()
    })
    .await;
    agent.stop().await;
    service.stop().await;
}

#[tokio::test]
async fn a_new_certificate_serves_new_connections_while_an_open_channel_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let first = make_pki(dir.path(), "first");
    let second = make_pki(dir.path(), "second");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let data = dir.path().join("service");
    let tls_args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-reload-interval",
        "100ms",
    ];
    let service = Process::start_with(&data, "127.0.0.1:0", &tls_args).await;
    let url = https(&service.url);
    let http = agent::api::http_client(&client_trusting(&first.ca)).unwrap();
    let (app, device, unsid) = provision_with(&data, &url, &http).await;

    // A channel trusting the first CA, opened before the certificate changes.
    let channel_url = format!("{}/v1/me/channel?cursor=0", url.replacen("https", "wss", 1));
    let mut request = channel_url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {}", device.token).parse().unwrap(),
    );
    let connector = tokio_tungstenite::Connector::Rustls(client_trusting(&first.ca));
    let (mut channel, _) =
        tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
            .await
            .unwrap();

    // The files change (no signal): new connections get the second certificate.
    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    wait_until("new connections get the new certificate", || {
        handshake_ok(&url, &second.ca)
    })
    .await;
    assert!(
        !handshake_ok(&url, &first.ca).await,
        "the old certificate is gone for new connections"
    );

    // The open channel still works: a post reaches it.
    let http = agent::api::http_client(&client_trusting(&second.ca)).unwrap();
    let posted = post_as_app(&http, &url, &app.token, &unsid, "after the change").await;
    let arrived = tokio::time::timeout(DEADLINE, async {
        while let Some(Ok(message)) = channel.next().await {
            if let Message::Text(text) = message
                && let Ok(ServerFrame::Change { notification, .. }) =
                    serde_json::from_str(text.as_str())
            {
                return notification.id.to_string();
            }
        }
        panic!("the channel closed");
    })
    .await
    .expect("the change arrives on the old channel");
    assert_eq!(arrived, posted["id"].as_str().unwrap());

    // A bad certificate on SIGHUP is refused, and the second stays in use.
    std::fs::write(&cert, "not a certificate").unwrap();
    service.signal(rustix::process::Signal::HUP);
    wait_until("the reload is refused", || async {
        service.logged(&["not reloaded (SIGHUP)", "cert.pem"])
    })
    .await;
    assert!(
        handshake_ok(&url, &second.ca).await,
        "the certificate in use stays"
    );
}

#[tokio::test]
async fn a_service_with_half_a_tls_setting_or_a_bad_key_says_so_and_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let one = make_pki(dir.path(), "one");
    let two = make_pki(dir.path(), "two");
    let cases: [(Vec<&str>, &str); 2] = [
        (
            vec!["--tls-cert", one.cert.to_str().unwrap()],
            "tls_cert is set but tls_key is not",
        ),
        (
            vec![
                "--tls-cert",
                one.cert.to_str().unwrap(),
                "--tls-key",
                two.key.to_str().unwrap(),
            ],
            "two-key.pem: cannot be used with",
        ),
    ];
    for (args, says) in cases {
        let mut all = vec![
            "service",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ];
        all.extend(args);
        let ran = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
            .args(&all)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&ran.stderr);
        assert_eq!(ran.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
}
