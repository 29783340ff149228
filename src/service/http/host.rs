//! Which `Host` the web app answers to: a defence against DNS rebinding.
//!
//! A page on `evil.example` can point its own name at 127.0.0.1 (or at a service on the
//! local network) and then talk to the service as if it were its own origin, with
//! `Host: evil.example`. The web app's routes (`/`, its files, `/web/session`) therefore
//! answer only to a `Host` that cannot have been rebound: an IP address literal, the
//! name `localhost` (and `*.localhost`), or a name listed in `allowed_hosts`; any other
//! is answered `403` with how to allow it. (The device and app APIs need a token that
//! such a page does not have, and stay open to any `Host`.)

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::service::State as AppState;

/// The host name of a `Host` header value: without the port, lower case, without a
/// trailing dot; an IPv6 literal keeps its brackets.
fn host_name(value: &str) -> String {
    let name = if value.starts_with('[') {
        value.split_once(']').map_or(value, |(ip, _)| ip)
    } else {
        match value.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => value,
        }
    };
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether the web app answers to `Host: value` with `allowed` listed.
pub fn allowed(value: &str, allowed: &[String]) -> bool {
    let name = host_name(value);
    name.starts_with('[')
        || name.parse::<std::net::IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(&name))
}

/// The router layer of the web app's routes.
pub async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if host.is_empty() || allowed(&host, &state.settings.allowed_hosts) {
        return next.run(request).await;
    }
    ApiError::forbidden(format!(
        "this service's web app does not answer to the host name {:?}: add it to allowed_hosts in the [service] table (or TIDINGS_ALLOWED_HOSTS), or open it by IP address or localhost",
        host_name(&host)
    ))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_that_cannot_be_rebound_or_are_listed_pass() {
        let listed = vec!["notify.example.com".to_owned()];
        for ok in [
            "127.0.0.1:7319",
            "[::1]:7319",
            "192.168.1.10",
            "localhost:7319",
            "app.localhost",
            "Notify.Example.com.",
            "notify.example.com:443",
        ] {
            assert!(allowed(ok, &listed), "{ok}");
        }
        for refused in ["evil.example:7319", "localhost.evil.example", "example.com"] {
            assert!(!allowed(refused, &listed), "{refused}");
        }
    }
}
