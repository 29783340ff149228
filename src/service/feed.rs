//! What one device sees of its user's feed: notifications of apps it subscribed to (and
//! the user's own notes, host `localhost`), targeting its platform, not expired.
//! Used by the REST feed and by the channel's backlog and live changes alike.

use crate::protocol::validate::LOCAL_HOST_NAME;
use crate::protocol::{FeedItem, Notification, Seq, Timestamp};

use super::store::{DeviceRecord, Store, StoreError};

/// Feed entries scanned per store call.
const SCAN_CHUNK: usize = 256;

/// Whether `device` should receive this state of `notification`.
pub async fn visible(
    store: &dyn Store,
    device: &DeviceRecord,
    notification: &Notification,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let content = &notification.content;
    if notification.is_expired(now) || !content.target_policy.targets(device.platform) {
        return Ok(false);
    }
    if content.target_host_name == LOCAL_HOST_NAME {
        return Ok(true);
    }
    store
        .is_subscribed(&device.id, &content.target_host_name, now)
        .await
}

/// One page of the device's feed: up to `top` visible items with `seq` in
/// (`after`, `upto`], in `seq` order, and the last `seq` examined (to continue from).
pub async fn page(
    store: &dyn Store,
    device: &DeviceRecord,
    after: Seq,
    upto: Option<Seq>,
    top: usize,
    now: Timestamp,
) -> Result<(Vec<FeedItem>, Seq), StoreError> {
    let mut items = Vec::new();
    let mut cursor = after;
    while items.len() < top {
        let scan = store
            .feed_scan(&device.user, cursor, upto, SCAN_CHUNK)
            .await?;
        let Some(last) = scan.last_scanned else { break };
        for record in scan.records {
            let notification = record.to_notification();
            if visible(store, device, &notification, now).await? {
                items.push(FeedItem {
                    seq: record.seq,
                    notification,
                });
                if items.len() == top {
                    return Ok((items, record.seq));
                }
            }
        }
        cursor = last;
    }
    Ok((items, cursor))
}
