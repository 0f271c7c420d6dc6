//! A sweep's read of the outbox: every destination's pending deliveries
//! from the deliveries' cursor on (the digest's records are never read),
//! bundles unpacked, sorted into what is due now per destination, what
//! waits, and what belongs to a destination no longer configured.

use super::registry::Destinations;
use crate::domain::DestinationName;
use crate::store::{keys, DeliveryItem, LeadStore, PendingDays, Progress, StoreError};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::time::Duration;
use time::{Date, OffsetDateTime};

/// Due deliveries one sweep takes per destination; more wait for the next.
pub const MAX_DUE_PER_SWEEP: usize = 2_000;
/// Bundles unpacked at once.
const UNPACKING: usize = 8;

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Scan {
    pub days: Option<PendingDays>,
    /// Due now, per configured destination, oldest first.
    pub due: BTreeMap<DestinationName, Vec<DeliveryItem>>,
    /// Of destinations no longer configured, past the maximum age.
    pub orphaned: Vec<DeliveryItem>,
    /// Not due yet, held by another instance, unconfigured but young, or
    /// beyond [`MAX_DUE_PER_SWEEP`].
    pub waiting: usize,
    /// The oldest partition holding a pending delivery.
    pub oldest: Option<Date>,
}

impl Scan {
    pub async fn read(
        store: &LeadStore,
        destinations: &Destinations,
        max_age: Duration,
        now: OffsetDateTime,
    ) -> Result<Self, StoreError> {
        let days = store.pending_days(Progress::Deliveries, now).await?;
        let mut scan = Self {
            days: Some(days),
            ..Self::default()
        };
        let mut bundles = Vec::new();
        let mut pages = std::pin::pin!(store.deliveries().pending(days));
        while let Some(page) = pages.try_next().await? {
            for item in page.items {
                scan.add(item, destinations, max_age, now);
            }
            for bundle in page.bundles {
                scan.note_day(&bundle.lead.partition);
                let held = bundle.held_until().is_some_and(|until| until > now);
                if held || bundles.len() >= MAX_DUE_PER_SWEEP {
                    // Its first attempts may still settle it.
                    scan.waiting += bundle.deliveries.len();
                } else {
                    bundles.push(bundle);
                }
            }
        }
        // Bundles no first attempt holds (a burst's, or a crashed
        // instance's once its claims ran out) become a record per
        // destination, delivered as any other.
        let unpacked: Vec<_> = futures::stream::iter(bundles)
            .map(|bundle| async move {
                let unpacked = store.deliveries().unpack(&bundle).await;
                (bundle, unpacked)
            })
            .buffer_unordered(UNPACKING)
            .collect()
            .await;
        for (bundle, unpacked) in unpacked {
            match unpacked {
                Ok(items) => {
                    for item in items {
                        scan.add(item, destinations, max_age, now);
                    }
                }
                Err(e) => {
                    // Another instance unpacked it (its records are its
                    // sweep's now), or storage failed: the next sweep.
                    if !matches!(e, StoreError::Conflict) {
                        tracing::warn!(error = %e, "could not unpack a lead's deliveries");
                    }
                    scan.waiting += bundle.deliveries.len();
                }
            }
        }
        Ok(scan)
    }

    fn note_day(&mut self, partition: &str) {
        if let Some(day) = keys::parse_day_key(partition) {
            self.oldest = Some(self.oldest.map_or(day, |oldest| oldest.min(day)));
        }
    }

    /// The due deliveries of one destination only (a new lead's email
    /// joining the others waiting).
    pub async fn read_one(
        store: &LeadStore,
        destination: &DestinationName,
        now: OffsetDateTime,
    ) -> Result<Vec<DeliveryItem>, StoreError> {
        let days = store.pending_days(Progress::Deliveries, now).await?;
        let mut due = Vec::new();
        let mut pages = std::pin::pin!(store.deliveries().pending_of(destination, days));
        while let Some(page) = pages.try_next().await? {
            due.extend(page.into_iter().filter(|item| is_due(item, now)));
            if due.len() >= MAX_DUE_PER_SWEEP {
                break;
            }
        }
        Ok(due)
    }

    fn add(
        &mut self,
        item: DeliveryItem,
        destinations: &Destinations,
        max_age: Duration,
        now: OffsetDateTime,
    ) {
        self.note_day(&item.key.partition);
        if destinations.get(&item.destination).is_none() {
            // Unconfigured since: it waits, and dies at the maximum age.
            if now - item.enqueued_at > max_age {
                self.orphaned.push(item);
            } else {
                self.waiting += 1;
            }
            return;
        }
        let list = self.due.entry(item.destination.clone()).or_default();
        if is_due(&item, now) && list.len() < MAX_DUE_PER_SWEEP {
            list.push(item);
        } else {
            self.waiting += 1;
        }
    }
}

/// Not waiting for a later attempt, and not held by another instance.
pub fn is_due(item: &DeliveryItem, now: OffsetDateTime) -> bool {
    item.next_attempt_at.is_none_or(|at| at <= now)
        && item.claimed_until.is_none_or(|until| until <= now)
}
