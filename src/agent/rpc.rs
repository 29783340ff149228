//! The agent's local IPC handler: the methods of `docs/ipc.md` on top of an
//! [`AgentHandle`], served by `ipc::Server` on `$XDG_RUNTIME_DIR/tidings/agent.sock`.
//!
//! Params and results are the `protocol::local` types. State changes go through the
//! handle (local store at once, outbox to the service); `watch` forwards the handle's
//! events to the peer until it disconnects, on a task the server tracks with the
//! peer's connection.

use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::ipc::codec::{INTERNAL_ERROR, INVALID_PARAMS, METHOD_NOT_FOUND};
use crate::ipc::{Handler, Peer, Reply, Request, RpcError, Server, ServerOptions};
use crate::protocol::local::codes::{NOT_FOUND, NOT_SIGNED_IN};
use crate::protocol::local::{
    DEFAULT_LIST, DndParams, Event, EventKind, GetParams, IdsParams, Item, ListParams, ListResult,
    MAX_IDS, MAX_LIST, MAX_LIST_BYTES, StatusInfo, SubscribeParams, Updated, WatchParams, method,
};
use crate::protocol::sealed::DeviceKeys;
use crate::protocol::{
    NotificationId, ReadState, Status, Timestamp, UserActionState, validate::StatePatch,
};

use super::store::{AgentStoreError, Filter, LocalChange};
use super::{AgentError, AgentHandle};

/// Local apps served at once; one more is told the agent is busy.
pub const MAX_CLIENTS: usize = 256;

/// Binds the agent's socket (its directory made private first).
pub async fn bind(path: &Path) -> Result<Server, AgentError> {
    // A pipe name (Windows) has no directory to make.
    if let Some(dir) = path.parent().filter(|_| cfg!(unix)) {
        crate::config::create_private_dir(dir)
            .map_err(|e| AgentError::Config(format!("creating {}: {e}", dir.display())))?;
    }
    let options = ServerOptions {
        max_clients: MAX_CLIENTS,
        ..ServerOptions::default()
    };
    let server = Server::bind(path, options)
        .await
        .map_err(|e| AgentError::Config(format!("serving IPC on {}: {e}", path.display())))?;
    tracing::info!(socket = %path.display(), "local IPC for apps and `tidings` commands");
    Ok(server)
}

/// Serves the agent's IPC on `server` until `stop`, then waits for open connections
/// (and their `watch` forwarders) to end and removes the socket.
pub(super) async fn run(server: Server, handle: AgentHandle, stop: CancellationToken) {
    server.serve(Arc::new(AgentRpc::new(handle)), stop).await;
}

/// The handler.
pub struct AgentRpc {
    handle: AgentHandle,
}

impl AgentRpc {
    /// A handler for the agent behind `handle`.
    pub fn new(handle: AgentHandle) -> Self {
        Self { handle }
    }

    fn status(&self) -> Result<Value, RpcError> {
        let store = self.handle.store();
        let tally = store.tally().map_err(store_error)?;
        let pending = store.outbox().map_err(store_error)?.len();
        let (state, last_sync_at) = self.handle.link().get();
        let (user, device_id) = self.handle.identity();
        to_value(&StatusInfo {
            state,
            service: self.handle.service_url(),
            user: user.to_owned(),
            device_id: device_id.to_owned(),
            cursor: store.cursor().map_err(store_error)?,
            last_sync_at,
            unread: tally.unread,
            total: tally.total,
            pending_updates: pending as u64,
            toasts: self.handle.toasts(),
            do_not_disturb: self.handle.dnd(Timestamp::now()).map_err(store_error)?,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            undecryptable: self.handle.link().unopened_count(),
        })
    }

    fn list(&self, params: ListParams) -> Result<Reply, RpcError> {
        let limit = params.limit.unwrap_or(DEFAULT_LIST);
        if !(1..=MAX_LIST).contains(&limit) {
            return Err(RpcError::invalid_params(format!(
                "limit must be 1 to {MAX_LIST}, not {limit}"
            )));
        }
        let filter = Filter {
            app: params.app,
            unread_only: params.unread_only,
            status: Some(params.status.unwrap_or(Status::Active)),
        };
        let page = self
            .handle
            .store()
            .page(&filter, limit, params.before)
            .map_err(store_error)?;
        // Each item is written once: its text counts towards the answer's bytes and
        // goes into the answer as it is (the record moved into it, not cloned).
        let mut items = Vec::with_capacity(page.records.len());
        let mut bytes = 0;
        let mut next = page.next;
        let mut previous = None;
        for record in page.records {
            let seq = record.seq;
            let item = to_raw(&Item {
                seq,
                notification: record.into_notification(),
            })?;
            bytes += item.get().len();
            // Always at least one item: one notification is far below the line limit.
            if bytes > MAX_LIST_BYTES && previous.is_some() {
                next = previous;
                break;
            }
            previous = Some(seq);
            items.push(item);
        }
        to_raw(&ListResult { items, next }).map(Reply::Json)
    }

