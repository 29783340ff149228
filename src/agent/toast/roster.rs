//! Which toasts a presenter has out (on screen, or in the notification centre), each
//! with the generation of its latest showing and the presenter's own handle on it
//! (`T`), oldest first for the [`MAX_LIVE`] cap.
//!
//! Pure bookkeeping, so it is tested on every platform; both desktop presenters keep
//! one under a lock and ask it before every call to the desktop (Linux keeps the
//! server's toast id and the task waiting for its answer in `T`; Windows needs
//! nothing). A generation tells a toast's newer showing from an older one: an event of
//! a toast replaced since is stale and is ignored. Generation 0 marks a toast adopted
//! from a previous agent.

use std::collections::{HashMap, VecDeque};

use crate::protocol::NotificationId;

use super::MAX_LIVE;

/// The generation of toasts a previous agent left.
const ADOPTED: u64 = 0;

/// The toasts out, by notification.
#[derive(Debug)]
pub struct Roster<T = ()> {
    out: HashMap<NotificationId, Out<T>>,
    order: VecDeque<NotificationId>,
}

/// One toast out.
#[derive(Debug)]
struct Out<T> {
    generation: u64,
    toast: T,
}

impl<T> Default for Roster<T> {
    fn default() -> Self {
        Self {
            out: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<T: Default> Roster<T> {
    /// A roster holding the toasts a previous agent left.
    pub fn adopting(toasts: impl IntoIterator<Item = (NotificationId, T)>) -> Self {
        let mut roster = Self::default();
        for (id, toast) in toasts {
            let out = Out {
                generation: ADOPTED,
                toast,
            };
            if roster.out.insert(id.clone(), out).is_none() {
                roster.order.push_back(id);
            }
        }
        roster
    }

    /// Records showing `generation` of `id`: a new toast (with a default `T`), or its
    /// toast replaced in place (keeping its `T`, for the presenter to update); returns
    /// the oldest toast to close when that goes over the cap.
    pub fn show(&mut self, id: &NotificationId, generation: u64) -> Option<(NotificationId, T)> {
        if let Some(out) = self.out.get_mut(id) {
            out.generation = generation;
        } else {
            let toast = T::default();
            self.out.insert(id.clone(), Out { generation, toast });
            self.order.push_back(id.clone());
        }
        if self.order.len() <= MAX_LIVE {
            return None;
        }
        let oldest = self.order.pop_front()?;
        let out = self.out.remove(&oldest)?;
        Some((oldest, out.toast))
    }
}

impl<T> Roster<T> {
    /// Forgets `id`; its toast, if it had one out (and so one to close).
    pub fn close(&mut self, id: &NotificationId) -> Option<T> {
        let out = self.out.remove(id)?;
        self.order.retain(|other| other != id);
        Some(out.toast)
    }

    /// Forgets `id` if `generation` is still its latest showing (the toast's own event:
    /// handled by the user, or failed); its toast if it was (a stale event gets none).
    pub fn finish(&mut self, id: &NotificationId, generation: u64) -> Option<T> {
        if self.generation(id) == Some(generation) {
            self.close(id)
        } else {
            None
        }
    }

    /// The generation of `id`'s latest showing, if it has a toast out.
    pub fn generation(&self, id: &NotificationId) -> Option<u64> {
        self.out.get(id).map(|out| out.generation)
    }

    /// `id`'s toast, if one is out.
    #[cfg_attr(windows, allow(dead_code))] // the Windows presenter keeps no handles
    pub fn get(&self, id: &NotificationId) -> Option<&T> {
        self.out.get(id).map(|out| &out.toast)
    }

    /// `id`'s toast, if one is out, to update.
    #[cfg_attr(windows, allow(dead_code))] // the Windows presenter keeps no handles
    pub fn get_mut(&mut self, id: &NotificationId) -> Option<&mut T> {
        self.out.get_mut(id).map(|out| &mut out.toast)
    }

    /// `id`'s toast if `generation` is still its latest showing.
    #[cfg_attr(windows, allow(dead_code))] // the Windows presenter keeps no handles
    pub fn current_mut(&mut self, id: &NotificationId, generation: u64) -> Option<&mut T> {
        self.out
            .get_mut(id)
            .filter(|out| out.generation == generation)
            .map(|out| &mut out.toast)
    }

    /// Whether `id` has a toast out.
    pub fn contains(&self, id: &NotificationId) -> bool {
        self.out.contains_key(id)
    }

    /// Whether `id`'s toast was left by a previous agent and not shown again since.
    pub fn is_adopted(&self, id: &NotificationId) -> bool {
        self.generation(id) == Some(ADOPTED)
    }

    /// The adopted toasts not shown again or closed yet, oldest first.
    pub fn adopted(&self) -> Vec<NotificationId> {
        self.order
            .iter()
            .filter(|id| self.is_adopted(id))
            .cloned()
            .collect()
    }

    /// Every toast out, oldest first.
    #[cfg_attr(windows, allow(dead_code))] // the Windows presenter keeps no handles
    pub fn iter(&self) -> impl Iterator<Item = (&NotificationId, &T)> {
        self.order
            .iter()
            .filter_map(|id| self.out.get(id).map(|out| (id, &out.toast)))
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
        let mut roster = Roster::<()>::default();
        for n in 0..MAX_LIVE {
            assert_eq!(roster.show(&id(n), n as u64 + 1), None);
        }
        // A replace in place is not a new toast: nothing is evicted.
        assert_eq!(roster.show(&id(0), 100), None);
        assert_eq!(roster.show(&id(MAX_LIVE), 101), Some((id(0), ())));
        assert!(!roster.contains(&id(0)));
        assert_eq!(roster.show(&id(MAX_LIVE + 1), 102), Some((id(1), ())));
        let order: Vec<_> = roster.iter().map(|(id, ())| id.clone()).collect();
        assert_eq!(order.first(), Some(&id(2)));
        assert_eq!(order.last(), Some(&id(MAX_LIVE + 1)));
    }

    #[test]
    fn a_toast_keeps_its_handle_when_replaced_and_gives_it_back_when_closed() {
        let mut roster = Roster::<Option<usize>>::default();
        roster.show(&id(1), 1);
        *roster.current_mut(&id(1), 1).unwrap() = Some(7);
        roster.show(&id(1), 2);
        assert_eq!(roster.get(&id(1)), Some(&Some(7)), "replaced in place");
        assert!(roster.current_mut(&id(1), 1).is_none(), "an older showing");
        assert_eq!(roster.close(&id(1)), Some(Some(7)));
        for n in 0..=MAX_LIVE {
            roster.show(&id(n), 10);
            *roster.get_mut(&id(n)).unwrap() = Some(n);
        }
        assert_eq!(
            roster.show(&id(99), 11),
            Some((id(1), Some(1))),
            "the evicted handle"
        );
    }

    #[test]
    fn a_stale_event_is_ignored() {
        let mut roster = Roster::<()>::default();
        roster.show(&id(1), 1);
        roster.show(&id(1), 2);
        assert_eq!(roster.finish(&id(1), 1), None, "the replaced toast's event");
        assert!(roster.contains(&id(1)));
        assert_eq!(roster.finish(&id(1), 2), Some(()));
        assert!(!roster.contains(&id(1)));
        assert_eq!(roster.finish(&id(1), 2), None, "only once");
    }

    #[test]
    fn close_reports_whether_a_toast_was_out() {
        let mut roster = Roster::<()>::default();
        assert_eq!(roster.close(&id(1)), None);
        roster.show(&id(1), 1);
        assert_eq!(roster.close(&id(1)), Some(()));
        assert_eq!(roster.close(&id(1)), None);
        // A closed toast's late event reports nothing.
        assert_eq!(roster.finish(&id(1), 1), None);
    }

    #[test]
    fn adopted_toasts_until_shown_again_or_closed() {
        let mut roster = Roster::adopting([(id(1), 11), (id(2), 12), (id(3), 13), (id(1), 14)]);
        assert_eq!(roster.adopted(), [id(1), id(2), id(3)]);
        assert_eq!(roster.get(&id(1)), Some(&14), "the latest entry counts");
        assert!(roster.is_adopted(&id(2)));
        roster.show(&id(2), 5);
        assert!(!roster.is_adopted(&id(2)));
        assert_eq!(roster.get(&id(2)), Some(&12), "re-shown in place");
        roster.close(&id(3));
        assert_eq!(roster.adopted(), [id(1)]);
        assert!(roster.contains(&id(2)));
    }
}
