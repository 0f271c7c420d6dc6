//! The delivery destinations' side of the outbox: reading due deliveries,
//! claiming one (a conditional write, so two instances never both act on
//! it), and settling what attempts meant — delivered (`S.`), to be tried
//! again later, or dead (`X.`, with a dead letter for the digest) — every
//! record of one lead in one entity-group transaction. Also the records
//! as the command line lists and requeues them.

use super::super::digest_state::Version;
use super::super::{pages, retrying, Failure, LeadStore, StoreError};
use super::record::{day_range, pending_destination_ranges, state_range};
use super::row::{claim_change, release_change, row_key_of, with_etag, OutboxRow};
use super::{Consumer, LeadRef, PendingDays, RecordKey, RecordState, MAX_BATCH};
use crate::domain::DestinationName;
use azure_core::{Etag, StatusCode};
use azure_data_tables::operations::TransactionBuilder;
use azure_data_tables::prelude::*;
use futures::{Stream, StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// A pending delivery, as read back (or as just written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryItem {
    pub key: RecordKey,
    pub destination: DestinationName,
    pub lead: LeadRef,
    pub enqueued_at: OffsetDateTime,
    /// Attempts that failed so far.
    pub attempts: u32,
    /// Not to be tried before this.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// Held by a delivery until then, in this batch (whose id is the
    /// idempotency key of what it sends).
    pub claimed_until: Option<OffsetDateTime>,
    pub claim_batch: Option<uuid::Uuid>,
    pub version: Version,
}

impl DeliveryItem {
    fn from_row(row: OutboxRow) -> Option<Self> {
        let Consumer::Destination(destination) = row.key.consumer.clone() else {
            return None;
        };
        (row.key.state == RecordState::Pending).then_some(())?;
        Some(Self {
            destination,
            lead: row.lead,
            enqueued_at: row.enqueued_at,
            attempts: row.attempts,
            next_attempt_at: row.next_attempt_at,
            claimed_until: row.claimed_until,
            claim_batch: row.claim_batch,
            version: row.version?,
            key: row.key,
        })
    }

    /// Read from an entity with its ETag; `None` if it is not a pending
    /// delivery.
    pub(in crate::store) fn from_entity(
        entity: &serde_json::Map<String, serde_json::Value>,
    ) -> Option<Self> {
        Self::from_row(OutboxRow::from_entity(entity)?)
    }

    fn row(&self) -> OutboxRow {
        OutboxRow {
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            claimed_until: self.claimed_until,
            claim_batch: self.claim_batch,
            version: Some(self.version.clone()),
            ..OutboxRow::pending(self.key.clone(), self.lead.clone(), self.enqueued_at)
        }
    }

    fn if_match(&self) -> IfMatchCondition {
        IfMatchCondition::Etag(Etag::from(self.version.as_str()))
    }
}

/// What an attempt means for a pending delivery, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// It becomes a delivered record.
    Delivered { status: String, at: OffsetDateTime },
    /// It becomes a dead record, and a dead letter for the digest.
    Dead {
        status: String,
        error: String,
        at: OffsetDateTime,
    },
    /// Released, to be tried again at `next`. With `keep_batch` (the
    /// receiver may have acted on it) the retry goes out in the same
    /// batch, under the same idempotency key.
    Retry {
        next: OffsetDateTime,
        status: String,
        error: String,
        keep_batch: bool,
    },
    /// Released untried, due at `next` (the hour's email budget was spent).
    Wait { next: OffsetDateTime },
}

impl RecordChange {
    /// Operations it takes in a transaction.
    fn operations(&self) -> usize {
        match self {
            Self::Delivered { .. } => 2,
            Self::Dead { .. } => 3,
            Self::Retry { .. } | Self::Wait { .. } => 1,
        }
    }
}

/// How writing one record's change went: for a record still pending, the
/// item at its new version (for the next attempt to claim without reading
/// it back).
#[derive(Debug)]
pub struct Settled {
    pub destination: DestinationName,
    pub result: Result<Option<DeliveryItem>, StoreError>,
}

/// A delivery record of any state, as the command line shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub state: RecordState,
    pub destination: String,
    pub partition: String,
    pub lead: LeadRef,
    pub enqueued_at: OffsetDateTime,
    pub attempts: u32,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    /// Delivered or given up at; for a pending one, its next attempt.
    pub at: Option<OffsetDateTime>,
}

