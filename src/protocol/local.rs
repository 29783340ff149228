//! The agent's local IPC methods (`docs/ipc.md`): their params and results, shared
//! by the agent's handler and the command line, which both speak them as JSON.
//!
//! Params are strict (`deny_unknown_fields`), so a misspelt field is an "invalid
//! params" answer, not silently ignored.

use serde::{Deserialize, Serialize};

use super::{Notification, NotificationId, Seq, Status, Timestamp};

/// Application error codes of the agent's and the admin socket's methods (the JSON-RPC
/// codes of the transport itself are in `ipc::codec`).
pub mod codes {
    /// The thing asked for does not exist (or, for a change, was deleted).
    pub const NOT_FOUND: i32 = -32004;
    /// The request conflicts with existing state.
    pub const CONFLICT: i32 = -32009;
    /// The agent is not signed in.
    pub const NOT_SIGNED_IN: i32 = -32010;
}

/// Method names.
pub mod method {
    /// Agent and link state, counts.
    pub const STATUS: &str = "status";
    /// History, newest first.
    pub const LIST: &str = "list";
    /// One notification.
    pub const GET: &str = "get";
    /// Mark read.
    pub const MARK_READ: &str = "markRead";
    /// Mark unread.
    pub const MARK_UNREAD: &str = "markUnread";
    /// Dismiss (closes the toast on every device).
    pub const DISMISS: &str = "dismiss";
    /// Delete everywhere.
    pub const DELETE: &str = "delete";
    /// Subscribe this device to an app host; returns the UNSID.
    pub const SUBSCRIBE: &str = "subscribe";
    /// This device's subscriptions.
    pub const SUBSCRIPTIONS: &str = "subscriptions";
    /// A note to all of my devices.
    pub const SEND: &str = "send";
    /// Follow changes as `event` notifications.
    pub const WATCH: &str = "watch";
    /// The notification method `watch` pushes.
    pub const EVENT: &str = "event";
    /// Do not disturb: read or set.
    pub const DND: &str = "dnd";
}

/// The longest page `list` returns.
pub const MAX_LIST: usize = 1000;
/// Most bytes of items one `list` answer holds (as JSON); a page that would pass it
/// ends early, with `next`, so no answer comes near the 1 MiB line limit however large
/// its notifications are. Callers page on with `next` as with `limit`.
pub const MAX_LIST_BYTES: usize = 512 * 1024;
/// The page `list` returns when no `limit` is given.
pub const DEFAULT_LIST: usize = 50;

/// `list` params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Only this app's notifications (its `targetHostName`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    /// Only unread ones.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unread_only: bool,
    /// `active` (the default) or `deleted` (tombstones).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Page size: 50 unless given, at most 1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Only notifications whose latest change is older than this `seq` (the `next` of
    /// the previous page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Seq>,
}

/// One history entry: the notification and the `seq` of its latest change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// Position in history (newest change = highest).
    pub seq: Seq,
    /// The notification.
    #[serde(flatten)]
    pub notification: Notification,
}

/// `list` result. (The agent writes each item's JSON once, as it counts the answer's
/// bytes, and answers with those texts as the items: `ListResult<Box<RawValue>>`.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResult<I = Item> {
    /// Newest change first.
    pub items: Vec<I>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Seq>,
}

/// `get` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// The notification's id.
    pub id: NotificationId,
}

/// `markRead`, `markUnread`, `dismiss` and `delete` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdsParams {
    /// The notifications to change (1 to 1000).
    pub ids: Vec<NotificationId>,
}

/// The most ids one state-change call takes.
pub const MAX_IDS: usize = 1000;

/// Result of a state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Updated {
    /// How many notifications changed (unknown ids are not counted).
    pub updated: usize,
}

/// `subscribe` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscribeParams {
    /// The app's host name.
    pub target_host_name: String,
}

/// `watch` params.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    /// Only this app's notifications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
}

/// What happened to a notification, in a `watch` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum EventKind {
    /// Seen for the first time.
    Created,
    /// Replaced, read, dismissed, ...
    Updated,
    /// Deleted (the notification is its tombstone).
    Deleted,
    /// Gone from this device's history (expired, or over the history cap); the
    /// notification as it was. Not a change anywhere else.
    Removed,
    /// The watcher fell behind and missed `missed` events; list to catch up.
    Lagged,
}

/// The params of an `event` notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The notification after the change (absent for `lagged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<Notification>,
    /// Events missed (only for `lagged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
}

/// The agent's link to its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LinkState {
    /// Caught up and following live changes.
    Connected,
    /// Opening the channel.
    Connecting,
    /// The last attempt failed; waiting to retry.
    Offline,
    /// The service refused the device credential; sign in again.
    SignedOut,
}

/// `dnd` params: none reads the state; `on` sets it (`until` ends it by itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DndParams {
    /// Turn do-not-disturb on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<bool>,
    /// With `on: true` (or alone): on until this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// Do-not-disturb state (`dnd` result, and in `status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dnd {
    /// Whether toasts are held back now.
    pub on: bool,
    /// When it ends by itself (absent: when turned off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// `status` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusInfo {
    /// The link.
    pub state: LinkState,
    /// The service's URL.
    pub service: String,
    /// The signed-in user.
    pub user: String,
    /// This device.
    pub device_id: String,
    /// The highest `seq` stored.
    pub cursor: Seq,
    /// When the agent last caught up or stored a change.
    pub last_sync_at: Option<Timestamp>,
    /// Active notifications not read yet.
    pub unread: u64,
    /// Active notifications stored.
    pub total: u64,
    /// Local changes the service has not confirmed yet.
    pub pending_updates: u64,
    /// The toast backend, and whether it works.
    pub toasts: String,
    /// Do not disturb.
    pub do_not_disturb: Dnd,
    /// The agent's version.
    pub version: String,
    /// Encrypted notifications for this device that could not be opened (tampered,
    /// truncated, or made for other keys) since the agent started; never shown.
    #[serde(default)]
    pub undecryptable: u64,
}