    /// Refuses a change (before making any) if an id is not stored here, or names a
    /// deleted notification: nothing can be read, dismissed or deleted once deleted.
    fn changeable(&self, ids: &[NotificationId]) -> Result<(), RpcError> {
        for id in ids {
            match self.handle.store().get(id).map_err(store_error)? {
                None => {
                    return Err(RpcError::new(
                        NOT_FOUND,
                        format!(
                            "{id} is not stored here (see `tidings history`); nothing was changed"
                        ),
                    ));
                }
                Some(record) if record.state.status == Status::Deleted => {
                    return Err(RpcError::new(
                        NOT_FOUND,
                        format!(
                            "{id} was deleted, so it can no longer be changed; nothing was changed"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    fn get(&self, params: &GetParams) -> Result<Value, RpcError> {
        match self.handle.store().get(&params.id).map_err(store_error)? {
            Some(record) => to_value(&Item {
                seq: record.seq,
                notification: record.to_notification(),
            }),
            None => Err(RpcError::new(
                NOT_FOUND,
                format!("no notification {} here", params.id),
            )),
        }
    }

    async fn change(&self, params: IdsParams, change: LocalChange) -> Result<Value, RpcError> {
        if params.ids.is_empty() || params.ids.len() > MAX_IDS {
            return Err(RpcError::invalid_params(format!(
                "ids must hold 1 to {MAX_IDS} ids, not {}",
                params.ids.len()
            )));
        }
        self.changeable(&params.ids)?;
        let updated = self
            .handle
            .change(&params.ids, change)
            .await
            .map_err(agent_error)?;
        to_value(&Updated { updated })
    }

    async fn subscribe(&self, params: SubscribeParams) -> Result<Value, RpcError> {
        let (sub, keys) = self
            .handle
            .subscribe(&params.target_host_name)
            .await
            .map_err(agent_error)?;
        Ok(serde_json::json!({
            "unsid": sub.unsid,
            "targetHostName": sub.target_host_name,
            "expirationDateTime": sub.expiration_date_time,
            "keys": keys,
        }))
    }

    /// This device's subscriptions, each with its public keys (none yet for one made
    /// before this device kept keys: it gets them at its next renewal).
    fn subscriptions(&self) -> Result<Value, RpcError> {
        let store = self.handle.store();
        let keys = store.all_keys().map_err(store_error)?;
        let subs = store.subscriptions().map_err(store_error)?;
        let listed: Vec<Value> = subs
            .into_iter()
            .map(|sub| {
                let public = keys.get(&sub.unsid).map(DeviceKeys::public);
                let mut value = serde_json::to_value(&sub).unwrap_or_default();
                if let Value::Object(map) = &mut value {
                    map.insert(
                        "keys".into(),
                        serde_json::to_value(public).unwrap_or_default(),
                    );
                }
                value
            })
            .collect();
        Ok(Value::Array(listed))
    }

    async fn send(&self, params: Option<Value>) -> Result<Value, RpcError> {
        let Some(Value::Object(body)) = params else {
            return Err(RpcError::invalid_params("send takes a notification object"));
        };
        if body.contains_key("targetHostName") {
            return Err(RpcError::invalid_params(
                "targetHostName: a note to your own devices has none; leave it out",
            ));
        }
        let created = self
            .handle
            .send(Value::Object(body))
            .await
            .map_err(agent_error)?;
        to_value(&created)
    }

    async fn dnd(&self, params: DndParams) -> Result<Value, RpcError> {
        let now = Timestamp::now();
        if params.until.is_some_and(|until| until <= now) {
            return Err(RpcError::invalid_params("until: that time has passed"));
        }
        if params.on == Some(false) && params.until.is_some() {
            return Err(RpcError::invalid_params(
                "until goes with on: true, not off",
            ));
        }
        if params.on.is_some() || params.until.is_some() {
            let on = params.on.unwrap_or(true);
            self.handle
                .set_dnd(on, params.until)
                .await
                .map_err(store_error)?;
        }
        to_value(&self.handle.dnd(now).map_err(store_error)?)
    }

    fn watch(&self, params: WatchParams, peer: &Peer) -> Value {
        // Subscribed before answering, so nothing stored after the answer is missed.
        let events = self.handle.events();
        peer.spawn(forward(events, params.app, peer.clone()));
        serde_json::json!({})
    }
}

/// Sends the events of `app` (or all) to `peer` until it disconnects.
async fn forward(
    mut events: tokio::sync::broadcast::Receiver<Event>,
    app: Option<String>,
    peer: Peer,
) {
    loop {
        let event = tokio::select! {
            () = peer.closed() => return,
            event = events.recv() => event,
        };
        let event = match event {
            Ok(event) => event,
            Err(RecvError::Lagged(missed)) => Event {
                kind: EventKind::Lagged,
                notification: None,
                missed: Some(missed),
            },
            Err(RecvError::Closed) => return,
        };
        let wanted = app.as_deref().is_none_or(|app| {
            event
                .notification
                .as_ref()
                .is_none_or(|n| n.content.target_host_name == app)
        });
        if wanted
            && let Ok(params) = serde_json::to_value(&event)
            && !peer.notify(method::EVENT, &params)
        {
            return;
        }
    }
}

impl Handler for AgentRpc {
    async fn call(&self, request: Request, peer: &Peer) -> Result<Reply, RpcError> {
        if request.method == method::LIST {
            return self.list(params_or_default(request.params)?);
        }
        self.answer(request, peer).await.map(Reply::from)
    }
}

impl AgentRpc {
    /// Every method but `list`, whose answer is a value.
    async fn answer(&self, request: Request, peer: &Peer) -> Result<Value, RpcError> {
        let read = |state| {
            LocalChange::Update(StatePatch {
                read_state: Some(state),
                user_action_state: None,
            })
        };
        match request.method.as_str() {
            method::STATUS => self.status(),
            method::GET => self.get(&params(request.params)?),
            method::MARK_READ => {
                self.change(params(request.params)?, read(ReadState::Read))
                    .await
            }
            method::MARK_UNREAD => {
                self.change(params(request.params)?, read(ReadState::Unread))
                    .await
            }
            method::DISMISS => {
                let dismiss = LocalChange::Update(StatePatch {
                    read_state: None,
                    user_action_state: Some(UserActionState::Dismissed),
                });
                self.change(params(request.params)?, dismiss).await
            }
            method::DELETE => {
                self.change(params(request.params)?, LocalChange::Delete)
                    .await
            }
            method::SUBSCRIBE => self.subscribe(params(request.params)?).await,
            method::SUBSCRIPTIONS => self.subscriptions(),
            method::SEND => self.send(request.params).await,
            method::WATCH => Ok(self.watch(params_or_default(request.params)?, peer)),
            method::DND => self.dnd(params_or_default(request.params)?).await,
            other => Err(RpcError::new(
                METHOD_NOT_FOUND,
                format!("unknown method {other:?}; see docs/ipc.md for the methods"),
            )),
        }
    }
}

/// Required params.
fn params<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let value = params.ok_or_else(|| RpcError::invalid_params("params are required"))?;
    serde_json::from_value(value).map_err(RpcError::invalid_params)
}

/// Optional params (absent or `null` means all defaults).
fn params_or_default<T: DeserializeOwned + Default>(params: Option<Value>) -> Result<T, RpcError> {
    match params {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value) => serde_json::from_value(value).map_err(RpcError::invalid_params),
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

/// `value` written as JSON text.
fn to_raw<T: Serialize>(value: &T) -> Result<Box<RawValue>, RpcError> {
    serde_json::value::to_raw_value(value).map_err(|e| RpcError::new(INTERNAL_ERROR, e.to_string()))
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(store_error)`
fn store_error(e: AgentStoreError) -> RpcError {
    RpcError::new(INTERNAL_ERROR, e.to_string())
}

fn agent_error(e: AgentError) -> RpcError {
    match e {
        AgentError::SignedOut => RpcError::new(NOT_SIGNED_IN, e.to_string()),
        AgentError::Refused(message) => RpcError::new(INVALID_PARAMS, message),
        AgentError::Network(message) => RpcError::new(
            INTERNAL_ERROR,
            format!("the service cannot be reached now ({message}); try again later"),
        ),
        other => RpcError::new(INTERNAL_ERROR, other.to_string()),
    }
}
