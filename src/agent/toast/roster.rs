//! Which toasts a presenter has out (on screen, or in the notification centre), each
//! with the generation of its latest showing, oldest first for the [`MAX_LIVE`] cap.
//!
//! Pure bookkeeping, so it is tested on every platform; the Windows presenter keeps
//! one under a lock and asks it before every WinRT call. A generation tells a toast's
//! newer showing from an older one: an event of a toast replaced since is stale and
//! is ignored. Generation 0 marks a toast adopted from a previous agent.

use std::collections::{HashMap, VecDeque};

use crate::protocol::NotificationId;

use super::MAX_LIVE;

/// The generation of toasts a previous agent left.
const ADOPTED: u64 = 0;

/// The toasts out, by notification.
#[derive(Debug, Default)]
pub struct Roster {
    generations: HashMap<NotificationId, u64>,
    order: VecDeque<NotificationId>,
}

impl Roster {
    /// A roster holding the toasts a previous agent left.
    pub fn adopting(ids: impl IntoIterator<Item = NotificationId>) -> Self {
        let mut roster = Self::default();
        for id in ids {
            if roster.generations.insert(id.clone(), ADOPTED).is_none() {
                roster.order.push_back(id);
            }
        }
        roster
    }

    /// Records showing `generation` of `id` (new, or replacing its toast in place);
    /// returns the oldest toast to close when that goes over the cap.
    pub fn show(&mut self, id: &NotificationId, generation: u64) -> Option<NotificationId> {
        if self.generations.insert(id.clone(), generation).is_none() {
            self.order.push_back(id.clone());
        }
        if self.order.len() <= MAX_LIVE {
            return None;
        }
        let oldest = self.order.pop_front()?;
        self.generations.remove(&oldest);
        Some(oldest)
    }

    /// Forgets `id`; whether it had a toast out (and so one to close).
    pub fn close(&mut self, id: &NotificationId) -> bool {
        if self.generations.remove(id).is_none() {
            return false;
        }
        self.order.retain(|other| other != id);
        true
    }

    /// Forgets `id` if `generation` is still its latest showing (the toast's own event:
    /// handled by the user, or failed); whether it was (a stale event reports nothing).
    pub fn finish(&mut self, id: &NotificationId, generation: u64) -> bool {
        self.generations.get(id) == Some(&generation) && self.close(id)
    }

    /// Whether `id` has a toast out.
    pub fn contains(&self, id: &NotificationId) -> bool {
        self.generations.contains_key(id)
    }

    /// Whether `id`'s toast was left by a previous agent and not shown again since.
    pub fn is_adopted(&self, id: &NotificationId) -> bool {
        self.generations.get(id) == Some(&ADOPTED)
    }

    /// The adopted toasts not shown again or closed yet.
    pub fn adopted(&self) -> Vec<NotificationId> {
        self.order
            .iter()
            .filter(|id| self.is_adopted(id))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> NotificationId {
        NotificationId::new(format!("n{n}"))
    }

    #[test]
    fn the_oldest_goes_over_the_cap_and_a_replace_keeps_its_place() {
        let mut roster = Roster::default();
        for n in 0..MAX_LIVE {
            assert_eq!(roster.show(&id(n), n as u64 + 1), None);
        }
        // A replace in place is not a new toast: nothing is evicted.
        assert_eq!(roster.show(&id(0), 100), None);
        assert_eq!(roster.show(&id(MAX_LIVE), 101), Some(id(0)));
        assert!(!roster.contains(&id(0)));
        assert_eq!(roster.show(&id(MAX_LIVE + 1), 102), Some(id(1)));
    }

    #[test]
    fn a_stale_event_is_ignored() {
        let mut roster = Roster::default();
        roster.show(&id(1), 1);
        roster.show(&id(1), 2);
        assert!(!roster.finish(&id(1), 1), "the replaced toast's event");
        assert!(roster.contains(&id(1)));
        assert!(roster.finish(&id(1), 2));
        assert!(!roster.contains(&id(1)));
        assert!(!roster.finish(&id(1), 2), "only once");
    }

    #[test]
    fn close_reports_whether_a_toast_was_out() {
        let mut roster = Roster::default();
        assert!(!roster.close(&id(1)));
        roster.show(&id(1), 1);
        assert!(roster.close(&id(1)));
        assert!(!roster.close(&id(1)));
        // A closed toast's late event reports nothing.
        assert!(!roster.finish(&id(1), 1));
    }

    #[test]
    fn adopted_toasts_until_shown_again_or_closed() {
        let mut roster = Roster::adopting([id(1), id(2), id(3), id(1)]);
        assert_eq!(roster.adopted(), [id(1), id(2), id(3)]);
        assert!(roster.is_adopted(&id(2)));
        roster.show(&id(2), 5);
        assert!(!roster.is_adopted(&id(2)));
        roster.close(&id(3));
        assert_eq!(roster.adopted(), [id(1)]);
        assert!(roster.contains(&id(2)));
    }
}
