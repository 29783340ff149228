//! Reading history for local apps: pages newest first with filters, and counts.
//!
//! Pages walk the `Q` (seq) index from the newest end and read each record, so the
//! newest page costs a handful of lookups however much is cached; a filter that
//! matches little walks further (bounded by the history cap).

use crate::protocol::stored::NotificationRecord;
use crate::protocol::{NotificationId, Seq, Status};

use super::{AgentStore, AgentStoreError, BY_SEQ, seq_key};

/// Which notifications a page holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this app's (`targetHostName`).
    pub app: Option<String>,
    /// Only unread ones.
    pub unread_only: bool,
    /// Only this status; `None` takes every status.
    pub status: Option<Status>,
}

impl Filter {
    /// Whether `record` belongs in the page.
    pub fn matches(&self, record: &NotificationRecord) -> bool {
        self.app
            .as_deref()
            .is_none_or(|app| record.content.target_host_name == app)
            && (!self.unread_only || record.state.is_unread())
            && self
                .status
                .is_none_or(|status| record.state.status == status)
    }
}

/// One page of history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Newest change first.
    pub records: Vec<NotificationRecord>,
    /// The `before` of the next page, when there is one.
    pub next: Option<Seq>,
}

impl AgentStore {
    /// Up to `limit` notifications matching `filter`, newest change first, whose `seq`
    /// is below `before`.
    pub fn page(
        &self,
        filter: &Filter,
        limit: usize,
        before: Option<Seq>,
    ) -> Result<Page, AgentStoreError> {
        let mut records = Vec::new();
        for record in self.walk(filter, before) {
            let record = record?;
            if records.len() == limit {
                let next = records.last().map(|r: &NotificationRecord| r.seq);
                return Ok(Page { records, next });
            }
            records.push(record);
        }
        Ok(Page {
            records,
            next: None,
        })
    }

    /// The newest `limit` notifications matching `filter`, newest change first: the
    /// walk stops at the last of them.
    pub fn newest(
        &self,
        filter: &Filter,
        limit: usize,
    ) -> Result<Vec<NotificationRecord>, AgentStoreError> {
        self.walk(filter, None).take(limit).collect()
    }

    /// The notifications matching `filter` whose `seq` is below `before`, newest change
    /// first, read one by one as the walk goes.
    fn walk<'a>(
        &'a self,
        filter: &'a Filter,
        before: Option<Seq>,
    ) -> impl Iterator<Item = Result<NotificationRecord, AgentStoreError>> + 'a {
        let end = seq_key(before.unwrap_or(Seq(u64::MAX)));
        self.cache
            .range(seq_key(Seq::ZERO)..end)
            .rev()
            .filter_map(move |entry| {
                let read = entry.map_err(AgentStoreError::from).and_then(|(_, id)| {
                    let id = NotificationId::new(String::from_utf8_lossy(&id).into_owned());
                    self.get(&id)
                });
                match read {
                    Ok(Some(record)) if filter.matches(&record) => Some(Ok(record)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                }
            })
    }

    /// Up to `limit` notifications of any kind, newest change first, below `before`.
    pub fn history(
        &self,
        limit: usize,
        before: Option<Seq>,
    ) -> Result<Vec<NotificationRecord>, AgentStoreError> {
        Ok(self.page(&Filter::default(), limit, before)?.records)
    }

    /// How many notifications are stored, counted through the `seq` index.
    pub fn len(&self) -> usize {
        self.cache.scan_prefix([BY_SEQ]).count()
    }
}
