//! What one batch of feed writes does, worked out in memory.
//!
//! The batch committer (`batch`) locks the heads of every user in the batch and reads
//! every notification the batch names (by id, by `appNotificationId`, by group); then
//! [`plan`] applies the writes one after the other, in queue order, as the one-at-a-time
//! store did: each user's writes take consecutive `seq`s from the user's head, a write
//! sees what the writes before it in the batch made (a post replacing the one posted
//! just before it, a read of a notification posted in the same batch), and a write that
//! finds nothing to change spends no `seq`. What is left to do is plain data: the rows
//! to write (each notification's last version), the heads to move, and what each
//! writer made.
//!
//! Pure: no database, so the rules are tested as a table here.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::super::records::NotificationRecord;
use super::super::{changed, is_live, posted};
use crate::protocol::{
    NotificationContent, NotificationId, Seq, Status, Timestamp, UserId, UserState,
};

/// A state edit (mark read, dismiss, delete).
pub(super) type Edit = Box<dyn Fn(&mut UserState) + Send + Sync>;

/// One write to a user's feed.
pub(super) enum Op {
    /// A post: a new notification, or the one with the same `appNotificationId`
    /// replaced in place.
    Upsert(NotificationContent),
    /// A state change of one notification, applied only if it is live.
    Change(NotificationId, Edit),
    /// Deletes every live notification of `host` in `group`.
    DeleteGroup {
        /// The app's host name.
        host: String,
        /// The group.
        group: String,
    },
}

/// A write as queued: whose feed, what, and the time it is made at.
pub(super) struct Write {
    pub user: UserId,
    pub op: Op,
    pub now: Timestamp,
}

/// What a batch must read before it can be planned: the users whose heads it locks
/// (sorted, so that two batches lock them in the same order) and the notifications
/// its writes name.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Wanted {
    pub users: Vec<String>,
    /// (user, notification id) of each state change.
    pub ids: [Vec<String>; 2],
    /// (user, host, appNotificationId) of each post that carries one.
    pub apps: [Vec<String>; 3],
    /// (user, host, group) of each group delete.
    pub groups: [Vec<String>; 3],
}

/// What reading the batch's notifications and heads is for.
pub(super) fn wanted(writes: &[Write]) -> Wanted {
    let mut wanted = Wanted::default();
    for write in writes {
        let user = write.user.as_str().to_owned();
        match &write.op {
            Op::Upsert(content) => {
                if let Some(app_id) = &content.app_notification_id {
                    push(&mut wanted.apps, [&user, &content.target_host_name, app_id]);
                }
            }
            Op::Change(id, _) => push(&mut wanted.ids, [&user, id.as_str()]),
            Op::DeleteGroup { host, group } => push(&mut wanted.groups, [&user, host, group]),
        }
        wanted.users.push(user);
    }
    wanted.users.sort_unstable();
    wanted.users.dedup();
    wanted
}

fn push<const N: usize>(columns: &mut [Vec<String>; N], values: [&str; N]) {
    for (column, value) in columns.iter_mut().zip(values) {
        column.push(value.to_owned());
    }
}

/// The outcome of a batch, before it is written.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// Per write, in queue order: the versions it made (a post one; a state change
    /// none or one; a group delete one per notification it deleted).
    pub made: Vec<Vec<NotificationRecord>>,
    /// The rows to write: the last version of each notification the batch changed.
    pub rows: Vec<(UserId, NotificationRecord)>,
    /// The new head of each user whose feed moved, by user.
    pub heads: BTreeMap<UserId, Seq>,
    /// The head each of those users had before the batch: the batch took the `seq`s
    /// after it, up to the new head.
    pub before: BTreeMap<UserId, Seq>,
}

/// Where the batch stands while it is planned: every notification as the writes so
/// far left it, and each user's head.
struct Overlay {
    records: HashMap<(UserId, NotificationId), NotificationRecord>,
    by_app: HashMap<(UserId, String, String), NotificationId>,
    heads: HashMap<UserId, Seq>,
    /// The notifications changed, in the order first changed.
    touched: Vec<(UserId, NotificationId)>,
    changed: HashSet<(UserId, NotificationId)>,
}

impl Overlay {
    fn new(found: Vec<(UserId, NotificationRecord)>, heads: HashMap<UserId, Seq>) -> Self {
        let mut overlay = Self {
            records: HashMap::with_capacity(found.len()),
            by_app: HashMap::new(),
            heads,
            touched: Vec::new(),
            changed: HashSet::new(),
        };
        for (user, record) in found {
            overlay.index(&user, &record);
            overlay.records.insert((user, record.id.clone()), record);
        }
        overlay
    }

    fn index(&mut self, user: &UserId, record: &NotificationRecord) {
        if let Some(app_id) = &record.content.app_notification_id {
            self.by_app.insert(
                (
                    user.clone(),
                    record.content.target_host_name.clone(),
                    app_id.clone(),
                ),
                record.id.clone(),
            );
        }
    }

