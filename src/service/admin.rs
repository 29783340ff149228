//! The admin socket (`<data-dir>/admin.sock`, mode 0600): JSON-RPC methods to add and
//! list users and apps, list devices and revoke them. `tidings admin` is its client.
//!
//! | method | params | result |
//! |---|---|---|
//! | `user.add` | `{name, password?}` | `{id, name, password?}` (a generated password is returned once) |
//! | `user.passwd` | `{name, password?}` | `{id, name, password?}` (sets a new password; signed-in devices stay signed in) |
//! | `user.list` | | `[{id, name, createdDateTime, devices}]` |
//! | `user.remove` | `{name}` | `{id, name, notifications, devices}`: the user's devices are revoked (channels closed), then the user, their notifications, devices and subscriptions deleted |
//! | `app.add` | `{hostname, another?}` | `{clientId, clientSecret, hostname}` (the secret is shown once); a host with a credential is refused unless `another` |
//! | `app.list` | | `[{clientId, hostname, createdDateTime}]` |
//! | `device.list` | | `[{id, user, name, platform, ackedSeq, connected, lastSeenDateTime, revoked}]` |
//! | `device.revoke` | `{id}` | `{id, revoked: true}` |
//! | `backup.create` | | `{path, trees, entries, bytes, tookMs}`: a consistent copy of the store, written to `path` in the data directory (the caller moves it where it wants it) |

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ipc::codec::{INTERNAL_ERROR, METHOD_NOT_FOUND};
use crate::ipc::{Handler, Peer, Reply, Request, RpcError};
use crate::protocol::local::codes::{CONFLICT, NOT_FOUND};
use crate::protocol::validate::{LOCAL_HOST_NAME, validate_host_name};
use crate::protocol::{ClientId, DeviceId, Platform, Seq, Timestamp, UserId};

use super::auth;
use super::store::{AppRecord, StoreError, UserRecord};
use super::{ServiceError, Settings, State};

/// Longest user name.
const MAX_USER_NAME_CHARS: usize = 64;

/// A device as `device.list` shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceInfo {
    /// Device id.
    pub id: DeviceId,
    /// The user's name.
    pub user: String,
    /// The device's name.
    pub name: String,
    /// Its platform.
    pub platform: Platform,
    /// The highest `seq` it acknowledged.
    pub acked_seq: Seq,
    /// Whether its channel is open now.
    pub connected: bool,
    /// When it last talked to the service.
    pub last_seen_date_time: Option<Timestamp>,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// The admin handler.
pub struct Admin {
    state: State,
}

/// The admin socket of the service storing in `data_dir`: `<data_dir>/admin.sock`; on
/// Windows the pipe `\\.\pipe\tidings-admin-<hash of data_dir>`.
pub fn socket_path(data_dir: &std::path::Path) -> std::path::PathBuf {
    #[cfg(windows)]
    {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(data_dir.to_string_lossy().as_bytes());
        let tag: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        std::path::PathBuf::from(format!(r"\\.\pipe\tidings-admin-{tag}"))
    }
    #[cfg(not(windows))]
    data_dir.join("admin.sock")
}

/// Binds the admin socket.
pub async fn bind(settings: &Settings) -> Result<crate::ipc::Server, ServiceError> {
    let path = settings.admin_socket_path();
    crate::ipc::Server::bind(&path, crate::ipc::ServerOptions::default())
        .await
        .map_err(|source| ServiceError::Io {
            what: format!("binding the admin socket {}", path.display()),
            source,
        })
}

/// Serves the admin socket until shutdown.
pub async fn serve(server: crate::ipc::Server, state: State) {
    let shutdown = state.shutdown.clone();
    server.serve(Arc::new(Admin { state }), shutdown).await;
}

fn params<T: for<'de> Deserialize<'de>>(request: &Request) -> Result<T, RpcError> {
    serde_json::from_value(request.params.clone().unwrap_or(json!({})))
        .map_err(RpcError::invalid_params)
}

fn store_error(err: StoreError) -> RpcError {
    match err {
        StoreError::Conflict(message) => RpcError::new(CONFLICT, message),
        other => RpcError::new(INTERNAL_ERROR, other.to_string()),
    }
}

