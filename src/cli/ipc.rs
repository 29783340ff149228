//! The commands that talk to the running agent over its IPC socket: `status`,
//! `history`, `show`, `read`, `unread`, `dismiss`, `delete`, `subscribe`, `send`
//! (to my devices) and `watch`. Exit code 3 when the agent is not running.

use anyhow::anyhow;
use serde_json::{Value, json};

use crate::config;
use crate::ipc::{Client, ClientError};
use crate::protocol::Timestamp;
use crate::protocol::local::{Event, Item, ListResult, StatusInfo, method};

use super::output::notes::{
    app_label, describe, describe_dnd, encryption_word, priority_word, row, state_word,
};
use super::output::{self, bold, colour, dim, relative};
use super::{Command, EXIT_NOT_RUNNING, Failure, HistoryArgs, IdsArgs, send};

/// Runs one of the agent commands.
pub async fn run(command: Command) -> Result<(), Failure> {
    let mut client = connect().await?;
    match command {
        Command::Status { out } => status(&mut client, out.json).await,
        Command::History(args) => history(&mut client, &args).await,
        Command::Show { id, out } => show(&mut client, &id, out.json).await,
        Command::Read(args) => change(&mut client, method::MARK_READ, args, "read").await,
        Command::Unread(args) => change(&mut client, method::MARK_UNREAD, args, "unread").await,
        Command::Dismiss(args) => change(&mut client, method::DISMISS, args, "dismissed").await,
        Command::Delete(args) => change(&mut client, method::DELETE, args, "deleted").await,
        Command::Subscribe { hostname, out } => subscribe(&mut client, &hostname, out.json).await,
        Command::Send(args) => {
            if args.host.is_some() {
                return Err(anyhow!(
                    "--host is for sending as an app backend (with --service); a note to your own devices has no host"
                )
                .into());
            }
            let created = client.call(method::SEND, send::body(&args)?).await?;
            send::print_created(&created, args.out.json)
        }
        Command::Watch { app, out } => watch(&mut client, app, out.json).await,
        Command::Dnd { state, time, out } => {
            dnd(&mut client, state.as_deref(), time.as_deref(), out.json).await
        }
        other => Err(anyhow!("{other:?} does not talk to the agent").into()),
    }
}

/// Connects to the agent, or says how to start it (exit code 3).
async fn connect() -> Result<Client, Failure> {
    let socket = config::agent_socket()?;
    Client::connect(&socket).await.map_err(|e| match e {
        ClientError::NotRunning { .. } => Failure {
            code: EXIT_NOT_RUNNING,
            error: anyhow!(
                "the tidings agent is not running (nothing listens on {}); start it with `tidings agent`",
                socket.display(),
            ),
        },
        other => other.into(),
    })
}

async fn status(client: &mut Client, json: bool) -> Result<(), Failure> {
    let value = client.call(method::STATUS, json!({})).await?;
    if json {
        output::json(&value)?;
        return Ok(());
    }
    let info: StatusInfo = serde_json::from_value(value)?;
    let state = serde_json::to_value(info.state)?;
    let now = Timestamp::now();
    let mut rows = vec![
        ("state", state.as_str().unwrap_or("?").to_owned()),
        ("service", info.service),
        ("user", info.user),
        ("device", info.device_id),
        ("cursor", info.cursor.0.to_string()),
        ("last sync", relative(info.last_sync_at, now)),
        ("unread", info.unread.to_string()),
        ("total", info.total.to_string()),
        ("pending", info.pending_updates.to_string()),
        ("toasts", info.toasts),
        ("dnd", describe_dnd(info.do_not_disturb)),
        ("version", info.version),
    ];
    if info.undecryptable > 0 {
        let said = format!(
            "{} encrypted for this device but could not be opened (see the agent's log)",
            info.undecryptable
        );
        rows.push(("unreadable", said));
    }
    for (name, value) in rows {
        output::line(&format!("{name:<10} {value}"))?;
    }
    Ok(())
}

async fn history(client: &mut Client, args: &HistoryArgs) -> Result<(), Failure> {
    let mut params = json!({"limit": args.limit, "unreadOnly": args.unread});
    if let Some(app) = &args.app {
        params["app"] = json!(app);
    }
    let page = list_pages(client, params, args.limit).await?;
    if args.out.json {
        output::json(&page)?;
        return Ok(());
    }
    if page.items.is_empty() {
        output::line("no notifications")?;
        return Ok(());
    }
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = page.items.iter().map(|item| row(item, now)).collect();
    let lines = output::layout(&["ID", "WHEN", "APP", "STATE", "TITLE"], &rows);
    let paint = colour();
    for (i, line) in lines.iter().enumerate() {
        let unread = i > 0 && page.items[i - 1].notification.state.is_unread();
        let text = match (i, unread) {
            (0, _) => dim(line, paint),
            (_, true) => bold(line, paint),
            _ => line.clone(),
        };
        output::styled_line(&text)?;
    }
    Ok(())
}

/// Up to `limit` items of `list`, paging on while the agent ends a page early (it
/// caps each answer's bytes, so large notifications come in several pages).
async fn list_pages(
    client: &mut Client,
    mut params: serde_json::Value,
    limit: usize,
) -> Result<ListResult, Failure> {
    let mut all = ListResult {
        items: Vec::new(),
        next: None,
    };
    loop {
        params["limit"] = json!(limit - all.items.len());
        let page: ListResult =
            serde_json::from_value(client.call(method::LIST, params.clone()).await?)?;
        let ended = page.items.is_empty();
        all.items.extend(page.items);
        all.next = page.next;
        match all.next {
            Some(before) if !ended && all.items.len() < limit => params["before"] = json!(before),
            _ => return Ok(all),
        }
    }
}

