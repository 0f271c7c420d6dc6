//! The delivery destinations' side of the outbox: reading due deliveries,
//! claiming one (a conditional write, so two instances never both act on
//! it), and settling what attempts meant — delivered (`S.`), to be tried
//! again later, or dead (`X.`, with a dead letter for the digest) — every
//! record of one lead in one entity-group transaction — and unpacking a
//! new lead's bundle of deliveries ([`super::bundle`]) with their first
//! outcomes, or untouched for the sweep.

use super::super::digest_state::Version;
use super::super::{pages, retrying, Failure, LeadStore, StoreError};
use super::bundle::{is_bundle, Bundle};
use super::record::{day_range, pending_destination_ranges, state_range};
use super::row::{claim_change, release_change, row_key_of, with_etag, OutboxRow};
use super::{Consumer, LeadRef, PendingDays, RecordKey, RecordState, MAX_BATCH};
use crate::domain::DestinationName;
use azure_core::{Etag, StatusCode};
use azure_data_tables::operations::TransactionBuilder;
use azure_data_tables::prelude::*;
use futures::{Stream, StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
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
    /// Still inside its lead's bundle (at the bundle's version), not yet a
    /// record of its own: settling it unpacks the bundle.
    pub bundle: Option<Arc<Bundle>>,
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
            bundle: None,
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

    /// Each of `bundle`'s deliveries as the record it becomes once
    /// unpacked, at the bundle's version: what a first attempt works on.
    pub fn bundled(bundle: Bundle) -> Vec<Self> {
        let bundle = Arc::new(bundle);
        bundle
            .deliveries
            .iter()
            .map(|bundled| {
                let (claimed_until, claim_batch) = bundled.claim.unzip();
                Self {
                    key: bundle.record_key(&bundled.destination),
                    destination: bundled.destination.clone(),
                    lead: bundle.lead.clone(),
                    enqueued_at: bundle.enqueued_at,
                    attempts: 0,
                    next_attempt_at: None,
                    claimed_until,
                    claim_batch,
                    version: bundle
                        .version
                        .clone()
                        .unwrap_or_else(|| Version::from_etag("")),
                    bundle: Some(bundle.clone()),
                }
            })
            .collect()
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
/// it back). It carries the item and change it is about, so a caller never
/// pairs results with its own list by position.
#[derive(Debug)]
pub struct Settled {
    /// The delivery as it was before the change.
    pub item: DeliveryItem,
    pub change: RecordChange,
    pub result: Result<Option<DeliveryItem>, StoreError>,
}

impl Settled {
    fn failed(item: DeliveryItem, change: RecordChange, error: StoreError) -> Self {
        Self {
            item,
            change,
            result: Err(error),
        }
    }
}

/// What [`LeadStore::settle_some`] wrote: each change's result, and the
/// bundled deliveries no change named, now pending records of their own
/// (at their new versions) — those whose attempts are still running.
#[derive(Debug, Default)]
pub struct Settlement {
    pub settled: Vec<Settled>,
    pub unpacked: Vec<DeliveryItem>,
}

/// A page of pending deliveries: records of their own, and bundles (each
/// several deliveries of one new lead).
#[derive(Debug, Default)]
pub struct PendingPage {
    pub items: Vec<DeliveryItem>,
    pub bundles: Vec<Bundle>,
}

impl LeadStore {
    /// Every destination's pending deliveries in `days` (the digest's
    /// records are never read), a page at a time.
    pub fn pending_deliveries(
        &self,
        days: PendingDays,
    ) -> impl Stream<Item = Result<PendingPage, StoreError>> + Send + 'static {
        let days_filter = day_range(days.first, days.last);
        let ranges = pending_destination_ranges().map(|range| format!("{days_filter} and {range}"));
        let leads = self.leads.clone();
        futures::stream::iter(ranges)
            .flat_map(move |filter| pages::pages(leads.clone(), filter))
            .map_ok(|rows| {
                let (bundles, rows): (Vec<_>, Vec<_>) = rows
                    .into_iter()
                    .partition(|row| is_bundle(&row_key_of(row)));
                PendingPage {
                    items: delivery_items(rows),
                    bundles: bundles.iter().filter_map(bundle_of).collect(),
                }
            })
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
        if item.bundle.is_some() {
            // Only its first attempt or an unpacking sweep acts on it.
            return Err(StoreError::Malformed("a claim on a delivery still bundled"));
        }
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
            bundle: None,
            ..item.clone()
        })
    }

    /// Writes what attempts meant: each item's change, conditional on the
    /// item's version. The changes of one partition (one lead's
    /// destinations, after its first attempts) go in one transaction; if
    /// that fails on one record (another instance took it), each record
    /// is written on its own so the others still land.
    pub async fn settle(&self, changes: Vec<(DeliveryItem, RecordChange)>) -> Vec<Settled> {
        self.settle_some(changes).await.settled
    }

    /// As [`LeadStore::settle`], when some deliveries of a bundle are still
    /// being attempted: the bundle is unpacked with the changes known, and
    /// its other deliveries come back as pending records of their own, to
    /// be settled as such once their attempts end.
    pub async fn settle_some(&self, changes: Vec<(DeliveryItem, RecordChange)>) -> Settlement {
        type Changes = Vec<(DeliveryItem, RecordChange)>;
        let mut by_partition: BTreeMap<String, Changes> = BTreeMap::new();
        let mut by_bundle: BTreeMap<(String, String), (Arc<Bundle>, Changes)> = BTreeMap::new();
        for (item, change) in changes {
            match item.bundle.clone() {
                Some(bundle) => {
                    let key = (bundle.lead.partition.clone(), bundle.row_key());
                    by_bundle
                        .entry(key)
                        .or_insert_with(|| (bundle, Vec::new()))
                        .1
                        .push((item, change));
                }
                None => by_partition
                    .entry(item.key.partition.clone())
                    .or_default()
                    .push((item, change)),
            }
        }
        let mut settlement = Settlement::default();
        // A bundle's outcomes land together or not at all: its delete is
        // conditional, so only one writer ever unpacks it.
        for (bundle, changes) in by_bundle.into_values() {
            match self.unpack_with(&bundle, &changes).await {
                Ok((results, untouched)) => {
                    settlement.settled.extend(results);
                    settlement.unpacked.extend(untouched);
                }
                Err(e) => settlement.settled.extend(
                    changes
                        .into_iter()
                        .map(|(item, change)| Settled::failed(item, change, e.clone())),
                ),
            }
        }
        for (partition, changes) in by_partition {
            for chunk in chunks(changes) {
                match self.settle_together(&partition, &chunk).await {
                    Ok(results) => settlement.settled.extend(results),
                    Err(_) if chunk.len() > 1 => {
                        for one in chunk {
                            let alone = std::slice::from_ref(&one);
                            match self.settle_together(&partition, alone).await {
                                Ok(results) => settlement.settled.extend(results),
                                Err(e) => settlement.settled.push(Settled::failed(one.0, one.1, e)),
                            }
                        }
                    }
                    Err(e) => settlement.settled.extend(
                        chunk
                            .into_iter()
                            .map(|(item, change)| Settled::failed(item, change, e.clone())),
                    ),
                }
            }
        }
        settlement
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
                item: item.clone(),
                change: change.clone(),
                result: Ok(still_pending),
            });
        }
        Ok(settled)
    }

    /// Unpacks `bundle` untouched: each of its deliveries becomes a
    /// pending record of its own (see [`super::bundle`]), given back at
    /// its version. Fails with [`StoreError::Conflict`] when another
    /// writer unpacked it first.
    pub async fn unpack(&self, bundle: &Bundle) -> Result<Vec<DeliveryItem>, StoreError> {
        self.unpack_with(bundle, &[]).await.map(|(_, rest)| rest)
    }

    /// One transaction: `bundle` removed (on its version) and each of its
    /// deliveries written as `changes` says, or as it was when no change
    /// names it. Gives back how each change went and the untouched
    /// deliveries as pending items.
    ///
    /// A delivery that already has a pending record of its own (written by
    /// a version that did not see bundles when it backfilled) is left to
    /// that record: its insert would fail the whole transaction, holding
    /// every other destination of the lead back.
    async fn unpack_with(
        &self,
        bundle: &Bundle,
        changes: &[(DeliveryItem, RecordChange)],
    ) -> Result<(Vec<Settled>, Vec<DeliveryItem>), StoreError> {
        let mut kept_apart = std::collections::BTreeSet::new();
        loop {
            match self.unpack_once(bundle, changes, &kept_apart).await {
                Err(StoreError::Rejected { failure, .. })
                    if failure.status == Some(StatusCode::Conflict) =>
                {
                    let own = self.own_pending_records(bundle).await?;
                    let new: Vec<_> = own.difference(&kept_apart).cloned().collect();
                    if new.is_empty() {
                        return Err(StoreError::Rejected {
                            operation: "unpack a lead's deliveries",
                            failure,
                        });
                    }
                    tracing::warn!(
                        lead_id = %bundle.lead.id, destinations = ?new,
                        "a bundled delivery already has a record of its own; that record keeps it"
                    );
                    kept_apart.extend(new);
                }
                other => return other,
            }
        }
    }

    /// The destinations of `bundle` that have a pending record of their
    /// own beside it.
    async fn own_pending_records(
        &self,
        bundle: &Bundle,
    ) -> Result<std::collections::BTreeSet<DestinationName>, StoreError> {
        let partition = self.leads.partition_key_client(&bundle.lead.partition);
        let mut found = std::collections::BTreeSet::new();
        for bundled in &bundle.deliveries {
            let key = bundle.record_key(&bundled.destination).row_key();
            let client = partition.entity_client(key);
            let exists = retrying("read a delivery's record", || async {
                match client
                    .get::<serde_json::Map<String, serde_json::Value>>()
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e) if super::super::status_of(&e) == Some(StatusCode::NotFound) => {
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
            if exists {
                found.insert(bundled.destination.clone());
            }
        }
        Ok(found)
    }

    async fn unpack_once(
        &self,
        bundle: &Bundle,
        changes: &[(DeliveryItem, RecordChange)],
        kept_apart: &std::collections::BTreeSet<DestinationName>,
    ) -> Result<(Vec<Settled>, Vec<DeliveryItem>), StoreError> {
        let version = bundle
            .version
            .as_ref()
            .ok_or(StoreError::Malformed("a bundle without its version"))?;
        let change_of = |destination: &DestinationName| {
            changes
                .iter()
                .find(|(item, _)| &item.destination == destination)
                .map(|(_, change)| change)
        };
        // What each bundled delivery becomes, in the transaction's order.
        let written: Vec<(DestinationName, Vec<OutboxRow>, Option<&RecordChange>)> = bundle
            .deliveries
            .iter()
            .filter(|bundled| !kept_apart.contains(&bundled.destination))
            .map(|bundled| {
                let row = bundle.unpacked_row(bundled);
                let change = change_of(&bundled.destination);
                let rows = match change {
                    Some(change) => rows_after(&row, 0, change),
                    None => vec![row],
                };
                (bundled.destination.clone(), rows, change)
            })
            .collect();
        let client = self.leads.partition_key_client(&bundle.lead.partition);
        let condition = IfMatchCondition::Etag(Etag::from(version.as_str()));
        let response = retrying("unpack a lead's deliveries", || async {
            let mut batch = client
                .transaction()
                .delete(bundle.row_key(), Some(condition.clone()))?;
            for (_, rows, _) in &written {
                for row in rows {
                    let entity = row.to_entity();
                    batch = if row.key.state == RecordState::Pending && row.dead_letter.is_none() {
                        batch.insert(&entity)?
                    } else {
                        batch.insert_or_replace(row_key_of(&entity), &entity)?
                    };
                }
            }
            batch.await
        })
        .await?;
        let answers = &response.operation_responses;
        if let Some(failed) = answers.iter().find(|op| !op.status_code.is_success()) {
            return Err(match failed.status_code {
                // Unpacked by another writer (gone, or changed).
                StatusCode::PreconditionFailed | StatusCode::NotFound => StoreError::Conflict,
                status => StoreError::Rejected {
                    operation: "unpack a lead's deliveries",
                    failure: Failure::answered(status),
                },
            });
        }
        // Answers come in the order of the operations: the delete first.
        let mut at = 1;
        let mut pending_now = BTreeMap::new();
        let mut untouched = Vec::new();
        for (destination, rows, change) in &written {
            let first = rows
                .first()
                .filter(|row| row.key.state == RecordState::Pending);
            let item = first.and_then(|row| {
                let etag = answers.get(at)?.etag.as_ref()?;
                written_delivery(row.to_entity(), etag.as_ref())
            });
            at += rows.len();
            match change {
                Some(_) => {
                    pending_now.insert(destination.clone(), item);
                }
                None => untouched.extend(item),
            }
        }
        let settled = changes
            .iter()
            .map(|(item, change)| Settled {
                item: item.clone(),
                change: change.clone(),
                result: match pending_now.get(&item.destination) {
                    Some(after) => Ok(after.clone()),
                    // Its own record has it (and the sweep delivers it).
                    None if kept_apart.contains(&item.destination) => Err(StoreError::Conflict),
                    None => Err(StoreError::Malformed(
                        "an outcome for a delivery not bundled",
                    )),
                },
            })
            .collect();
        Ok((settled, untouched))
    }
}

fn bundle_of(row: &serde_json::Map<String, serde_json::Value>) -> Option<Bundle> {
    let bundle = Bundle::from_entity(row);
    if bundle.is_none() {
        tracing::warn!(row_key = ?row.get("RowKey"), "an unreadable bundle of deliveries; skipped");
    }
    bundle
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
    let row_key = item.key.row_key();
    match change {
        RecordChange::Delivered { .. } | RecordChange::Dead { .. } => {
            let mut batch = batch.delete(row_key, Some(item.if_match()))?;
            for row in rows_after(&item.row(), item.attempts, change) {
                let entity = row.to_entity();
                batch = batch.insert_or_replace(row_key_of(&entity), &entity)?;
            }
            Ok(batch)
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

/// The rows `row` (after `attempts` failed attempts) becomes once
/// `change` is written whole: delivered; dead with its dead letter; or
/// pending again, released for the next attempt. (A record of its own is
/// released by a merge, [`release_change`], which leaves the same columns.)
fn rows_after(row: &OutboxRow, attempts: u32, change: &RecordChange) -> Vec<OutboxRow> {
    let released = |next: OffsetDateTime| OutboxRow {
        next_attempt_at: Some(next),
        // Released: the claim ends where it was recorded.
        claimed_until: Some(OffsetDateTime::UNIX_EPOCH),
        claim_batch: None,
        version: None,
        ..row.clone()
    };
    match change {
        RecordChange::Delivered { status, at } => vec![OutboxRow {
            attempts: attempts + 1,
            last_status: Some(status.clone()),
            ..row.settled(RecordState::Delivered, *at)
        }],
        RecordChange::Dead { status, error, at } => vec![
            OutboxRow {
                attempts: attempts + 1,
                last_status: Some(status.clone()),
                last_error: Some(error.clone()),
                ..row.settled(RecordState::Dead, *at)
            },
            row.dead_letter(status, error, *at),
        ],
        RecordChange::Retry {
            next,
            status,
            error,
            keep_batch,
        } => vec![OutboxRow {
            attempts: attempts + 1,
            last_status: Some(status.clone()),
            last_error: Some(error.clone()),
            claim_batch: row.claim_batch.filter(|_| *keep_batch),
            ..released(*next)
        }],
        RecordChange::Wait { next } => vec![released(*next)],
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
        bundle: None,
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
