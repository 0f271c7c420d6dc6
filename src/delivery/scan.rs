//! A sweep's read of the outbox: every destination's pending deliveries
//! from the deliveries' cursor on (the digest's records are never read),
//! sorted into what is due now per destination, what waits, and what
//! belongs to a destination no longer configured.

use super::registry::Destinations;
use crate::domain::DestinationName;
use crate::store::{keys, DeliveryItem, LeadStore, PendingDays, Progress, StoreError};
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::time::Duration;
use time::{Date, OffsetDateTime};

/// Due deliveries one sweep takes per destination; more wait for the next.
pub const MAX_DUE_PER_SWEEP: usize = 2_000;

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
        let mut pages = std::pin::pin!(store.pending_deliveries(days));
        while let Some(page) = pages.try_next().await? {
            for item in page {
                scan.add(item, destinations, max_age, now);
            }
        }
        Ok(scan)
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
        let mut pages = std::pin::pin!(store.pending_deliveries_of(destination, days));
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
        if let Some(day) = keys::parse_day_key(&item.key.partition) {
            self.oldest = Some(self.oldest.map_or(day, |oldest| oldest.min(day)));
        }
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
