//! Which nodes watch which users, so that a batch is announced only to be heard.
//!
//! A node marks a user in `feed_heads.watchers` (its id, [`PgConfig::node`]) as it
//! opens each channel of theirs (the first makes the mark), and unmarks them when it
//! closes the last. A
//! batch reads the marks of its users under their heads' row locks and sends its
//! `pg_notify` only when a node other than its own watches one of them: a node that
//! no channel needs the changes of is not woken for them, and neither PostgreSQL nor
//! its listener spends anything on them.
//!
//! Nothing is missed, because a mark and a batch take the same row lock. A batch that
//! locked the head first commits before the mark is made, and the mark's statement
//! returns the head it committed: the node counts the user's feed up to there
//! (published, or passed over for the channel to read from the database) before the
//! channel registers. A batch that comes after the mark sees it and announces itself.
//! Marks and unmarks of one user on this node go one at a time (the user's gate in
//! `follow`), counted by channel, so a channel opening as the last one closes leaves
//! the user marked.
//!
//! A node that dies leaves its marks, which only cost announcements nobody needs; it
//! clears them as it starts again under the same id. An unmark that fails (the
//! database is down) leaves the mark the same way.
//!
//! [`PgConfig::node`]: super::PgConfig::node

use std::collections::HashMap;
use std::sync::Mutex;

use super::super::StoreError;
use super::{PgStore, seq_of};
use crate::protocol::UserId;
use crate::sync::lock;

/// The channels of each user this node holds, as far as the marks go.
#[derive(Default)]
pub(super) struct Watching(Mutex<HashMap<UserId, usize>>);

impl Watching {
    /// Counts one more channel of `user`.
    fn open(&self, user: &UserId) {
        *lock(&self.0).entry(user.clone()).or_default() += 1;
    }

    /// Counts one channel of `user` less; whether it was the last.
    fn close(&self, user: &UserId) -> bool {
        let mut counts = lock(&self.0);
        let Some(count) = counts.get_mut(user) else {
            return false;
        };
        *count -= 1;
        if *count > 0 {
            return false;
        }
        counts.remove(user);
        true
    }
}

/// Whether a batch whose users' marks are `watchers` is heard by a node other than
/// `node`.
pub(super) fn heard_elsewhere<'a>(
    mut watchers: impl Iterator<Item = &'a [String]>,
    node: &str,
) -> bool {
    watchers.any(|marks| marks.iter().any(|mark| mark != node))
}

impl PgStore {
    /// A channel of `user` opens here: the user is marked watched by this node (the
    /// first channel makes the mark; each renews it, which also mends a mark lost
    /// with a database restored from a backup), and everything committed before the
    /// mark is counted here (see the module's doc) before the channel registers. So
    /// the backlog of a channel ends at the head committed when it opened, even when
    /// this node has not heard of that head yet (a device moving here from the node
    /// that wrote it, before its announcement arrived): the change at the device's
    /// cursor is never sent again live.
    pub(super) async fn watch_user(&self, user: &UserId) -> Result<(), StoreError> {
        let gate = self.follow.gate(user);
        let _one_at_a_time = gate.lock().await;
        self.watching.open(user);
        let result = match self.mark(user).await {
            Ok(head) => self.advance_held(user, head).await,
            Err(e) => Err(e),
        };
        if result.is_err() {
            // Counted, never opened: the mark (if made) stays, which costs only.
            self.watching.close(user);
        }
        result
    }

    /// A channel of `user` closed here: the last unmarks the user.
    pub(super) async fn unwatch_user(&self, user: &UserId) {
        let gate = self.follow.gate(user);
        let _one_at_a_time = gate.lock().await;
        if !self.watching.close(user) {
            return;
        }
        let unmarked = self
            .execute(
                "UPDATE feed_heads SET watchers = array_remove(watchers, $2) WHERE user_id = $1",
                &[&user.as_str(), &self.node],
            )
            .await;
        if let Err(e) = unmarked {
            tracing::debug!(%user, error = %e, "could not unmark a user; their batches keep being announced");
        }
    }

    /// Marks `user` watched by this node (making their head if they have none) and
    /// returns their head, read under its row lock.
    async fn mark(&self, user: &UserId) -> Result<crate::protocol::Seq, StoreError> {
        let rows = self
            .rows(
                "INSERT INTO feed_heads (user_id, seq, watchers) VALUES ($1, 0, ARRAY[$2])
                 ON CONFLICT (user_id) DO UPDATE SET watchers = CASE
                     WHEN $2 = ANY(feed_heads.watchers) THEN feed_heads.watchers
                     ELSE array_append(feed_heads.watchers, $2) END
                 RETURNING seq",
                &[&user.as_str(), &self.node],
            )
            .await?;
        let row = rows.first().ok_or_else(|| {
            StoreError::Corrupt(format!("marking user {user} watched returned no head"))
        })?;
        Ok(seq_of(super::col(row, 0)?))
    }

    /// Clears the marks this node left when it last ran: it holds no channel yet.
    pub(super) async fn forget_marks(&self) -> Result<(), StoreError> {
        let cleared = self
            .execute(
                "UPDATE feed_heads SET watchers = array_remove(watchers, $1)
                 WHERE $1 = ANY(watchers)",
                &[&self.node],
            )
            .await?;
        if cleared > 0 {
            tracing::info!(users = cleared, node = %self.node, "cleared this node's marks from its last run");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_heard_only_when_another_node_watches_one_of_its_users() {
        let marks = |lists: &[&[&str]]| -> Vec<Vec<String>> {
            lists
                .iter()
                .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
                .collect()
        };
        let heard = |lists: &[&[&str]]| {
            let lists = marks(lists);
            heard_elsewhere(lists.iter().map(Vec::as_slice), "a")
        };
        assert!(!heard(&[]));
        assert!(!heard(&[&[], &["a"]]));
        assert!(heard(&[&["a"], &["a", "b"]]));
        assert!(heard(&[&["b"]]));
    }

    #[test]
    fn channels_are_counted_so_only_the_last_unmarks() {
        let watching = Watching::default();
        let user = UserId::new("u");
        watching.open(&user);
        watching.open(&user);
        assert!(!watching.close(&user));
        assert!(watching.close(&user));
        assert!(
            !watching.close(&user),
            "a close with nothing open unmarks nothing"
        );
        watching.open(&user);
        assert!(watching.close(&user));
    }
}
