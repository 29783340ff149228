//! The in-memory indexes over the stored notifications: each user's feed (`seq` →
//! id), the `appNotificationId` lookup, the expiry order, and each user's last `seq`.
//!
//! The notification record (which carries its own `seq`) is the only thing written per
//! change: one sled insert, atomic by itself, so a crash can never leave an index entry
//! without its notification or the other way round. The indexes are derived data,
//! rebuilt from the records when the store opens, and kept in step under the store's
//! write lock. The cost is memory: roughly 150 to 250 bytes per stored notification.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::protocol::{NotificationId, Seq, Timestamp, UserId};

use super::records::NotificationRecord;

/// The index entries one notification contributes.
struct Entry<'a> {
    seq: Seq,
    id: &'a NotificationId,
    host: &'a str,
    app_id: Option<&'a str>,
    expires: Timestamp,
    size: u64,
}

impl<'a> From<&'a NotificationRecord> for Entry<'a> {
    fn from(record: &'a NotificationRecord) -> Self {
        Self {
            seq: record.seq,
            id: &record.id,
            host: &record.content.target_host_name,
            app_id: record.content.app_notification_id.as_deref(),
            expires: record.content.expiration_date_time,
            size: record.content.size() as u64,
        }
    }
}

/// An expired notification: (expiry, user, seq, id).
pub(crate) type Expired = (Timestamp, UserId, Seq, Option<NotificationId>);

#[derive(Default)]
struct UserIndex {
    last_seq: Seq,
    /// The notification at each `seq`, with its size (for the user's usage).
    feed: BTreeMap<Seq, (NotificationId, u64)>,
    app_ids: HashMap<(String, String), NotificationId>,
    /// The sizes in `feed`, added up.
    bytes: u64,
}

impl UserIndex {
    fn forget(&mut self, seq: Seq) {
        if let Some((_, size)) = self.feed.remove(&seq) {
            self.bytes = self.bytes.saturating_sub(size);
        }
    }
}

/// All indexes. Not thread-safe by itself: the store keeps it under its write lock.
#[derive(Default)]
pub(crate) struct Index {
    users: HashMap<UserId, UserIndex>,
    /// (expiry, user, seq): the seq names the notification through the user's feed.
    expiry: BTreeSet<(Timestamp, UserId, Seq)>,
}

impl Index {
    /// The `seq` the next change of `user` gets.
    pub fn next_seq(&self, user: &UserId) -> Seq {
        self.users
            .get(user)
            .map_or(Seq::ZERO, |u| u.last_seq)
            .next()
    }

    /// Raises `user`'s last `seq` to at least `seq` (a floor kept across purges).
    pub fn raise_seq(&mut self, user: &UserId, seq: Seq) {
        let entry = self.users.entry(user.clone()).or_default();
        entry.last_seq = entry.last_seq.max(seq);
    }

    /// Every user's last `seq`.
    pub fn last_seqs(&self) -> HashMap<UserId, Seq> {
        self.users
            .iter()
            .map(|(u, i)| (u.clone(), i.last_seq))
            .collect()
    }

    /// Records a new version of a notification, replacing the entries of `old`.
    pub fn put(
        &mut self,
        user: &UserId,
        old: Option<&NotificationRecord>,
        new: &NotificationRecord,
    ) {
        if let Some(old) = old {
            self.remove(user, &Entry::from(old));
        }
        let entry = Entry::from(new);
        // The user's id is cloned only for a user new to the index.
        let index = match self.users.get_mut(user) {
            Some(index) => index,
            None => self.users.entry(user.clone()).or_default(),
        };
        index.last_seq = index.last_seq.max(entry.seq);
        index.forget(entry.seq);
        index.feed.insert(entry.seq, (entry.id.clone(), entry.size));
        index.bytes += entry.size;
        if let Some(app_id) = entry.app_id {
            index
                .app_ids
                .insert((entry.host.to_owned(), app_id.to_owned()), entry.id.clone());
        }
        self.expiry.insert((entry.expires, user.clone(), entry.seq));
    }

    fn remove(&mut self, user: &UserId, entry: &Entry<'_>) {
        if let Some(index) = self.users.get_mut(user) {
            index.forget(entry.seq);
            if let Some(app_id) = entry.app_id {
                index
                    .app_ids
                    .remove(&(entry.host.to_owned(), app_id.to_owned()));
            }
        }
        self.expiry
            .remove(&(entry.expires, user.clone(), entry.seq));
    }

