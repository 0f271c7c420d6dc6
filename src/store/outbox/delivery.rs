//! The delivery destinations' side of the outbox: a pending delivery
//! ([`DeliveryItem`]), reading the due ones, and claiming one — a
//! conditional write, so two instances never both act on it. What an
//! attempt meant is written by [`super::settle`].

use super::super::digest_state::Version;
use super::super::keys::ROW_KEY;
use super::super::{pages, retrying, LeadStore, StoreError};
use super::bundle::{is_bundle, Bundle};
use super::record::{day_range, pending_destination_ranges, state_range, Lease};
use super::row::{claim_change, row_key_of, OutboxRow};
use super::{Consumer, LeadRef, PendingDays, RecordKey, RecordState};
use crate::domain::DestinationName;
use azure_core::StatusCode;
use futures::{Stream, StreamExt, TryStreamExt};
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

/// A delivery its holder may settle: what [`Deliveries::claim`] returned,
/// or a new lead's delivery its save wrote already claimed. Only a claim
/// is settled ([`Deliveries::settle`]), so no code settles a record it does
/// not hold — as a job queue hands out the job it locked. It reads as the
/// delivery it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed(DeliveryItem);

impl Claimed {
    /// `item`, when it was written claimed (it carries its batch).
    pub(in crate::store) fn held(item: DeliveryItem) -> Option<Self> {
        item.claim_batch.is_some().then_some(Self(item))
    }

    /// The batch it is held in: the idempotency key of what is sent.
    pub fn batch(&self) -> Option<uuid::Uuid> {
        self.0.claim_batch
    }

    /// The delivery, no longer held.
    pub fn release(self) -> DeliveryItem {
        self.0
    }
}

impl std::ops::Deref for Claimed {
    type Target = DeliveryItem;

    fn deref(&self) -> &DeliveryItem {
        &self.0
    }
}

impl DeliveryItem {
    pub(in crate::store) fn from_row(row: OutboxRow) -> Option<Self> {
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

    /// The record it is, as far as the item knows it.
    pub(super) fn row(&self) -> OutboxRow {
        OutboxRow {
            attempts: self.attempts,
            next_attempt_at: self.next_attempt_at,
            claimed_until: self.claimed_until,
            claim_batch: self.claim_batch,
            version: Some(self.version.clone()),
            ..OutboxRow::pending(self.key.clone(), self.lead.clone(), self.enqueued_at)
        }
    }

    /// Each of `bundle`'s deliveries as the record it becomes once
    /// unpacked, at the bundle's version: what a first attempt works on.
    pub fn bundled(bundle: Bundle) -> Vec<Self> {
        let bundle = Arc::new(bundle);
        bundle
            .deliveries
            .iter()
            .map(|bundled| {
                let (claimed_until, claim_batch) = Lease::columns(bundled.claim);
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

/// A page of pending deliveries: records of their own, and bundles (each
/// several deliveries of one new lead).
#[derive(Debug, Default)]
pub struct PendingPage {
    pub items: Vec<DeliveryItem>,
    pub bundles: Vec<Bundle>,
}

/// The delivery destinations' side of the outbox, all the delivery engine
/// reads and writes: pending deliveries, claims, and (in
/// [`super::settle`], [`super::unpack`]) their outcomes.
#[derive(Clone, Copy)]
pub struct Deliveries<'a> {
    pub(super) store: &'a LeadStore,
}

impl LeadStore {
    /// The outbox as the delivery destinations see it.
    pub fn deliveries(&self) -> Deliveries<'_> {
        Deliveries { store: self }
    }
}

impl Deliveries<'_> {
    /// Every destination's pending deliveries in `days` (the digest's
    /// records are never read), a page at a time.
    pub fn pending(
        &self,
        days: PendingDays,
    ) -> impl Stream<Item = Result<PendingPage, StoreError>> + Send + 'static {
        let days_filter = day_range(days.first, days.last);
        let ranges = pending_destination_ranges().map(|range| format!("{days_filter} and {range}"));
        let leads = self.store.leads.clone();
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
    pub fn pending_of(
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
        pages::pages(self.store.leads.clone(), filter).map_ok(delivery_items)
    }

    /// Claims `item` for a delivery in `batch` until `until`: fails with
    /// [`StoreError::Conflict`] when another sweep changed it first.
    pub async fn claim(
        &self,
        item: &DeliveryItem,
        batch: uuid::Uuid,
        until: OffsetDateTime,
    ) -> Result<Claimed, StoreError> {
        if item.bundle.is_some() {
            // Only its first attempt or an unpacking sweep acts on it.
            return Err(StoreError::Malformed("a claim on a delivery still bundled"));
        }
        let change = claim_change(until, batch);
        let client = self
            .store
            .leads
            .partition_key_client(&item.key.partition)
            .entity_client(item.key.row_key());
        let condition = item.version.condition();
        let response = retrying("claim a delivery", || async {
            client.merge(&change, condition.clone())?.await
        })
        .await
        .map_err(|e| e.conflict_on(&[StatusCode::PreconditionFailed]))?;
        Ok(Claimed(DeliveryItem {
            claimed_until: Some(until),
            claim_batch: Some(batch),
            version: Version::from_etag(response.etag.to_string()),
            bundle: None,
            ..item.clone()
        }))
    }
}

fn bundle_of(row: &serde_json::Map<String, serde_json::Value>) -> Option<Bundle> {
    let bundle = Bundle::from_entity(row);
    if bundle.is_none() {
        tracing::warn!(row_key = ?row.get(ROW_KEY), "an unreadable bundle of deliveries; skipped");
    }
    bundle
}

fn delivery_items(rows: Vec<serde_json::Map<String, serde_json::Value>>) -> Vec<DeliveryItem> {
    rows.iter()
        .filter_map(|row| {
            let item = DeliveryItem::from_entity(row);
            if item.is_none() {
                tracing::warn!(row_key = ?row.get(ROW_KEY), "an unreadable pending record; skipped");
            }
            item
        })
        .collect()
}