async fn show(client: &mut Client, id: &str, json: bool) -> Result<(), Failure> {
    let value = client.call(method::GET, json!({"id": id})).await?;
    if json {
        output::json(&value)?;
        return Ok(());
    }
    let item: Item = serde_json::from_value(value)?;
    let n = &item.notification;
    let now = Timestamp::now();
    let visual = n.content.payload.visual_content.as_ref();
    let rows = [
        ("id", n.id.to_string()),
        ("app", app_label(&n.content.target_host_name).to_owned()),
        ("title", visual.map(|v| v.title.clone()).unwrap_or_default()),
        (
            "body",
            visual.and_then(|v| v.body.clone()).unwrap_or_default(),
        ),
        (
            "raw",
            n.content.payload.raw_content.clone().unwrap_or_default(),
        ),
        ("encrypted", encryption_word(n)),
        ("state", state_word(n).to_owned()),
        ("priority", priority_word(n.content.priority).to_owned()),
        (
            "created",
            format!(
                "{} ({})",
                n.created_date_time,
                relative(Some(n.created_date_time), now)
            ),
        ),
        ("expires", n.content.expiration_date_time.to_string()),
        ("group", n.content.group_name.clone().unwrap_or_default()),
        (
            "app id",
            n.content.app_notification_id.clone().unwrap_or_default(),
        ),
    ];
    for (name, value) in rows.iter().filter(|(_, v)| !v.is_empty()) {
        output::line(&format!("{name:<10} {value}"))?;
    }
    Ok(())
}

async fn change(
    client: &mut Client,
    method: &str,
    args: IdsArgs,
    done: &str,
) -> Result<(), Failure> {
    let asked = args.ids.len();
    let value = client.call(method, json!({"ids": args.ids})).await?;
    if args.out.json {
        output::json(&value)?;
        return Ok(());
    }
    let updated = value["updated"].as_u64().unwrap_or(0);
    output::line(&format!("{done}: {updated} of {asked}"))?;
    if updated < asked as u64 {
        return Err(anyhow!(
            "{} of the ids are not stored here (see `tidings history`)",
            asked as u64 - updated
        )
        .into());
    }
    Ok(())
}

async fn subscribe(client: &mut Client, host: &str, json: bool) -> Result<(), Failure> {
    let value = client
        .call(method::SUBSCRIBE, json!({"targetHostName": host}))
        .await?;
    if json {
        output::json(&value)?;
    } else {
        output::line(value["unsid"].as_str().unwrap_or_default())?;
    }
    Ok(())
}

async fn watch(client: &mut Client, app: Option<String>, json: bool) -> Result<(), Failure> {
    let params = app.map_or_else(|| json!({}), |app| json!({"app": app}));
    client.call(method::WATCH, params).await?;
    // On stderr, so `--json` output stays pure; scripts may wait for this line.
    eprintln!("watching for notifications (Ctrl-C to stop)");
    while let Some(pushed) = client.next_notification().await? {
        if pushed.method != method::EVENT {
            continue;
        }
        let params = pushed.params.unwrap_or(Value::Null);
        if json {
            output::json_line(&params)?;
            continue;
        }
        let event: Event = serde_json::from_value(params)?;
        output::line(&describe(&event))?;
    }
    Err(anyhow!("the agent closed the connection (stopped?)").into())
}

async fn dnd(
    client: &mut Client,
    state: Option<&str>,
    time: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    let params = match (state, time) {
        (None, None) => json!({}),
        (Some("on"), None) => json!({"on": true}),
        (Some("off"), None) => json!({"on": false}),
        (Some("until"), Some(time)) => json!({"on": true, "until": parse_until(time)?}),
        (Some("until"), None) => {
            return Err(usage(
                "`tidings dnd until` needs a time: RFC 3339, or 30m / 2h / 1d",
            ));
        }
        _ => return Err(usage("a time goes only with `tidings dnd until TIME`")),
    };
    let value = client.call(method::DND, params).await?;
    if json {
        output::json(&value)?;
    } else {
        output::line(&format!(
            "do not disturb: {}",
            describe_dnd(serde_json::from_value(value)?)
        ))?;
    }
    Ok(())
}

/// A usage error (exit code 2).
fn usage(message: &str) -> Failure {
    Failure {
        code: 2,
        error: anyhow!("{message}"),
    }
}

/// `TIME` of `dnd until TIME`: RFC 3339, or a duration from now (`90s`, `30m`, `2h`, `1d`).
fn parse_until(text: &str) -> Result<Timestamp, Failure> {
    if let Ok(at) = Timestamp::parse_rfc3339(text) {
        return Ok(at);
    }
    let unit = match text.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3600,
        Some('d') => 86_400,
        _ => 0,
    };
    let amount: Option<u64> = text
        .get(..text.len().saturating_sub(1))
        .and_then(|n| n.parse().ok());
    match amount.filter(|n| *n > 0 && unit > 0) {
        Some(n) => Ok(Timestamp::now().plus(std::time::Duration::from_secs(n * unit))),
        None => Err(usage(&format!(
            "{text:?} is not a time: use RFC 3339 (2026-12-24T18:00:00Z) or 30m / 2h / 1d"
        ))),
    }
}
