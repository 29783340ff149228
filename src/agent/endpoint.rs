//! The service's address as the agent uses it: checked once (plain HTTP only to
//! loopback), and the URLs of the token endpoint, the REST API and the channel.
//!
//! It may be a list (`https://a.example.org, https://b.example.org`): the nodes of one
//! service sharing a database. The agent uses one at a time and moves to the next when
//! its link is lost ([`Endpoint::fail_over`]); every clone shares the choice.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use url::Url;

use super::AgentError;
use crate::protocol::Seq;

/// The service the agent talks to, checked once.
#[derive(Debug, Clone)]
pub struct Endpoint {
    bases: Arc<[Url]>,
    current: Arc<AtomicUsize>,
}

impl Endpoint {
    /// Parses the service URL, or a list of them separated by commas or spaces. Plain
    /// `http://` is accepted for loopback hosts only.
    pub fn parse(text: &str) -> Result<Self, AgentError> {
        let bases = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|part| !part.is_empty())
            .map(parse_one)
            .collect::<Result<Vec<Url>, AgentError>>()?;
        if bases.is_empty() {
            return Err(AgentError::Config(
                "no service URL given; e.g. https://notify.example.org".to_owned(),
            ));
        }
        Ok(Self {
            bases: bases.into(),
            current: Arc::default(),
        })
    }

    /// The URL in use.
    fn current(&self) -> &Url {
        let index = self.current.load(Ordering::Relaxed) % self.bases.len();
        &self.bases[index]
    }

    /// How many nodes the list names.
    pub fn nodes(&self) -> usize {
        self.bases.len()
    }

    /// Moves to the next URL of the list (after a lost link); `false` when there is
    /// only one.
    pub fn fail_over(&self) -> bool {
        if self.bases.len() < 2 {
            return false;
        }
        self.current.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// The service's base URL in use, as given (without a trailing slash).
    pub fn base(&self) -> String {
        self.current().as_str().trim_end_matches('/').to_owned()
    }

    /// The URL of `path` at the service.
    pub fn url(&self, path: &str) -> Result<Url, AgentError> {
        self.join(path)
    }

    fn join(&self, path: &str) -> Result<Url, AgentError> {
        self.current()
            .join(path)
            .map_err(|e| AgentError::Config(format!("bad service URL: {e}")))
    }

    /// `POST /oauth2/v2.0/token`.
    pub fn token_url(&self) -> Result<Url, AgentError> {
        self.join("/oauth2/v2.0/token")
    }

    /// `GET /v1/me/channel?cursor=N` as a `ws://` URL.
    pub fn channel_url(&self, cursor: Seq) -> Result<Url, AgentError> {
        let mut url = self.join(&format!("/v1/me/channel?cursor={cursor}"))?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| AgentError::Config("cannot make a WebSocket URL".to_owned()))?;
        Ok(url)
    }
}

/// An error with its causes ("error sending request: ...: invalid peer certificate").
pub fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if let Some(hint) = tls_hint(&text).filter(|hint| !text.contains(hint)) {
        text.push_str("; ");
        text.push_str(hint);
    }
    text
}

/// What to do about the TLS mistakes self-hosters make most, from rustls' words.
fn tls_hint(error: &str) -> Option<&'static str> {
    let hints = [
        (
            "CaUsedAsEndEntity",
            "the service's certificate is a CA certificate (what a quick `openssl req -x509` makes), and a CA cannot be a server's certificate: give the service a server certificate signed by your CA, and this device the CA with --ca-file (docs/tls.md shows the commands)",
        ),
        (
            "UnknownIssuer",
            "the service's certificate is not signed by a CA this device trusts: pass the CA's certificate with --ca-file (docs/tls.md)",
        ),
        (
            "NotValidForName",
            "the service's certificate is not made out to the host name in the URL: use the name the certificate has, or make one with it (docs/tls.md)",
        ),
        (
            "Expired",
            "the service's certificate has expired: the service needs a new one (it reloads it without a restart)",
        ),
    ];
    hints
        .iter()
        .find(|(word, _)| error.contains(word))
        .map(|(_, hint)| *hint)
}

/// One service URL, checked: `ws(s)` is taken as `http(s)`; plain `http://` only to a
/// loopback host.
fn parse_one(text: &str) -> Result<Url, AgentError> {
    let mut base = Url::parse(text)
        .map_err(|e| AgentError::Config(format!("the service URL {text:?} is not a URL: {e}")))?;
    // The base is kept as http(s); the channel URL is derived from it.
    let http_scheme = match base.scheme() {
        "ws" => Some("http"),
        "wss" => Some("https"),
        _ => None,
    };
    if let Some(scheme) = http_scheme {
        let _ = base.set_scheme(scheme);
    }
    match base.scheme() {
        "http" if is_loopback(&base) => Ok(base),
        "https" => Ok(base),
        "http" => Err(AgentError::Config(format!(
            "refusing plain {}:// to {}: notifications and tokens would cross the network unencrypted; use https://",
            base.scheme(),
            base.host_str().unwrap_or("?")
        ))),
        other => Err(AgentError::Config(format!(
            "unsupported URL scheme {other:?}; use https://"
        ))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_mistakes_come_with_what_to_do() {
        let said = "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))";
        assert!(tls_hint(said).unwrap().contains("CA certificate"));
        assert!(
            tls_hint("invalid peer certificate: UnknownIssuer")
                .unwrap()
                .contains("--ca-file")
        );
        assert!(tls_hint("connection refused").is_none());
    }

    #[test]
    fn a_list_of_nodes_is_used_one_at_a_time_and_each_is_checked() {
        let endpoint = Endpoint::parse("https://a.example.org, https://b.example.org").unwrap();
        let shared = endpoint.clone();
        assert_eq!(endpoint.base(), "https://a.example.org");
        assert!(endpoint.fail_over());
        assert_eq!(shared.base(), "https://b.example.org");
        assert!(shared.fail_over());
        assert_eq!(endpoint.base(), "https://a.example.org");
        assert!(
            !Endpoint::parse("https://a.example.org")
                .unwrap()
                .fail_over()
        );
        let err = Endpoint::parse("https://a.example.org,http://b.example.org")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unencrypted"), "{err}");
        assert!(Endpoint::parse(" , ").is_err());
    }

    #[test]
    fn plain_http_is_for_loopback_only() {
        assert!(Endpoint::parse("http://127.0.0.1:7319").is_ok());
        assert!(Endpoint::parse("http://localhost:7319").is_ok());
        assert!(Endpoint::parse("http://[::1]:7319").is_ok());
        let err = Endpoint::parse("http://notify.example.com")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unencrypted"), "{err}");
        let url = Endpoint::parse("http://127.0.0.1:7319")
            .unwrap()
            .channel_url(Seq(5))
            .unwrap();
        assert_eq!(url.as_str(), "ws://127.0.0.1:7319/v1/me/channel?cursor=5");
    }
}
