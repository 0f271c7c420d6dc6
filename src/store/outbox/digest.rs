//! The digest's side of the outbox: its pending records (leads to report,
//! and dead letters of destinations that gave up), stamping the ones a
//! digest run holds, and removing them once its email went out.

use super::super::digest_state::Version;
use super::super::keys::ROW_KEY;
use super::super::transaction::{commit, Op};
use super::super::{pages, LeadStore, StoreError};
use super::record::{day_range, state_range};
use super::row::{digest_run_change, stamped_by, OutboxRow};
use super::{Consumer, DeadLetter, LeadRef, PendingDays, RecordKey, RecordState, MAX_BATCH};
use azure_core::StatusCode;
use futures::{Stream, TryStreamExt};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A pending digest record, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestItem {
    pub key: RecordKey,
    pub lead: LeadRef,
    pub enqueued_at: OffsetDateTime,
    /// A destination that gave up on this lead; `None` for a lead to report.
    pub dead_letter: Option<DeadLetter>,
    /// The digest run that holds this record.
    pub digest_run: Option<uuid::Uuid>,
    version: Version,
    row_key: String,
}

impl DigestItem {
    fn from_row(row: OutboxRow) -> Option<Self> {
        if row.key.consumer != Consumer::Digest || row.key.state != RecordState::Pending {
            return None;
        }
        Some(Self {
            row_key: row.row_key(),
            lead: row.lead,
            enqueued_at: row.enqueued_at,
            dead_letter: row.dead_letter,
            digest_run: row.digest_run,
            version: row.version?,
            key: row.key,
        })
    }
}

/// The digest's side of the outbox, all the digest run reads and writes
/// of its records: the pending ones, stamping those a run holds, removing
/// those it reported.
#[derive(Clone, Copy)]
pub struct DigestQueue<'a> {
    store: &'a LeadStore,
}

impl LeadStore {
    /// The outbox as the digest sees it.
    pub fn digest_queue(&self) -> DigestQueue<'_> {
        DigestQueue { store: self }
    }
}

impl DigestQueue<'_> {
    /// The digest's pending records in `days`, a page at a time; only
    /// those stamped by `run` when given.
    pub fn pending(
        &self,
        days: PendingDays,
        run: Option<uuid::Uuid>,
    ) -> impl Stream<Item = Result<Vec<DigestItem>, StoreError>> + Send + 'static {
        let mut filter = format!(
            "{} and {}",
            day_range(days.first, days.last),
            state_range(RecordState::Pending, Some(&Consumer::Digest))
        );
        if let Some(run) = run {
            filter = format!("{filter} and {}", stamped_by(run));
        }
        pages::pages(self.store.leads.clone(), filter).map_ok(|rows| {
            rows.iter()
                .filter_map(|row| {
                    let item = OutboxRow::from_entity(row).and_then(DigestItem::from_row);
                    if item.is_none() {
                        tracing::warn!(row_key = ?row.get(ROW_KEY), "an unreadable digest record; skipped");
                    }
                    item
                })
                .collect()
        })
    }

    /// Stamps each of `items` with `run_id` (the digest run that holds
    /// them), provided none changed since it was read.
    pub async fn stamp(&self, items: &[DigestItem], run_id: uuid::Uuid) -> Result<(), StoreError> {
        let stamp = digest_run_change(run_id);
        self.batched(items, "stamp pending records", |item| Op::Merge {
            row_key: item.row_key.clone(),
            columns: stamp.clone(),
            if_match: Some(item.version.clone()),
        })
        .await
    }

    /// Removes digest records (the digest reported them).
    pub async fn remove(&self, items: &[DigestItem]) -> Result<(), StoreError> {
        // Whatever changed since: the digest reported it.
        self.batched(items, "remove reported records", |item| Op::Delete {
            row_key: item.row_key.clone(),
            if_match: None,
        })
        .await
    }

    /// Writes `op` of every item, grouped into entity-group transactions of
    /// one partition and at most [`MAX_BATCH`] operations.
    async fn batched(
        &self,
        items: &[DigestItem],
        operation: &'static str,
        op: impl Fn(&DigestItem) -> Op,
    ) -> Result<(), StoreError> {
        let mut by_partition: BTreeMap<&str, Vec<&DigestItem>> = BTreeMap::new();
        for item in items {
            by_partition
                .entry(&item.key.partition)
                .or_default()
                .push(item);
        }
        for (partition, items) in by_partition {
            let partition = self.store.leads_partition(partition);
            for chunk in items.chunks(MAX_BATCH) {
                let ops: Vec<Op> = chunk.iter().map(|item| op(item)).collect();
                commit(partition, operation, &ops)
                    .await
                    .map_err(|e| e.conflict_on(&[StatusCode::PreconditionFailed]))?;
            }
        }
        Ok(())
    }
}
