//! The agent's presentation loop: each stored change becomes a `watch` event and, by
//! the toast rules, a presenter call; a replayed backlog is held back until `synced`
//! and then shown one by one (3 at most) or as one summary; what the user does with a
//! toast comes back as a local change (through the outbox to every device).
//!
//! Per-app settings (`toasts`, `dismiss_sync`), apps paused from the panel icon and
//! do-not-disturb are applied here.

use std::collections::HashSet;

use crate::protocol::local::{Event, EventKind};
use crate::protocol::stored::NotificationRecord;
use crate::protocol::{
    NotificationId, Platform, ReadState, StatePatch, Status, Timestamp, UserActionState,
};

use super::AgentHandle;
use super::channel::Delivery;
use super::store::{Applied, LocalChange};
use super::toast::{self, AppPrefs, Feedback, ToastOp};

/// The toastable notifications of a backlog being replayed, shown when it ends: held
/// in the order they came, let go when a later change makes them not worth a toast
/// (read, dismissed, deleted), so that the end need not read them all back.
#[derive(Debug, Default)]
pub struct Backlog {
    ids: Vec<NotificationId>,
    held: HashSet<NotificationId>,
}

impl Backlog {
    fn hold(&mut self, id: &NotificationId) {
        if self.held.insert(id.clone()) {
            self.ids.push(id.clone());
        }
    }

    fn release(&mut self, id: &NotificationId) {
        self.held.remove(id);
    }

    /// The held notifications, each once, in the order they were first held.
    fn take(&mut self) -> Vec<NotificationId> {
        let Backlog { ids, mut held } = std::mem::take(self);
        ids.into_iter().filter(|id| held.remove(id)).collect()
    }
}

impl AgentHandle {
    /// Handles what a channel session delivers.
    pub(super) fn deliver(&self, delivery: Delivery<'_>) {
        match delivery {
            Delivery::Live(applied) => self.present(applied, false),
            Delivery::Backlog(applied) => self.present(applied, true),
            Delivery::Synced => self.end_backlog(),
        }
    }

    /// Publishes each change to watchers and carries out its toast; during a backlog,
    /// new toasts wait for [`Self::end_backlog`].
    pub(super) fn present(&self, applied: &[Applied], backlog: bool) {
        let moment = self.moment(Timestamp::now());
        for change in applied {
            let _ = self.events.send(event_of(change));
            let record = match change {
                Applied::Created(record) | Applied::Updated(record) => record,
            };
            let shown = self.presenter.is_shown(&record.id);
            match toast::plan(change, &moment.context(self, record, shown)) {
                ToastOp::Show(_) if backlog => self.backlog().hold(&record.id),
                op => {
                    self.backlog().release(&record.id);
                    self.perform(op);
                }
            }
        }
    }

    /// Closes the toasts of notifications retention removed and tells watchers.
    pub(super) fn removed(&self, records: &[NotificationRecord]) {
        for record in records {
            self.backlog().release(&record.id);
            self.presenter.close(&record.id);
            let _ = self.events.send(event(EventKind::Removed, record));
        }
    }

    /// Takes over the toasts a previous agent left on screen: closes the ones handled
    /// meanwhile, re-shows the others in place (so their responses come here).
    pub(super) fn adopt_toasts(&self) {
        let moment = self.moment(Timestamp::now());
        for id in self.presenter.adopted() {
            let Some(record) = self.store.get(&id).ok().flatten() else {
                self.presenter.close(&id);
                continue;
            };
            // Would it be shown if it were new? Then keep it, re-shown in place.
            let ctx = moment.context(self, &record, false);
            match toast::plan(&Applied::Updated(record), &ctx) {
                ToastOp::Show(notification) => self.presenter.update(&notification),
                _ => self.presenter.close(&id),
            }
        }
    }

    /// The device's settings as of `now`, read once for a whole group of changes.
    fn moment(&self, now: Timestamp) -> Moment {
        Moment {
            now,
            dnd: self.dnd_on(now),
            paused: self.paused(),
        }
    }

    /// The backlog is over: show what is still worth a toast (it may have been read
    /// meanwhile), one by one or as one summary.
    fn end_backlog(&self) {
        let ids = self.backlog().take();
        if ids.is_empty() {
            return;
        }
        let moment = self.moment(Timestamp::now());
        if moment.dnd {
            return;
        }
        // Too many to show one by one: one summary, without reading them all back
        // (after a long time offline that would page the whole cache in).
        if ids.len() > toast::BACKLOG_SHOWN {
            self.perform(ToastOp::Summary(ids.len()));
            return;
        }
        // A few: planned again as of now, so one shown or expired meanwhile is left out.
        let ops = ids
            .iter()
            .filter_map(|id| self.store.get(id).ok().flatten())
            .map(|record| {
                let ctx = moment.context(self, &record, self.presenter.is_shown(&record.id));
                toast::plan(&Applied::Updated(record), &ctx)
            })
            .filter(|op| matches!(op, ToastOp::Show(_)))
            .collect();
        for op in toast::plan_backlog(ops) {
            self.perform(op);
        }
    }