    /// Forgets a notification whose record is being deleted (its own seq stays the floor).
    pub fn drop_record(&mut self, user: &UserId, record: &NotificationRecord) {
        self.remove(user, &Entry::from(record));
    }

    /// Forgets an expiry entry whose record is already gone.
    pub fn drop_entry(&mut self, user: &UserId, seq: Seq, expires: Timestamp) {
        if let Some(index) = self.users.get_mut(user) {
            index.forget(seq);
        }
        self.expiry.remove(&(expires, user.clone(), seq));
    }

    /// The id stored for (user, host, appNotificationId).
    pub fn by_app_id(&self, user: &UserId, host: &str, app_id: &str) -> Option<NotificationId> {
        let index = self.users.get(user)?;
        index
            .app_ids
            .get(&(host.to_owned(), app_id.to_owned()))
            .cloned()
    }

    /// Forgets every entry of `user` (removed for good).
    pub fn remove_user(&mut self, user: &UserId) {
        if self.users.remove(user).is_some() {
            self.expiry.retain(|(_, u, _)| u != user);
        }
    }

    /// What `user` keeps: notifications (tombstones too, until they expire) and their
    /// sizes added up.
    pub fn usage(&self, user: &UserId) -> (u64, u64) {
        self.users
            .get(user)
            .map_or((0, 0), |u| (u.feed.len() as u64, u.bytes))
    }

    /// Up to `max` feed entries of `user` with `seq` in (`after`, `upto`].
    pub fn feed_range(
        &self,
        user: &UserId,
        after: Seq,
        upto: Seq,
        max: usize,
    ) -> Vec<(Seq, NotificationId)> {
        let Some(index) = self.users.get(user) else {
            return Vec::new();
        };
        if after >= upto {
            return Vec::new();
        }
        index
            .feed
            .range(after.next()..=upto)
            .take(max)
            .map(|(seq, (id, _))| (*seq, id.clone()))
            .collect()
    }

    /// Up to `max` notifications expired at `now`, earliest first, as
    /// (expiry, user, seq, id); the id is `None` if the feed lost track of it.
    pub fn expired(&self, now: Timestamp, max: usize) -> Vec<Expired> {
        self.expiry
            .iter()
            .take_while(|(at, _, _)| *at <= now)
            .take(max)
            .map(|(at, user, seq)| {
                let id = self
                    .users
                    .get(user)
                    .and_then(|u| u.feed.get(seq))
                    .map(|(id, _)| id.clone());
                (*at, user.clone(), *seq, id)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::store::fixtures;

    fn record(seq: u64, id: &str, app_id: Option<&str>, expires: i64) -> NotificationRecord {
        fixtures::record(seq, id, app_id, None, expires)
    }

    #[test]
    fn a_new_version_moves_the_feed_and_expiry_entries() {
        let user = UserId::new("u");
        let mut index = Index::default();
        let first = record(1, "a", Some("x"), 100);
        index.put(&user, None, &first);
        let second = record(2, "a", Some("x"), 200);
        index.put(&user, Some(&first), &second);
        assert_eq!(
            index.feed_range(&user, Seq(0), Seq(10), 10),
            vec![(Seq(2), NotificationId::new("a"))]
        );
        assert_eq!(
            index.by_app_id(&user, "contoso.com", "x"),
            Some(NotificationId::new("a"))
        );
        assert!(index.expired(Timestamp::from_millis(150), 10).is_empty());
        let expired = index.expired(Timestamp::from_millis(200), 10);
        let id = Some(NotificationId::new("a"));
        assert_eq!(
            expired,
            vec![(Timestamp::from_millis(200), user.clone(), Seq(2), id)]
        );
        assert_eq!(index.next_seq(&user), Seq(3));
        assert_eq!(index.usage(&user), (1, second.content.size() as u64));
    }

    #[test]
    fn forgetting_keeps_the_seq_floor() {
        let user = UserId::new("u");
        let mut index = Index::default();
        let gone = record(7, "a", Some("x"), 100);
        index.put(&user, None, &gone);
        index.drop_record(&user, &gone);
        assert!(index.feed_range(&user, Seq(0), Seq(10), 10).is_empty());
        assert_eq!(index.by_app_id(&user, "contoso.com", "x"), None);
        assert_eq!(index.next_seq(&user), Seq(8), "seq never goes back");
        assert_eq!(index.usage(&user), (0, 0));
    }
}
