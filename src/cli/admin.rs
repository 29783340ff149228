//! `tidings admin`: users, apps and devices of a running service, over its admin socket.

use anyhow::anyhow;
use serde_json::{Value, json};

use crate::config;
use crate::ipc::{Client, ClientError};
use crate::protocol::Timestamp;
use crate::service::admin::DeviceInfo;

use super::output::{line, relative, table};
use super::{
    AdminArgs, AdminCommand, AppCommand, DeviceCommand, EXIT_NOT_RUNNING, Failure, UserCommand,
};

/// Runs an admin command.
pub async fn run(args: AdminArgs, config: Option<&std::path::Path>) -> Result<(), Failure> {
    let mut flags = std::collections::BTreeMap::new();
    if let Some(dir) = &args.data_dir {
        flags.insert("data_dir", dir.display().to_string());
    }
    let file = super::settings::file(config)?;
    let effective = config::resolve(config::Table::Service, &flags, &file)?;
    let data_dir = super::settings::service_data_dir(&effective)?;
    let socket = crate::service::admin::socket_path(&data_dir);
    let mut client = Client::connect(&socket).await.map_err(|e| match e {
        ClientError::NotRunning { .. } => Failure {
            code: EXIT_NOT_RUNNING,
            error: anyhow!(
                "the service is not running (no admin socket at {}); start it with `tidings service --data-dir {}`, or run `tidings agent` for the local one",
                socket.display(),
                data_dir.display()
            ),
        },
        other => other.into(),
    })?;
    let (method, params) = request(&args.command)?;
    let mut result = client.call(method, params).await?;
    if let AdminCommand::Backup { file } = &args.command {
        let made = std::path::PathBuf::from(text(&result, "path"));
        move_file(&made, file).map_err(|e| {
            e.context(format!(
                "the backup was made and is kept at {}",
                made.display()
            ))
        })?;
        result["path"] = json!(file);
    }
    if args.json {
        super::output::json(&result)?;
        return Ok(());
    }
    print_human(&args.command, &result)?;
    Ok(())
}

fn request(command: &AdminCommand) -> anyhow::Result<(&'static str, Value)> {
    Ok(match command {
        AdminCommand::User(
            command @ (UserCommand::Add {
                name,
                password_stdin,
            }
            | UserCommand::Passwd {
                name,
                password_stdin,
            }),
        ) => {
            let mut params = json!({"name": name});
            if *password_stdin {
                params["password"] =
                    Value::String(super::input::secret_line("password", "--password-stdin")?);
            }
            let method = if matches!(command, UserCommand::Add { .. }) {
                "user.add"
            } else {
                "user.passwd"
            };
            (method, params)
        }
        AdminCommand::User(UserCommand::List) => ("user.list", json!({})),
        AdminCommand::User(UserCommand::Remove { name }) => ("user.remove", json!({"name": name})),
        AdminCommand::App(AppCommand::Add { hostname, another }) => {
            ("app.add", json!({"hostname": hostname, "another": another}))
        }
        AdminCommand::App(AppCommand::List) => ("app.list", json!({})),
        AdminCommand::Device(DeviceCommand::List) => ("device.list", json!({})),
        AdminCommand::Device(DeviceCommand::Revoke { id }) => ("device.revoke", json!({"id": id})),
        AdminCommand::Backup { file } => {
            // A dangling symlink counts: the backup is never written through a link.
            if file.symlink_metadata().is_ok() {
                anyhow::bail!(
                    "{} exists; a backup is written to a new file",
                    file.display()
                );
            }
            ("backup.create", json!({}))
        }
    })
}