    fn next_seq(&mut self, user: &UserId) -> Seq {
        let head = self.heads.entry(user.clone()).or_insert(Seq::ZERO);
        *head = head.next();
        *head
    }

    fn put(&mut self, user: &UserId, record: NotificationRecord) -> NotificationRecord {
        self.index(user, &record);
        let key = (user.clone(), record.id.clone());
        if self.changed.insert(key.clone()) {
            self.touched.push(key.clone());
        }
        self.records.insert(key, record.clone());
        record
    }

    fn upsert(
        &mut self,
        user: &UserId,
        content: NotificationContent,
        now: Timestamp,
    ) -> NotificationRecord {
        let old = content.app_notification_id.as_ref().and_then(|app_id| {
            let key = (
                user.clone(),
                content.target_host_name.clone(),
                app_id.clone(),
            );
            let id = self.by_app.get(&key)?;
            self.records.get(&(user.clone(), id.clone())).cloned()
        });
        let seq = self.next_seq(user);
        let record = posted(old.as_ref(), seq, content, now);
        self.put(user, record)
    }

    fn change(
        &mut self,
        user: &UserId,
        id: &NotificationId,
        now: Timestamp,
        edit: &dyn Fn(&mut UserState),
    ) -> Option<NotificationRecord> {
        let old = self
            .records
            .get(&(user.clone(), id.clone()))
            .filter(|r| is_live(r, now))?
            .clone();
        let seq = self.next_seq(user);
        Some(self.put(user, changed(&old, seq, now, edit)))
    }

    fn delete_group(
        &mut self,
        user: &UserId,
        host: &str,
        group: &str,
        now: Timestamp,
    ) -> Vec<NotificationRecord> {
        let mut members: Vec<(Seq, NotificationId)> = self
            .records
            .iter()
            .filter(|((owner, _), r)| {
                owner == user
                    && r.content.target_host_name == host
                    && r.content.group_name.as_deref() == Some(group)
                    && is_live(r, now)
            })
            .map(|(_, r)| (r.seq, r.id.clone()))
            .collect();
        members.sort_unstable();
        let delete = |state: &mut UserState| state.status = Status::Deleted;
        members
            .iter()
            .filter_map(|(_, id)| self.change(user, id, now, &delete))
            .collect()
    }
}