impl DeliveryRecord {
    fn from_row(row: OutboxRow) -> Option<Self> {
        if row.key.consumer == Consumer::Digest {
            return None;
        }
        Some(Self {
            state: row.key.state,
            destination: row.key.consumer.to_string(),
            partition: row.key.partition.clone(),
            lead: row.lead,
            enqueued_at: row.enqueued_at,
            attempts: row.attempts,
            last_status: row.last_status,
            last_error: row.last_error,
            at: row.settled_at.or(row.next_attempt_at),
        })
    }
}

impl LeadStore {
    /// Every destination's pending deliveries in `days` (the digest's
    /// records are never read), a page at a time.
    pub fn pending_deliveries(
        &self,
        days: PendingDays,
    ) -> impl Stream<Item = Result<Vec<DeliveryItem>, StoreError>> + Send + 'static {
        let days_filter = day_range(days.first, days.last);
        let ranges = pending_destination_ranges().map(|range| format!("{days_filter} and {range}"));
        let leads = self.leads.clone();
        futures::stream::iter(ranges)
            .flat_map(move |filter| pages::pages(leads.clone(), filter))
            .map_ok(delivery_items)
    }

    /// One destination's pending deliveries in `days`.
    pub fn pending_deliveries_of(
        &self,
        destination: &DestinationName,
        days: PendingDays,
    ) -> impl Stream<Item = Result<Vec<DeliveryItem>, StoreError>> + Send + 'static {
        let filter = format!(
            "{} and {}",
            day_range(days.first, days.last),
            state_range(
                RecordState::Pending,
                Some(&Consumer::Destination(destination.clone()))
            )
        );
        pages::pages(self.leads.clone(), filter).map_ok(delivery_items)
    }

    /// Claims `item` for a delivery in `batch` until `until`: fails with
    /// [`StoreError::Conflict`] when another sweep changed it first.
    pub async fn claim(
        &self,
        item: &DeliveryItem,
        batch: uuid::Uuid,
        until: OffsetDateTime,
    ) -> Result<DeliveryItem, StoreError> {
        let change = claim_change(until, batch);
        let client = self
            .leads
            .partition_key_client(&item.key.partition)
            .entity_client(item.key.row_key());
        let condition = item.if_match();
        let response = retrying("claim a delivery", || async {
            client.merge(&change, condition.clone())?.await
        })
        .await
        .map_err(conflict_on_precondition)?;
        Ok(DeliveryItem {
            claimed_until: Some(until),
            claim_batch: Some(batch),
            version: Version::from_etag(response.etag.to_string()),
            ..item.clone()
        })
    }

    /// Writes what attempts meant: each item's change, conditional on the
    /// item's version. The changes of one partition (one lead's
    /// destinations, after its first attempts) go in one transaction; if
    /// that fails on one record (another instance took it), each record
    /// is written on its own so the others still land.
    pub async fn settle(&self, changes: Vec<(DeliveryItem, RecordChange)>) -> Vec<Settled> {
        let mut by_partition: BTreeMap<String, Vec<(DeliveryItem, RecordChange)>> = BTreeMap::new();
        for (item, change) in changes {
            by_partition
                .entry(item.key.partition.clone())
                .or_default()
                .push((item, change));
        }
        let mut settled = Vec::new();
        for (partition, changes) in by_partition {
            for chunk in chunks(changes) {
                match self.settle_together(&partition, &chunk).await {
                    Ok(results) => settled.extend(results),
                    Err(_) if chunk.len() > 1 => {
                        for one in chunk {
                            let alone = std::slice::from_ref(&one);
                            match self.settle_together(&partition, alone).await {
                                Ok(results) => settled.extend(results),
                                Err(e) => settled.push(Settled {
                                    destination: one.0.destination.clone(),
                                    result: Err(e),
                                }),
                            }
                        }
                    }
                    Err(e) => settled.extend(chunk.into_iter().map(|(item, _)| Settled {
                        destination: item.destination,
                        result: Err(e.clone()),
                    })),
                }
            }
        }
        settled
    }

    /// One transaction for `changes`, all in `partition`.
    async fn settle_together(
        &self,
        partition: &str,
        changes: &[(DeliveryItem, RecordChange)],
    ) -> Result<Vec<Settled>, StoreError> {
        let client = self.leads.partition_key_client(partition);
        let response = retrying("record deliveries", || async {
            let mut batch = client.transaction();
            for (item, change) in changes {
                batch = add_change(batch, item, change)?;
            }
            batch.await
        })
        .await?;
        let answers = &response.operation_responses;
        if let Some(failed) = answers.iter().find(|op| !op.status_code.is_success()) {
            return Err(if failed.status_code == StatusCode::PreconditionFailed {
                StoreError::Conflict
            } else {
                StoreError::Rejected {
                    operation: "record deliveries",
                    failure: Failure::answered(failed.status_code),
                }
            });
        }
        // Answers come in the order of the operations.
        let mut at = 0;
        let mut settled = Vec::with_capacity(changes.len());
        for (item, change) in changes {
            let still_pending = match change {
                RecordChange::Retry { .. } | RecordChange::Wait { .. } => answers
                    .get(at)
                    .and_then(|answer| answer.etag.as_ref())
                    .map(|etag| pending_after(item, change, Version::from_etag(etag.to_string()))),
                _ => None,
            };
            at += change.operations();
            settled.push(Settled {
                destination: item.destination.clone(),
                result: Ok(still_pending),
            });
        }
        Ok(settled)
    }

    /// Delivery records in `state` (of `destination`, or every
    /// destination's) in the partitions of `days`, a page at a time.
    pub fn delivery_records(
        &self,
        state: RecordState,
        destination: Option<&DestinationName>,
        days: PendingDays,
    ) -> impl Stream<Item = Result<Vec<DeliveryRecord>, StoreError>> + Send + 'static {
        let consumer = destination.map(|d| Consumer::Destination(d.clone()));
        let filter = format!(
            "{} and {}",
            day_range(days.first, days.last),
            state_range(state, consumer.as_ref())
        );
        pages::pages(self.leads.clone(), filter).map_ok(|rows| {
            rows.iter()
                .filter_map(OutboxRow::from_entity)
                .filter_map(DeliveryRecord::from_row)
                .collect()
        })
    }

    /// Every delivery record (any state) of one lead: the partitions from
    /// its receive day through `days.last`, filtered on its id.
    pub async fn delivery_records_of(
        &self,
        lead: &super::super::LeadId,
        days: PendingDays,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let filter = format!(
            "{} and LeadId eq {}",
            day_range(days.first, days.last),
            super::super::keys::odata_string(lead.as_str())
        );
        let mut found = Vec::new();
        let mut pages = std::pin::pin!(pages::pages(self.leads.clone(), filter));
        while let Some(rows) = pages.try_next().await? {
            found.extend(
                rows.iter()
                    .filter_map(OutboxRow::from_entity)
                    .filter_map(DeliveryRecord::from_row),
            );
        }
        Ok(found)
    }

    /// Puts a dead delivery back in the queue: a pending record in today's
    /// partition (attempts counted afresh), then the dead one removed, and
    /// its dead letter too if no digest has reported it yet — the
    /// delivery is no longer a failure to report.
    pub async fn requeue(
        &self,
        record: &DeliveryRecord,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let consumer = Consumer::parse(&record.destination).ok_or(StoreError::Malformed(
            "a delivery record names no destination",
        ))?;
        let partition = super::keys::partition_key(now);
        let pending = OutboxRow::pending(
            RecordKey::pending(&partition, consumer.clone(), &record.lead),
            record.lead.clone(),
            now,
        )
        .to_entity();
        match retrying("requeue a delivery", || async {
            self.leads.insert::<_, serde_json::Value>(&pending)?.await
        })
        .await
        {
            Ok(_) => {}
            // Already requeued today.
            Err(e) if e.is_status(StatusCode::Conflict) => {}
            Err(e) => return Err(e),
        }
        let dead = RecordKey {
            partition: record.partition.clone(),
            state: RecordState::Dead,
            consumer,
            lead_row_key: record.lead.row_key.clone(),
        };
        let partition_client = self.leads.partition_key_client(&record.partition);
        for (what, row_key) in [
            ("remove a dead delivery", dead.row_key()),
            ("remove a dead letter", dead.dead_letter_row_key()),
        ] {
            let client = partition_client.entity_client(row_key);
            match retrying(what, || async { client.delete().await }).await {
                Ok(_) => {}
                Err(e) if e.is_status(StatusCode::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn delivery_items(rows: Vec<serde_json::Map<String, serde_json::Value>>) -> Vec<DeliveryItem> {
    rows.iter()
        .filter_map(|row| {
            let item = DeliveryItem::from_entity(row);
            if item.is_none() {
                tracing::warn!(row_key = ?row.get("RowKey"), "an unreadable pending record; skipped");
            }
            item
        })
        .collect()
}

/// Groups changes so no transaction has more than [`MAX_BATCH`] operations.
fn chunks(changes: Vec<(DeliveryItem, RecordChange)>) -> Vec<Vec<(DeliveryItem, RecordChange)>> {
    let mut chunks: Vec<Vec<(DeliveryItem, RecordChange)>> = Vec::new();
    let mut operations = 0;
    for change in changes {
        let needs = change.1.operations();
        if chunks.is_empty() || operations + needs > MAX_BATCH {
            chunks.push(Vec::new());
            operations = 0;
        }
        operations += needs;
        if let Some(last) = chunks.last_mut() {
            last.push(change);
        }
    }
    chunks
}

fn add_change(
    batch: TransactionBuilder,
    item: &DeliveryItem,
    change: &RecordChange,
) -> azure_core::Result<TransactionBuilder> {
    let row = item.row();
    let row_key = item.key.row_key();
    match change {
        RecordChange::Delivered { status, at } => {
            let delivered = OutboxRow {
                attempts: item.attempts + 1,
                last_status: Some(status.clone()),
                ..row.settled(RecordState::Delivered, *at)
            }
            .to_entity();
            batch
                .delete(row_key, Some(item.if_match()))?
                .insert_or_replace(row_key_of(&delivered), &delivered)
        }
        RecordChange::Dead { status, error, at } => {
            let dead = OutboxRow {
                attempts: item.attempts + 1,
                last_status: Some(status.clone()),
                last_error: Some(error.clone()),
                ..row.settled(RecordState::Dead, *at)
            }
            .to_entity();
            let letter = row.dead_letter(status, error, *at).to_entity();
            batch
                .delete(row_key, Some(item.if_match()))?
                .insert_or_replace(row_key_of(&dead), &dead)?
                .insert_or_replace(row_key_of(&letter), &letter)
        }
        RecordChange::Retry {
            next,
            status,
            error,
            keep_batch,
        } => batch.merge(
            row_key,
            release_change(item.attempts + 1, *next, Some((status, error)), *keep_batch),
            Some(item.if_match()),
        ),
        RecordChange::Wait { next } => batch.merge(
            row_key,
            release_change(item.attempts, *next, None, false),
            Some(item.if_match()),
        ),
    }
}

/// The item as `change` left it, at `version`.
fn pending_after(item: &DeliveryItem, change: &RecordChange, version: Version) -> DeliveryItem {
    let (attempts, next, keep_batch) = match change {
        RecordChange::Retry {
            next, keep_batch, ..
        } => (item.attempts + 1, *next, *keep_batch),
        RecordChange::Wait { next } => (item.attempts, *next, false),
        _ => (
            item.attempts,
            item.next_attempt_at.unwrap_or(item.enqueued_at),
            false,
        ),
    };
    DeliveryItem {
        attempts,
        next_attempt_at: Some(next),
        claimed_until: Some(OffsetDateTime::UNIX_EPOCH),
        claim_batch: item.claim_batch.filter(|_| keep_batch),
        version,
        ..item.clone()
    }
}

fn conflict_on_precondition(error: StoreError) -> StoreError {
    if error.is_status(StatusCode::PreconditionFailed) {
        StoreError::Conflict
    } else {
        error
    }
}

/// A claimed item as written by ingest (its version from the transaction).
pub(in crate::store) fn written_delivery(
    entity: serde_json::Map<String, serde_json::Value>,
    etag: &str,
) -> Option<DeliveryItem> {
    DeliveryItem::from_entity(&with_etag(entity, etag))
}
