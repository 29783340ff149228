//! The agent's REST calls to the service: an access-token cache (renewed before it
//! expires) and subscriptions (UNSIDs).

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::protocol::Notification;
pub use crate::protocol::rest::Subscription;
use crate::protocol::rest::TokenResponse;

use super::AgentError;
use super::endpoint::{Endpoint, describe};

/// Tokens live an hour; renew well before that.
const TOKEN_REUSE: Duration = Duration::from_secs(45 * 60);

/// Talks to the service's REST API as this device.
pub struct Api {
    http: reqwest::Client,
    endpoint: Endpoint,
    /// The current refresh token; each use replaces it.
    refresh_token: Mutex<SecretString>,
    /// Where the credential is saved again when its refresh token is replaced.
    credentials_dir: Option<std::path::PathBuf>,
    token: Mutex<Option<(String, Instant)>>,
    tls: Arc<rustls::ClientConfig>,
}

/// An HTTP client using `tls` for https.
pub fn http_client(tls: &Arc<rustls::ClientConfig>) -> Result<reqwest::Client, AgentError> {
    reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(tls))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| AgentError::Config(format!("setting up the HTTP client: {e}")))
}

impl Api {
    /// A client for `endpoint` signing in with the device's refresh token, over `tls`.
    pub fn new(
        endpoint: Endpoint,
        refresh_token: SecretString,
        tls: Arc<rustls::ClientConfig>,
    ) -> Result<Self, AgentError> {
        Ok(Self {
            http: http_client(&tls)?,
            endpoint,
            refresh_token: Mutex::new(refresh_token),
            credentials_dir: None,
            token: Mutex::new(None),
            tls,
        })
    }

    /// Saves every replaced refresh token into the credential in `agent_dir` (when one
    /// is there), so that the next start presents the current one.
    #[must_use]
    pub fn saving_credentials_in(mut self, agent_dir: std::path::PathBuf) -> Self {
        self.credentials_dir = Some(agent_dir);
        self
    }

    /// The TLS configuration (for the channel).
    pub fn tls(&self) -> &Arc<rustls::ClientConfig> {
        &self.tls
    }

    /// The service endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// A valid access token: the cached one, or a fresh one when it is old.
    pub async fn token(&self) -> Result<String, AgentError> {
        let mut cached = self.token.lock().await;
        if let Some((token, at)) = cached.as_ref()
            && at.elapsed() < TOKEN_REUSE
        {
            return Ok(token.clone());
        }
        let mut refresh_token = self.refresh_token.lock().await;
        let (token, replaced) =
            access_token(&self.http, &self.endpoint, refresh_token.expose_secret()).await?;
        if let Some(replaced) = replaced {
            self.save_refresh_token(&replaced);
            *refresh_token = replaced.into();
        }
        *cached = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    /// Writes a replaced refresh token into the saved credential. The old one no longer
    /// works, and presenting it again would sign this device out, so a failure here is
    /// loud.
    fn save_refresh_token(&self, replaced: &str) {
        let Some(dir) = &self.credentials_dir else {
            return;
        };
        let saved = super::credentials::Credentials::load(dir).and_then(|creds| match creds {
            Some(mut creds) => {
                replaced.clone_into(&mut creds.refresh_token);
                creds.save(dir)
            }
            None => Ok(()),
        });
        if let Err(e) = saved {
            tracing::error!(error = %e, "could not save the renewed device credential; after a restart this device must sign in again");
        }
    }

    /// Drops the cached token (the service refused it).
    pub async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// Signs this device out at the service (it is revoked there).
    pub async fn sign_out(&self) -> Result<(), AgentError> {
        let token = self.token().await?;
        let request = self.http.delete(self.endpoint.url("/v1/me/device")?);
        let (status, _) = call(request.bearer_auth(token)).await?;
        match status {
            s if s.is_success() => Ok(()),
            reqwest::StatusCode::UNAUTHORIZED => Err(AgentError::SignedOut),
            s => Err(AgentError::Network(format!("the service answered {s}"))),
        }
    }

    /// Subscribes this device to `host` (or renews the subscription: same UNSID).
    pub async fn subscribe(&self, host: &str) -> Result<Subscription, AgentError> {
        let body = serde_json::json!({"targetHostName": host});
        let answer = self.post_json("/v1/me/subscriptions", &body).await?;
        serde_json::from_value(answer)
            .map_err(|e| AgentError::Network(format!("an unexpected subscription answer: {e}")))
    }

    /// Posts a note to all of this user's devices (`POST /v1/me/notifications`).
    pub async fn send_note(&self, body: serde_json::Value) -> Result<Notification, AgentError> {
        let answer = self.post_json("/v1/me/notifications", &body).await?;
        serde_json::from_value(answer)
            .map_err(|e| AgentError::Network(format!("an unexpected notification answer: {e}")))
    }

    /// POSTs `body` as this device; a 4xx answer is refused with the service's message.
    async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, AgentError> {
        let token = self.token().await?;
        let request = self
            .http
            .post(self.endpoint.url(path)?)
            .bearer_auth(token)
            .json(body);
        let (status, answer) = call(request).await?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            self.forget_token().await;
            return Err(AgentError::TokenRejected);
        }
        if status.is_client_error() {
            let message = answer["error"]["message"].as_str().unwrap_or("refused");
            return Err(AgentError::Refused(message.to_owned()));
        }
        if !status.is_success() {
            return Err(AgentError::Network(format!(
                "the service answered {status}"
            )));
        }
        Ok(answer)
    }
}