/// "1 device", "2 devices": the count at `key` with its noun.
fn counted(value: &Value, key: &str, noun: &str) -> String {
    let n = value[key].as_u64().unwrap_or(0);
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn text(value: &Value, key: &str) -> String {
    match &value[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn print_human(command: &AdminCommand, result: &Value) -> anyhow::Result<()> {
    let rows = |keys: &[&str]| -> Vec<Vec<String>> {
        result.as_array().map_or_else(Vec::new, |items| {
            items
                .iter()
                .map(|item| keys.iter().map(|k| text(item, k)).collect())
                .collect()
        })
    };
    match command {
        AdminCommand::User(command @ (UserCommand::Add { .. } | UserCommand::Passwd { .. })) => {
            let done = if matches!(command, UserCommand::Add { .. }) {
                "added user"
            } else {
                "new password for"
            };
            line(&format!(
                "{done} {} ({})",
                text(result, "name"),
                text(result, "id")
            ))?;
            if result.get("password").is_some() {
                line(&format!("password: {}", text(result, "password")))?;
                line(&format!(
                    "(shown once; a device signs in with it through the password grant of POST /oauth2/v2.0/token, as user {})",
                    text(result, "name")
                ))?;
            }
        }
        AdminCommand::App(AppCommand::Add { .. }) => {
            line(&format!("added app for {}", text(result, "hostname")))?;
            line(&format!("client id:     {}", text(result, "clientId")))?;
            line(&format!("client secret: {}", text(result, "clientSecret")))?;
            line("(the secret is shown once; keep it in the app backend's configuration)")?;
        }
        AdminCommand::User(UserCommand::Remove { name }) => line(&format!(
            "removed user {name}: {} and {} deleted",
            counted(result, "notifications", "notification"),
            counted(result, "devices", "device")
        ))?,
        AdminCommand::User(UserCommand::List) => table(
            &["NAME", "ID", "DEVICES"],
            &rows(&["name", "id", "devices"]),
        )?,
        AdminCommand::App(AppCommand::List) => {
            table(&["HOSTNAME", "CLIENT ID"], &rows(&["hostname", "clientId"]))?;
        }
        AdminCommand::Device(DeviceCommand::List) => print_devices(result)?,
        AdminCommand::Device(DeviceCommand::Revoke { id }) => {
            line(&format!("revoked device {id}"))?;
        }
        AdminCommand::Backup { file } => line(&format!(
            "backed up {} entries of {} trees ({} bytes) to {} in {} ms; restore with `tidings service --restore {} --data-dir EMPTY_DIR`",
            text(result, "entries"),
            text(result, "trees"),
            text(result, "bytes"),
            file.display(),
            text(result, "tookMs"),
            file.display()
        ))?,
    }
    Ok(())
}

/// Moves the backup the service made in its data directory to `to`, which must not
/// exist (not even as a dangling symlink): a hard link where both are on one file
/// system, else a copy into a file created new, never through a link (`O_EXCL` with
/// `O_CREAT` does not follow one), mode 0600 and synced before the original goes.
fn move_file(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context;
    let taken = || format!("{} exists; a backup is written to a new file", to.display());
    match std::fs::hard_link(from, to) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(taken()),
        Err(_) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut out = match options.open(to) {
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(taken()),
                opened => opened.with_context(|| format!("creating {}", to.display()))?,
            };
            let copied = std::fs::File::open(from)
                .and_then(|mut input| std::io::copy(&mut input, &mut out))
                .and_then(|_| out.sync_all());
            if let Err(e) = copied {
                let _ = std::fs::remove_file(to);
                return Err(e).with_context(|| {
                    format!("copying the backup {} to {}", from.display(), to.display())
                });
            }
        }
    }
    std::fs::remove_file(from).with_context(|| format!("removing {}", from.display()))?;
    Ok(())
}

fn print_devices(result: &Value) -> anyhow::Result<()> {
    let devices: Vec<DeviceInfo> = serde_json::from_value(result.clone())?;
    let now = Timestamp::now();
    let rows: Vec<Vec<String>> = devices
        .iter()
        .map(|d| {
            let state = if d.revoked {
                "revoked"
            } else if d.connected {
                "connected"
            } else {
                "offline"
            };
            vec![
                d.id.to_string(),
                d.user.clone(),
                d.name.clone(),
                d.platform.to_string(),
                d.acked_seq.to_string(),
                state.to_owned(),
                relative(d.last_seen_date_time, now),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "USER",
            "NAME",
            "PLATFORM",
            "ACKED",
            "STATE",
            "LAST SEEN",
        ],
        &rows,
    )?;
    Ok(())
}
