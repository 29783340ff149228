//! What one device sees of its user's feed: notifications of apps it subscribed to (and
//! the user's own notes, host `localhost`), targeting its platform, not expired.
//! Used by the REST feed and by the channel's backlog and live changes alike.

use crate::protocol::validate::LOCAL_HOST_NAME;
use crate::protocol::{FeedItem, Notification, Seq, Timestamp};

use super::store::{DeviceRecord, Store, StoreError};

/// Feed entries scanned per store call (a chunk of maximal notifications is a few MiB).
const SCAN_CHUNK: usize = 64;

/// How much one page may hold: items, and bytes of their JSON. A page ends at
/// whichever comes first, with at least one item.
#[derive(Clone, Copy, Debug)]
pub struct PageLimit {
    /// Items at most.
    pub items: usize,
    /// Bytes of JSON at most (past it the page ends after the item that passed it).
    pub bytes: usize,
}

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

/// One page of a device's feed.
#[derive(Debug, Default)]
pub struct Page {
    /// Visible items, in `seq` order.
    pub items: Vec<FeedItem>,
    /// The last `seq` examined (to continue from).
    pub last: Seq,
    /// Whether the page ended at its limit (more may follow), not at the feed's end.
    pub full: bool,
}

/// One page of the device's feed: visible items with `seq` in (`after`, `upto`], in
/// `seq` order, within `limit`.
pub async fn page(
    store: &dyn Store,
    device: &DeviceRecord,
    after: Seq,
    upto: Option<Seq>,
    limit: PageLimit,
    now: Timestamp,
) -> Result<Page, StoreError> {
    let mut page = Page {
        last: after,
        ..Page::default()
    };
    let mut bytes = 0;
    while page.items.len() < limit.items {
        let scan = store
            .feed_scan(&device.user, page.last, upto, SCAN_CHUNK)
            .await?;
        let Some(last) = scan.last_scanned else { break };
        for record in scan.records {
            let seq = record.seq;
            let notification = record.into_notification();
            if visible(store, device, &notification, now).await? {
                let item = FeedItem { seq, notification };
                if limit.bytes < usize::MAX {
                    bytes += crate::protocol::json_len(&item);
                }
                page.items.push(item);
                if page.items.len() == limit.items || bytes >= limit.bytes {
                    page.last = seq;
                    page.full = true;
                    return Ok(page);
                }
            }
        }
        page.last = last;
    }
    Ok(page)
}
