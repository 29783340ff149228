//! Key layouts of the service store's trees.
//!
//! The `notifications` tree holds two kinds of key, told apart by the first byte:
//! [`NOTE`] (user, notification id) → the notification record, and [`SEQ`] (user) → the
//! user's last `seq`, written when a purge removes records so feed positions never go
//! back. Variable-length parts are length-prefixed so no value can run into the next.

use crate::protocol::{DeviceId, NotificationId, UserId};

/// (user, notification id) → the notification record.
pub(crate) const NOTE: u8 = b'N';
/// user → the last `seq` of the user's feed (a floor kept across purges).
pub(crate) const SEQ: u8 = b'S';
/// (device, host) → UNSID, in `subs_by_device`.
const DEVICE_HOST: u8 = b'D';

/// Concatenates length-prefixed parts after a kind byte.
fn parts(kind: u8, items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + items.iter().map(|p| p.len() + 2).sum::<usize>());
    out.push(kind);
    for item in items {
        let len = u16::try_from(item.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&item[..usize::from(len)]);
    }
    out
}

/// The first part of a key, as text.
fn first_part(key: &[u8]) -> Option<String> {
    let len = usize::from(u16::from_be_bytes(key.get(1..3)?.try_into().ok()?));
    let bytes = key.get(3..3 + len)?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// Prefix of one user's keys of `kind`.
pub(crate) fn user_prefix(kind: u8, user: &UserId) -> Vec<u8> {
    parts(kind, &[user.as_str().as_bytes()])
}

/// [`NOTE`] key.
pub(crate) fn note(user: &UserId, id: &NotificationId) -> Vec<u8> {
    parts(NOTE, &[user.as_str().as_bytes(), id.as_str().as_bytes()])
}

/// The user of a [`NOTE`] key.
pub(crate) fn note_user(key: &[u8]) -> Option<UserId> {
    first_part(key).map(UserId::new)
}

/// [`SEQ`] key.
pub(crate) fn seq(user: &UserId) -> Vec<u8> {
    parts(SEQ, &[user.as_str().as_bytes()])
}

/// The user of a [`SEQ`] key.
pub(crate) fn seq_user(key: &[u8]) -> Option<UserId> {
    first_part(key).map(UserId::new)
}

/// `subs_by_device` key: (device, host).
pub(crate) fn device_host(device: &DeviceId, host: &str) -> Vec<u8> {
    parts(DEVICE_HOST, &[device.as_str().as_bytes(), host.as_bytes()])
}

/// Prefix of one device's subscriptions.
pub(crate) fn device_prefix(device: &DeviceId) -> Vec<u8> {
    parts(DEVICE_HOST, &[device.as_str().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_read_back_from_keys() {
        let user = UserId::new("u-1");
        let id = NotificationId::new("n");
        assert_eq!(note_user(&note(&user, &id)), Some(user.clone()));
        assert_eq!(seq_user(&seq(&user)), Some(user.clone()));
        assert!(note(&user, &id).starts_with(&user_prefix(NOTE, &user)));
        assert_ne!(note(&user, &id), seq(&user));
    }
}
