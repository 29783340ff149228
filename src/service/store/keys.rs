//! Key layouts of the service store's trees.
//!
//! Variable-length parts are length-prefixed so no value can run into the next part;
//! numbers are big-endian so byte order is numeric order and range scans follow `seq`
//! and time.

use crate::protocol::{DeviceId, NotificationId, Seq, Timestamp, UserId};

/// Concatenates length-prefixed parts.
fn parts(items: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.iter().map(|p| p.len() + 2).sum());
    for item in items {
        let len = u16::try_from(item.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&item[..usize::from(len)]);
    }
    out
}

/// Prefix of everything of one user in a per-user tree.
pub(crate) fn user_prefix(user: &UserId) -> Vec<u8> {
    parts(&[user.as_str().as_bytes()])
}

/// `notes`: (user, notification id).
pub(crate) fn note(user: &UserId, id: &NotificationId) -> Vec<u8> {
    parts(&[user.as_str().as_bytes(), id.as_str().as_bytes()])
}

/// `feed`: (user, seq).
pub(crate) fn feed(user: &UserId, seq: Seq) -> Vec<u8> {
    let mut key = user_prefix(user);
    key.extend_from_slice(&seq.0.to_be_bytes());
    key
}

/// The `seq` at the end of a `feed` key.
pub(crate) fn feed_seq(key: &[u8]) -> Option<Seq> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(Seq(u64::from_be_bytes(tail)))
}

/// `app_ids`: (user, host, appNotificationId).
pub(crate) fn app_id(user: &UserId, host: &str, app_notification_id: &str) -> Vec<u8> {
    parts(&[
        user.as_str().as_bytes(),
        host.as_bytes(),
        app_notification_id.as_bytes(),
    ])
}

/// `expiry`: (expiry time, user, notification id), so a scan from the start finds the
/// earliest expiries first.
pub(crate) fn expiry(at: Timestamp, user: &UserId, id: &NotificationId) -> Vec<u8> {
    let mut key = order_preserving(at.as_millis()).to_be_bytes().to_vec();
    key.extend_from_slice(&note(user, id));
    key
}

/// The time at the start of an `expiry` key, and the `notes` key after it.
pub(crate) fn split_expiry(key: &[u8]) -> Option<(Timestamp, &[u8])> {
    let head: [u8; 8] = key.get(..8)?.try_into().ok()?;
    let millis = u64::from_be_bytes(head) ^ (1 << 63);
    Some((Timestamp::from_millis(millis.cast_signed()), &key[8..]))
}

/// Maps i64 to u64 keeping order (flip the sign bit).
fn order_preserving(value: i64) -> u64 {
    value.cast_unsigned() ^ (1 << 63)
}

/// `subs_by_device`: (device, host).
pub(crate) fn device_host(device: &DeviceId, host: &str) -> Vec<u8> {
    parts(&[device.as_str().as_bytes(), host.as_bytes()])
}

/// Prefix of one device's subscriptions.
pub(crate) fn device_prefix(device: &DeviceId) -> Vec<u8> {
    parts(&[device.as_str().as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feed_keys_sort_by_seq_and_round_trip() {
        let user = UserId::new("u");
        assert!(feed(&user, Seq(2)) < feed(&user, Seq(10)));
        assert_eq!(feed_seq(&feed(&user, Seq(258))), Some(Seq(258)));
    }

    #[test]
    fn expiry_keys_sort_by_time_and_round_trip() {
        let user = UserId::new("u");
        let id = NotificationId::new("n");
        let early = expiry(Timestamp::from_millis(-5), &user, &id);
        let late = expiry(Timestamp::from_millis(1_000), &user, &id);
        assert!(early < late);
        let (at, rest) = split_expiry(&late).unwrap();
        assert_eq!(at, Timestamp::from_millis(1_000));
        assert_eq!(rest, note(&user, &id).as_slice());
    }
}