fn to_value(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

impl Handler for Admin {
    async fn call(&self, request: Request, _peer: &Peer) -> Result<Reply, RpcError> {
        self.answer(&request).await.map(Reply::from)
    }
}

impl Admin {
    /// The answer to `request`.
    async fn answer(&self, request: &Request) -> Result<Value, RpcError> {
        match request.method.as_str() {
            "user.add" => self.user_add(params(request)?).await,
            "user.passwd" => self.user_passwd(params(request)?).await,
            "user.list" => self.user_list().await,
            "user.remove" => self.user_remove(params(request)?).await,
            "app.add" => self.app_add(params(request)?).await,
            "app.list" => self.app_list().await,
            "device.list" => to_value(self.device_list().await?),
            "device.revoke" => self.device_revoke(params(request)?).await,
            "backup.create" => self.backup().await,
            other => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("unknown method {other:?}"),
            )),
        }
    }
}

/// The password given (not empty), or a generated one; with its hash and whether it
/// was generated (then it is shown once).
async fn new_password(
    passwords: &crate::service::signin::PasswordPool,
    given: Option<String>,
) -> Result<(String, String, bool), RpcError> {
    let generated = given.is_none();
    let password = match given {
        Some(p) if p.is_empty() => {
            return Err(RpcError::invalid_params("the password is empty"));
        }
        Some(p) => p,
        None => auth::random_id().map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?,
    };
    let hash = passwords
        .hash(password.clone())
        .await
        .map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?
        .map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?;
    Ok((password, hash, generated))
}

/// The parameters of `user.add` and `user.passwd`.
#[derive(Deserialize)]
struct UserAdd {
    name: String,
    password: Option<String>,
}

#[derive(Deserialize)]
struct AppAdd {
    hostname: String,
    /// Adds another credential for a host that has one (key rotation, a second backend).
    #[serde(default)]
    another: bool,
}

#[derive(Deserialize)]
struct UserRemove {
    name: String,
}

#[derive(Deserialize)]
struct DeviceRevoke {
    id: DeviceId,
}