/// Applies `writes` in order to what was read: `found`, every notification they name
/// (each with its user), and `heads`, the locked head of each of their users.
pub(super) fn plan(
    writes: &[Write],
    found: Vec<(UserId, NotificationRecord)>,
    heads: HashMap<UserId, Seq>,
) -> Plan {
    let before = heads.clone();
    let mut overlay = Overlay::new(found, heads);
    let made = writes
        .iter()
        .map(|write| {
            let user = &write.user;
            match &write.op {
                Op::Upsert(content) => vec![overlay.upsert(user, content.clone(), write.now)],
                Op::Change(id, edit) => overlay
                    .change(user, id, write.now, edit.as_ref())
                    .into_iter()
                    .collect(),
                Op::DeleteGroup { host, group } => {
                    overlay.delete_group(user, host, group, write.now)
                }
            }
        })
        .collect();
    let was = |user: &UserId| before.get(user).copied().unwrap_or(Seq::ZERO);
    let heads: BTreeMap<UserId, Seq> = overlay
        .heads
        .iter()
        .filter(|(user, head)| was(user) < **head)
        .map(|(user, head)| (user.clone(), *head))
        .collect();
    let before = heads.keys().map(|user| (user.clone(), was(user))).collect();
    let mut records = overlay.records;
    let rows = overlay
        .touched
        .into_iter()
        .filter_map(|key| {
            let record = records.remove(&key)?;
            Some((key.0, record))
        })
        .collect();
    Plan {
        made,
        rows,
        heads,
        before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ReadState;
    use crate::service::store::fixtures;

    fn content(app_id: Option<&str>, group: Option<&str>) -> NotificationContent {
        fixtures::content(app_id, group, 1_000_000)
    }

    fn write(user: &str, op: Op) -> Write {
        Write {
            user: UserId::new(user),
            op,
            now: Timestamp::from_millis(10),
        }
    }

    fn read() -> Op {
        Op::Change(
            NotificationId::new("n1"),
            Box::new(|s: &mut UserState| s.read_state = ReadState::Read),
        )
    }

    fn stored(seq: u64, id: &str, app_id: Option<&str>, group: Option<&str>) -> NotificationRecord {
        let mut record = fixtures::record(seq, id, app_id, group, 1_000_000);
        record.created = Timestamp::from_millis(1);
        record.modified = Timestamp::from_millis(1);
        record
    }

    fn seqs(plan: &Plan) -> Vec<Vec<u64>> {
        plan.made
            .iter()
            .map(|m| m.iter().map(|r| r.seq.0).collect())
            .collect()
    }

    #[test]
    fn each_users_writes_take_consecutive_seqs_from_their_head_in_queue_order() {
        let writes = [
            write("a", Op::Upsert(content(None, None))),
            write("b", Op::Upsert(content(None, None))),
            write("a", Op::Upsert(content(None, None))),
        ];
        let heads = HashMap::from([(UserId::new("a"), Seq(7))]);
        let plan = plan(&writes, Vec::new(), heads);
        assert_eq!(seqs(&plan), [vec![8], vec![1], vec![9]]);
        assert_eq!(
            plan.heads.into_iter().collect::<Vec<_>>(),
            [(UserId::new("a"), Seq(9)), (UserId::new("b"), Seq(1))]
        );
        assert_eq!(plan.rows.len(), 3);
    }

    #[test]
    fn a_write_sees_what_the_writes_before_it_in_the_batch_made() {
        let writes = [
            write("a", Op::Upsert(content(Some("x"), None))),
            write("a", Op::Upsert(content(Some("x"), None))),
        ];
        let plan = plan(&writes, Vec::new(), HashMap::new());
        let (first, second) = (&plan.made[0][0], &plan.made[1][0]);
        assert_eq!(first.id, second.id, "replaced in place, same id");
        assert_eq!((first.seq, second.seq), (Seq(1), Seq(2)));
        assert_eq!(plan.rows.len(), 1, "one row: its last version");
        assert_eq!(plan.rows[0].1.seq, Seq(2));
    }

    #[test]
    fn a_post_replaces_the_stored_one_with_its_app_id_keeping_id_and_creation() {
        let old = stored(3, "n1", Some("x"), None);
        let writes = [
            write("a", Op::Upsert(content(Some("x"), None))),
            write("a", read()),
        ];
        let plan = plan(
            &writes,
            vec![(UserId::new("a"), old)],
            HashMap::from([(UserId::new("a"), Seq(3))]),
        );
        let replaced = &plan.made[0][0];
        assert_eq!(replaced.id, NotificationId::new("n1"));
        assert_eq!(replaced.created, Timestamp::from_millis(1));
        assert_eq!(replaced.state.read_state, ReadState::Unread);
        assert_eq!(seqs(&plan), [vec![4], vec![5]]);
        assert_eq!(
            plan.made[1][0].state.read_state,
            ReadState::Read,
            "the read applies to the new version"
        );
    }

    #[test]
    fn a_change_that_finds_nothing_live_spends_no_seq() {
        let mut deleted = stored(2, "n1", None, None);
        deleted.state.status = Status::Deleted;
        let writes = [write("a", read()), write("b", read())];
        let heads = HashMap::from([(UserId::new("a"), Seq(2)), (UserId::new("b"), Seq(0))]);
        let plan = plan(&writes, vec![(UserId::new("a"), deleted)], heads);
        assert_eq!(seqs(&plan), [Vec::<u64>::new(), vec![]]);
        assert!(plan.rows.is_empty());
        assert!(plan.heads.is_empty());
    }

    #[test]
    fn a_group_delete_takes_the_groups_live_ones_also_those_posted_in_the_batch() {
        let mut expired = stored(1, "old", None, Some("g"));
        expired.content.expiration_date_time = Timestamp::from_millis(5);
        let found = vec![
            (UserId::new("a"), stored(2, "n2", None, Some("g"))),
            (UserId::new("a"), expired),
            (UserId::new("a"), stored(3, "n3", None, Some("other"))),
        ];
        let writes = [
            write("a", Op::Upsert(content(None, Some("g")))),
            write(
                "a",
                Op::DeleteGroup {
                    host: "contoso.com".to_owned(),
                    group: "g".to_owned(),
                },
            ),
        ];
        let plan = plan(&writes, found, HashMap::from([(UserId::new("a"), Seq(3))]));
        let deleted = &plan.made[1];
        assert_eq!(deleted.len(), 2);
        assert_eq!(deleted[0].id, NotificationId::new("n2"), "in seq order");
        assert_eq!(deleted[1].id, plan.made[0][0].id);
        assert!(deleted.iter().all(|r| r.state.status == Status::Deleted));
        assert_eq!(seqs(&plan), [vec![4], vec![5, 6]]);
    }

    #[test]
    fn what_to_read_names_each_user_once_in_order() {
        let writes = [
            write("b", Op::Upsert(content(Some("x"), None))),
            write("a", read()),
            write("b", Op::Upsert(content(None, None))),
        ];
        let wanted = wanted(&writes);
        assert_eq!(wanted.users, ["a", "b"]);
        assert_eq!(wanted.ids, [vec!["a".to_owned()], vec!["n1".to_owned()]]);
        assert_eq!(wanted.apps[2], ["x"]);
        assert!(wanted.groups[0].is_empty());
    }
}