/// Renews the access token with the device's refresh token; returns it and the refresh
/// token that replaces the one given, if the service rotated it.
pub async fn access_token(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    refresh_token: &str,
) -> Result<(String, Option<String>), AgentError> {
    let request = http.post(endpoint.token_url()?).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ]);
    let (status, body) = call(request).await?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(AgentError::SignedOut);
    }
    if !status.is_success() {
        return Err(AgentError::Network(format!(
            "token endpoint answered {status}: {body}"
        )));
    }
    let answer: TokenResponse = serde_json::from_value(body)
        .map_err(|e| AgentError::Network(format!("an unexpected token answer: {e}")))?;
    Ok((answer.access_token, answer.refresh_token))
}

/// Signs a device in with the password grant; returns the token answer. When the
/// endpoint lists several nodes, one that cannot be reached or is unavailable (`503`)
/// passes the sign-in to the next; the error is the last node's.
pub async fn sign_in(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    form: &[(&str, &str)],
) -> Result<TokenResponse, AgentError> {
    let mut left = endpoint.nodes();
    loop {
        match sign_in_once(http, endpoint, form).await {
            Err(e) if e.is_retryable() && left > 1 && endpoint.fail_over() => {
                tracing::warn!("sign-in: {e}; trying the next node, {}", endpoint.base());
                left -= 1;
            }
            answer => return answer,
        }
    }
}

/// One sign-in at the endpoint's current node.
async fn sign_in_once(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    form: &[(&str, &str)],
) -> Result<TokenResponse, AgentError> {
    let (status, body) = call(http.post(endpoint.token_url()?).form(form)).await?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(AgentError::Config(
            "the service refused the user name or password".to_owned(),
        ));
    }
    if !status.is_success() {
        let message = body["error"]["message"]
            .as_str()
            .unwrap_or("no reason given");
        let failed = format!(
            "sign-in failed at {} ({status}): {message}",
            endpoint.base()
        );
        return Err(if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            AgentError::Network(failed)
        } else {
            AgentError::Config(failed)
        });
    }
    serde_json::from_value(body)
        .map_err(|e| AgentError::Network(format!("an unexpected sign-in answer: {e}")))
}

/// Sends a request and reads its answer: the status, and the body as JSON (`null` when
/// it is not JSON, so the status still decides). Transport failures are retryable.
async fn call(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, serde_json::Value), AgentError> {
    let response = request
        .send()
        .await
        .map_err(|e| AgentError::Network(format!("reaching the service: {}", describe(&e))))?;
    let status = response.status();
    let bytes = read_bounded(response).await?;
    let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    Ok((status, body))
}

/// The largest answer read from the service's REST API (its answers are a few KiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Reads an answer's body, refusing one over [`MAX_ANSWER_BYTES`].
async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, AgentError> {
    let too_large = || {
        AgentError::Network(format!(
            "the service's answer is larger than {MAX_ANSWER_BYTES} bytes; refused"
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        AgentError::Network(format!("reading the service's answer: {}", describe(&e)))
    })? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}