impl Admin {
    /// Copies the store into `<data_dir>/backup-<time>.tidings-backup` (off the async
    /// runtime: writes wait for it, reads do not).
    async fn backup(&self) -> Result<Value, RpcError> {
        let dir = self.state.settings.data_dir.clone();
        let stamp = Timestamp::now().as_millis();
        let partial = dir.join(format!("backup-{stamp}.partial"));
        let done = dir.join(format!("backup-{stamp}.tidings-backup"));
        let state = self.state.clone();
        let started = std::time::Instant::now();
        let writing = partial.clone();
        let made = tokio::task::spawn_blocking(move || match state.store.as_sled() {
            Some(sled) => sled.backup(&writing),
            None => Err(StoreError::Backup(format!(
                "this service keeps its data in {}: back it up with pg_dump (docs/nodes.md)",
                state.store.describe()
            ))),
        })
        .await
        .map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?;
        let summary = match made {
            Ok(summary) => summary,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(store_error(e));
            }
        };
        std::fs::rename(&partial, &done)
            .map_err(|e| RpcError::new(INTERNAL_ERROR, format!("naming the backup: {e}")))?;
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(path = %done.display(), entries = summary.entries, took_ms = took, "backup made");
        let mut result = to_value(summary)?;
        result["path"] = json!(done);
        result["tookMs"] = json!(took);
        Ok(result)
    }

    async fn user_add(&self, params: UserAdd) -> Result<Value, RpcError> {
        let name = params.name.trim().to_owned();
        let count = name.chars().count();
        if count == 0
            || count > MAX_USER_NAME_CHARS
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(RpcError::invalid_params(format!(
                "name must be 1 to {MAX_USER_NAME_CHARS} characters without spaces"
            )));
        }
        let (password, hash, generated) =
            new_password(&self.state.passwords, params.password).await?;
        let user = UserRecord {
            id: UserId::random(),
            name,
            password_hash: hash,
            created: Timestamp::now(),
        };
        let user = self.state.store.add_user(user).await.map_err(store_error)?;
        let mut result = json!({"id": user.id, "name": user.name});
        if generated {
            result["password"] = Value::String(password);
        }
        Ok(result)
    }

    async fn user_passwd(&self, params: UserAdd) -> Result<Value, RpcError> {
        let (password, hash, generated) =
            new_password(&self.state.passwords, params.password).await?;
        let user = self
            .state
            .store
            .set_password(params.name.trim(), hash)
            .await
            .map_err(store_error)?
            .ok_or_else(|| RpcError::new(NOT_FOUND, format!("no user {:?}", params.name)))?;
        tracing::info!(user = %user.name, "password changed");
        let mut result = json!({"id": user.id, "name": user.name});
        if generated {
            result["password"] = Value::String(password);
        }
        Ok(result)
    }

    async fn user_remove(&self, params: UserRemove) -> Result<Value, RpcError> {
        let user = self
            .state
            .remove_user(params.name.trim())
            .await
            .map_err(store_error)?
            .ok_or_else(|| RpcError::new(NOT_FOUND, format!("no user {:?}", params.name)))?;
        let (user, removed) = user;
        tracing::info!(user = %user.name, notifications = removed.notifications, devices = removed.devices, "user removed");
        Ok(json!({
            "id": user.id,
            "name": user.name,
            "notifications": removed.notifications,
            "devices": removed.devices,
        }))
    }

    async fn user_list(&self) -> Result<Value, RpcError> {
        let devices = self.state.store.devices().await.map_err(store_error)?;
        let users = self.state.store.users().await.map_err(store_error)?;
        let list: Vec<Value> = users
            .into_iter()
            .map(|u| {
                let count = devices
                    .iter()
                    .filter(|d| d.user == u.id && !d.revoked)
                    .count();
                json!({"id": u.id, "name": u.name, "createdDateTime": u.created, "devices": count})
            })
            .collect();
        Ok(Value::Array(list))
    }

    async fn app_add(&self, params: AppAdd) -> Result<Value, RpcError> {
        let host =
            validate_host_name("hostname", &params.hostname).map_err(RpcError::invalid_params)?;
        if host == LOCAL_HOST_NAME {
            return Err(RpcError::invalid_params(
                "localhost is reserved for a user's notes to their own devices",
            ));
        }
        if !params.another {
            let apps = self.state.store.apps().await.map_err(store_error)?;
            if let Some(existing) = apps.iter().find(|a| a.host == host) {
                return Err(RpcError::new(
                    CONFLICT,
                    format!(
                        "{host} already has a credential (client id {}); add another with --another (e.g. to rotate keys), or see `tidings admin app list`",
                        existing.client_id
                    ),
                ));
            }
        }
        let (secret, secret_hash) =
            auth::new_secret().map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))?;
        let app = AppRecord {
            client_id: ClientId::random(),
            host,
            secret_hash,
            created: Timestamp::now(),
        };
        let app = self.state.store.add_app(app).await.map_err(store_error)?;
        Ok(json!({"clientId": app.client_id, "clientSecret": secret, "hostname": app.host}))
    }

    async fn app_list(&self) -> Result<Value, RpcError> {
        let apps = self.state.store.apps().await.map_err(store_error)?;
        Ok(Value::Array(
            apps.into_iter()
                .map(|a| json!({"clientId": a.client_id, "hostname": a.host, "createdDateTime": a.created}))
                .collect(),
        ))
    }

    /// Every device with its user's name and whether it is connected now.
    pub async fn device_list(&self) -> Result<Vec<DeviceInfo>, RpcError> {
        let store = &self.state.store;
        let devices = store.devices().await.map_err(store_error)?;
        let mut out = Vec::with_capacity(devices.len());
        for d in devices {
            let user = store
                .user_by_id(&d.user)
                .await
                .map_err(store_error)?
                .map_or_else(|| d.user.to_string(), |u| u.name);
            out.push(DeviceInfo {
                connected: self.state.hub.is_connected(&d.id),
                id: d.id,
                user,
                name: d.name,
                platform: d.platform,
                acked_seq: d.acked_seq,
                last_seen_date_time: d.last_seen,
                revoked: d.revoked,
            });
        }
        Ok(out)
    }

    async fn device_revoke(&self, params: DeviceRevoke) -> Result<Value, RpcError> {
        let revoked = self
            .state
            .revoke_device(&params.id)
            .await
            .map_err(store_error)?;
        if revoked.is_none() {
            return Err(RpcError::new(NOT_FOUND, format!("no device {}", params.id)));
        }
        tracing::info!(device = %params.id, "device revoked");
        Ok(json!({"id": params.id, "revoked": true}))
    }
}
