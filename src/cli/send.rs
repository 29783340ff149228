//! `tidings send`: the notification body from the flags, and the app-backend mode
//! (`--service --unsid --client-id --client-secret-stdin`), which does exactly what any
//! backend does: the client-credentials grant, then `POST /beta/me/notifications` with
//! the `X-UNS-ID` header. (Through the agent, `send` is an IPC call in `local`.)

use anyhow::{Context, anyhow, bail};
use serde_json::{Map, Value, json};

use crate::agent::endpoint::Endpoint;
use crate::agent::{api, tls};
use crate::protocol::Notification;
use crate::protocol::rest::TokenResponse;
use crate::protocol::sealed::PublicKeys;

use super::output;
use super::{Failure, PriorityArg, SendArgs};

/// The notification's JSON body (`targetHostName` only when `--host` gave one: a note
/// through the agent has none); with `--encrypt-for`, its content encrypted for each
/// device named.
pub fn body(args: &SendArgs) -> Result<Value, Failure> {
    let mut visual = json!({"title": args.title});
    if let Some(text) = &args.body {
        visual["body"] = json!(text);
    }
    let mut payload = json!({"visualContent": visual});
    if let Some(raw) = &args.raw {
        payload["rawContent"] = json!(raw);
    }
    if !args.encrypt_for.is_empty() {
        payload = json!({"encryptedContent": sealed(&payload, args)?});
    }
    let mut body = Map::new();
    body.insert("payload".to_owned(), payload);
    let priority = match args.priority {
        PriorityArg::Low => "Low",
        PriorityArg::Normal => "None",
        PriorityArg::High => "High",
    };
    body.insert("priority".to_owned(), json!(priority));
    let optional = [
        ("targetHostName", args.host.clone().map(Value::from)),
        ("appNotificationId", args.app_id.clone().map(Value::from)),
        ("groupName", args.group.clone().map(Value::from)),
        ("displayTimeToLive", args.ttl.map(Value::from)),
        ("expirationDateTime", args.expires.clone().map(Value::from)),
    ];
    for (name, value) in optional {
        if let Some(value) = value {
            body.insert(name.to_owned(), value);
        }
    }
    Ok(Value::Object(body))
}

/// One `encryptedContent` entry per `--encrypt-for`: `cleartext` encrypted as a Web
/// Push sender does, for the keys given.
fn sealed(cleartext: &Value, args: &SendArgs) -> Result<Vec<Value>, Failure> {
    let text = cleartext.to_string();
    args.encrypt_for
        .iter()
        .map(|target| {
            // `UNSID=` comes first when given; a padded key holds `=` too, so the
            // split is taken only when what follows it reads as keys.
            let prefixed = target
                .split_once('=')
                .and_then(|(unsid, pair)| Some((unsid, PublicKeys::parse_pair(pair).ok()?)));
            let (unsid, keys) = match prefixed {
                Some(found) => found,
                None => (
                    args.unsid.as_deref().unwrap_or_default(),
                    PublicKeys::parse_pair(target)
                        .map_err(|e| anyhow!("--encrypt-for {target}: {e}"))?,
                ),
            };
            let content = keys
                .seal(text.as_bytes())
                .map_err(|e| anyhow!("--encrypt-for {target}: {e}"))?;
            Ok(json!({"unsid": unsid, "content": content}))
        })
        .collect()
}

/// The URL of the service a local-mode agent runs, from the file it writes.
fn local_service_url() -> Result<String, Failure> {
    let file = crate::config::local_service_url_file()?;
    let text = std::fs::read_to_string(&file).map_err(|e| Failure {
        code: super::EXIT_NOT_RUNNING,
        error: anyhow!(
            "no --service given, and no local service to default to ({}: {e}); start `tidings agent` in local mode, or pass --service URL",
            file.display()
        ),
    })?;
    Ok(text.trim().to_owned())
}

/// Prints what `send` created.
pub fn print_created(created: &Value, json: bool) -> Result<(), Failure> {
    if json {
        output::json(created)?;
    } else {
        let id = created["id"].as_str().unwrap_or("?");
        output::line(&format!("sent {id}"))?;
    }
    Ok(())
}

/// `tidings send --unsid UNSID --client-id ID --client-secret-stdin --host HOST
/// [--service URL]`.
pub async fn as_backend(args: SendArgs) -> Result<(), Failure> {
    let (Some(unsid), Some(client_id)) = (&args.unsid, &args.client_id) else {
        return Err(anyhow!("--unsid needs --client-id, --client-secret-stdin and --host").into());
    };
    let service = match &args.service {
        Some(service) => service.clone(),
        None => local_service_url()?,
    };
    let endpoint = Endpoint::parse(&service).map_err(|e| anyhow!(e))?;
    let secret = super::input::secret_line("client secret", "--client-secret-stdin")?;
    let http =
        api::http_client(&tls::client_config(args.ca_file.as_deref()).map_err(|e| anyhow!(e))?)
            .map_err(|e| anyhow!(e))?;
    let token = app_token(&http, &endpoint, client_id, &secret).await?;
    let url = endpoint
        .url("/beta/me/notifications")
        .map_err(|e| anyhow!(e))?;
    let response = http
        .post(url)
        .bearer_auth(token)
        .header("X-UNS-ID", unsid)
        .json(&body(&args)?)
        .send()
        .await
        .with_context(|| format!("posting to {service}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(anyhow!(
            "the service refused the notification ({status}): {}",
            message(&answer)
        )
        .into());
    }
    let created: Notification = serde_json::from_value(answer.clone())
        .context("the service's answer is not a notification")?;
    tracing::debug!(id = %created.id, "sent as an app backend");
    print_created(&answer, args.out.json)
}

/// The client-credentials grant.
async fn app_token(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    client_id: &str,
    secret: &str,
) -> anyhow::Result<String> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ];
    let response = http
        .post(endpoint.token_url().map_err(|e| anyhow!(e))?)
        .form(&form)
        .send()
        .await
        .context("reaching the token endpoint")?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "the service refused the app's credentials ({status}): {}; check --client-id and the secret from `tidings admin app add`",
            message(&answer)
        );
    }
    let answer: TokenResponse =
        serde_json::from_value(answer).context("the token endpoint's answer")?;
    Ok(answer.access_token)
}

/// The message of a Graph or OAuth error body.
fn message(answer: &Value) -> String {
    answer["error"]["message"]
        .as_str()
        .or_else(|| answer["error_description"].as_str())
        .or_else(|| answer["error"].as_str())
        .unwrap_or("no reason given")
        .to_owned()
}