    fn backlog(&self) -> std::sync::MutexGuard<'_, Backlog> {
        crate::sync::lock(&self.backlog)
    }

    /// Carries out one toast operation.
    fn perform(&self, op: ToastOp) {
        match op {
            ToastOp::Show(notification) => self.presenter.show(&notification),
            ToastOp::Update(notification) => self.presenter.update(&notification),
            ToastOp::Close(id) => self.presenter.close(&id),
            ToastOp::Summary(count) => self.presenter.summary(count),
            ToastOp::Nothing => {}
        }
    }

    /// The settings of the app `host`.
    fn prefs(&self, host: &str) -> AppPrefs {
        self.apps.get(host).copied().unwrap_or_default()
    }

    /// The apps whose toasts are paused from the panel icon (a store that cannot be
    /// read pauses nothing: a toast too many beats one lost).
    fn paused(&self) -> Vec<String> {
        self.store.paused_apps().unwrap_or_default()
    }

    fn dnd_on(&self, now: Timestamp) -> bool {
        self.dnd(now).is_ok_and(|dnd| dnd.on)
    }

    /// Turns what the user did with a toast into a change on every device.
    pub(super) async fn feedback(&self, feedback: Feedback) {
        let (id, read, action) = match feedback {
            Feedback::Dismissed(id) => (id, None, Some(UserActionState::Dismissed)),
            Feedback::Activated(id) => {
                (id, Some(ReadState::Read), Some(UserActionState::Activated))
            }
            Feedback::MarkRead(id) => (id, Some(ReadState::Read), None),
        };
        if action == Some(UserActionState::Dismissed) {
            let host = self
                .store
                .get(&id)
                .ok()
                .flatten()
                .map(|r| r.content.target_host_name);
            if host.is_some_and(|host| !self.prefs(&host).dismiss_sync) {
                tracing::debug!(%id, "toast closed by the user; dismiss_sync is off for its app, so it is not dismissed");
                return;
            }
        }
        let change = LocalChange::Update(StatePatch {
            read_state: read,
            user_action_state: action,
        });
        if let Err(e) = self.change(std::slice::from_ref(&id), change).await {
            tracing::warn!(%id, error = %e, "could not record what was done with a toast");
        }
    }
}

/// The `watch` event for a stored change.
fn event_of(applied: &Applied) -> Event {
    let (record, created) = match applied {
        Applied::Created(record) => (record, true),
        Applied::Updated(record) => (record, false),
    };
    let kind = if record.state.status == Status::Deleted {
        EventKind::Deleted
    } else if created {
        EventKind::Created
    } else {
        EventKind::Updated
    };
    event(kind, record)
}

/// The `watch` event of `kind` for `record`.
fn event(kind: EventKind, record: &NotificationRecord) -> Event {
    Event {
        kind,
        notification: Some(record.to_notification()),
        missed: None,
    }
}

/// What the toast rules need from the device's settings, read once per group of
/// changes: the time, do not disturb and the paused apps.
struct Moment {
    now: Timestamp,
    dnd: bool,
    paused: Vec<String>,
}

impl Moment {
    /// What the toast rules need to know about `record` at this moment.
    fn context(
        &self,
        agent: &AgentHandle,
        record: &NotificationRecord,
        shown: bool,
    ) -> toast::Context {
        let host = &record.content.target_host_name;
        toast::Context {
            now: self.now,
            platform: Platform::current(),
            shown,
            app_toasts: agent.prefs(host).toasts && !self.paused.iter().any(|app| app == host),
            do_not_disturb: self.dnd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(name: &str) -> NotificationId {
        NotificationId::new(name)
    }

    /// A backlog keeps what is still worth a toast, once each, in the order first held.
    #[test]
    fn a_backlog_lets_go_of_what_a_later_change_made_not_worth_a_toast() {
        let mut backlog = Backlog::default();
        backlog.hold(&id("a"));
        backlog.hold(&id("b"));
        backlog.hold(&id("a"));
        backlog.hold(&id("c"));
        backlog.release(&id("b"));
        backlog.release(&id("never held"));
        // Let go, then held again by a later change: kept at its first place.
        backlog.release(&id("a"));
        backlog.hold(&id("a"));
        assert_eq!(backlog.take(), vec![id("a"), id("c")]);
        assert!(backlog.take().is_empty(), "taking empties it");
    }
}
