//! How the runner's own devices prove who they are, and what a user does from them.
//!
//! A device is either signed in with the password grant (a bearer token, as an agent
//! is) or is a web session, as the web app's page is: signed in with `POST
//! /web/session`, its tokens in the `tidings_access` and `tidings_refresh` cookies,
//! every request carrying an `Origin` of the node it talks to (as a browser sends), and
//! the session rotated with `POST /web/session/refresh`. Both mark notifications read
//! or dismissed and delete them through the device API, as the page's buttons do.

use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderName, ORIGIN, SET_COOKIE};
use serde_json::{Value, json};

/// The cookies a web session's tokens are kept in.
const ACCESS_COOKIE: &str = "tidings_access";
const REFRESH_COOKIE: &str = "tidings_refresh";

/// A device's tokens, and how it shows them.
#[derive(Clone)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub at: Instant,
    /// A web session (cookies and `Origin`), not a bearer token.
    pub web: bool,
}

impl Tokens {
    /// The headers that authorise a request to the node at `url`.
    pub fn headers(&self, url: &str) -> Vec<(HeaderName, String)> {
        if self.web {
            vec![
                (COOKIE, format!("{ACCESS_COOKIE}={}", self.access)),
                (ORIGIN, url.to_owned()),
            ]
        } else {
            vec![(AUTHORIZATION, format!("Bearer {}", self.access))]
        }
    }

    /// `builder` with [`Tokens::headers`].
    pub fn authorize(
        &self,
        builder: reqwest::RequestBuilder,
        url: &str,
    ) -> reqwest::RequestBuilder {
        self.headers(url)
            .into_iter()
            .fold(builder, |b, (name, value)| b.header(name, value))
    }
}

/// Signs a device of `user` in to the node at `url`: a web session, or the password
/// grant.
pub async fn sign_in(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    web: bool,
) -> Result<Tokens, String> {
    let password = format!("{user}-pw");
    if web {
        let answer = http
            .post(format!("{url}/web/session"))
            .header(ORIGIN, url)
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        return session(&answer);
    }
    let name = format!("{user}-watcher");
    let form = [
        ("grant_type", "password"),
        ("username", user),
        ("password", password.as_str()),
        ("device_name", name.as_str()),
        ("platform", "linux"),
    ];
    grant(http, url, &form).await
}

/// New tokens for `tokens`, from the node at `url`.
pub async fn refresh(http: &reqwest::Client, url: &str, tokens: &Tokens) -> Result<Tokens, String> {
    if tokens.web {
        let answer = http
            .post(format!("{url}/web/session/refresh"))
            .header(ORIGIN, url)
            .header(COOKIE, format!("{REFRESH_COOKIE}={}", tokens.refresh))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        return session(&answer);
    }
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh.as_str()),
    ];
    grant(http, url, &form).await
}

/// The tokens a web session's answer set in its cookies.
fn session(answer: &reqwest::Response) -> Result<Tokens, String> {
    let status = answer.status();
    let cookie = |name: &str| {
        answer
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next()?.split_once('='))
            .find(|(key, value)| *key == name && !value.is_empty())
            .map(|(_, value)| value.to_owned())
    };
    match (cookie(ACCESS_COOKIE), cookie(REFRESH_COOKIE)) {
        (Some(access), Some(refresh)) if status.is_success() => Ok(Tokens {
            access,
            refresh,
            at: Instant::now(),
            web: true,
        }),
        _ => Err(format!("web sign-in {status}")),
    }
}

/// A token grant; the tokens it answered.
async fn grant(http: &reqwest::Client, url: &str, form: &[(&str, &str)]) -> Result<Tokens, String> {
    let answer = http
        .post(format!("{url}/oauth2/v2.0/token"))
        .form(form)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = answer.status();
    let body: Value = answer.json().await.map_err(|e| e.to_string())?;
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    match (text("access_token"), text("refresh_token")) {
        (Some(access), Some(refresh)) => Ok(Tokens {
            access,
            refresh,
            at: Instant::now(),
            web: false,
        }),
        _ => Err(format!("token grant {status}: {body}")),
    }
}

/// What a user does to one notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Dismiss,
    Delete,
}

impl Action {
    /// The action drawn from `pick`.
    pub fn from_pick(pick: u64) -> Self {
        match pick % 3 {
            0 => Action::Read,
            1 => Action::Dismiss,
            _ => Action::Delete,
        }
    }

    /// The `tidings` command that does it.
    pub fn command(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Dismiss => "dismiss",
            Action::Delete => "delete",
        }
    }
}

/// Does `action` to notification `id` through the device API of the node at `url`: the
/// answer's status, or `None` when none came.
pub async fn act(
    http: &reqwest::Client,
    url: &str,
    tokens: &Tokens,
    id: &str,
    action: Action,
) -> Option<StatusCode> {
    let path = format!("{url}/v1/me/notifications/{id}");
    let request = match action {
        Action::Read => http.patch(path).json(&json!({"readState": "read"})),
        Action::Dismiss => http
            .patch(path)
            .json(&json!({"userActionState": "dismissed"})),
        Action::Delete => http.delete(path),
    };
    let answer = tokens.authorize(request, url).send().await.ok()?;
    Some(answer.status())
}
