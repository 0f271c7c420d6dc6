//! The delivery engine's loop: a sweep finds due deliveries ([`scan`]),
//! groups them into sends (one lead each, or several for a destination
//! with an hourly cap, [`budget`]), and for each send claims its records,
//! delivers, and settles what the outcome means ([`settle`]) — every
//! destination side by side, no send started after [`SWEEP_BUDGET`].
//! A new lead's first attempts are in [`first`].
//!
//! [`scan`]: super::scan
//! [`budget`]: super::budget
//! [`settle`]: super::settle
//! [`first`]: super::first

use super::budget::{budgets, plan, HourlyBudget};
use super::destination::{Batch, Destination};
use super::lanes::{Lanes, Quiesced};
use super::lease::{lease, CONNECT_TIMEOUT, REQUEST_TIMEOUT, SWEEP_BUDGET};
use super::outcome::{log_outcome, Outcome, Status};
use super::redact::Redactor;
use super::registry::Destinations;
use super::scan::Scan;
use super::settle::{give_up, settle};
use crate::configuration::{ConfigError, Settings};
use crate::domain::DestinationName;
use crate::routing::Routes;
use crate::store::status::SweepBeat;
use crate::store::{
    Claimed, DeliveryItem, LeadStore, Progress, RecordChange, StoreError, StoredLead,
};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Sends in flight at once per destination in a sweep.
const CONCURRENCY: usize = 8;

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub delivered: usize,
    pub retrying: usize,
    pub dead: usize,
    /// Not due yet, held by another instance, or over the hour's budget.
    pub waiting: usize,
}

impl SweepReport {
    pub(super) fn add(&mut self, other: SweepReport) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.waiting += other.waiting;
    }

    /// Counts what `change` means.
    pub(super) fn count(&mut self, change: &RecordChange) {
        match change {
            RecordChange::Delivered { .. } => self.delivered += 1,
            RecordChange::Dead { .. } => self.dead += 1,
            RecordChange::Retry { .. } => self.retrying += 1,
            RecordChange::Wait { .. } => self.waiting += 1,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "deliveries: {} delivered, {} to retry, {} dead, {} waiting",
            self.delivered, self.retrying, self.dead, self.waiting
        )
    }
}

/// Delivers leads to the configured destinations. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Deliverer {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) store: LeadStore,
    pub(super) destinations: Destinations,
    pub(super) http: reqwest::Client,
    pub(super) max_age: Duration,
    /// Names the idempotency keys, so two tables never share one.
    pub(super) table: String,
    pub(super) redactor: Redactor,
    pub(super) lanes: Lanes,
    pub(super) budgets: BTreeMap<DestinationName, HourlyBudget>,
}

impl Deliverer {
    /// The engine for the configured destinations; `Ok(None)` when none is.
    pub fn from_settings(
        store: LeadStore,
        settings: &Settings,
    ) -> Result<Option<Self>, ConfigError> {
        let destinations = Destinations::from_settings(settings)?;
        if destinations.is_empty() {
            return Ok(None);
        }
        let http = crate::outbound::client(REQUEST_TIMEOUT, CONNECT_TIMEOUT)
            .map_err(|e| ConfigError::named("delivery", format!("no HTTP client: {e}")))?;
        let budgets = budgets(
            destinations
                .iter()
                .filter_map(|d| Some((d.name().clone(), d.name().to_string(), d.hourly_cap()?))),
        );
        Ok(Some(Self {
            inner: Arc::new(Inner {
                store,
                http,
                max_age: settings.delivery.max_age,
                table: settings.storage.leads_table.clone(),
                redactor: destinations.redactor(),
                lanes: Lanes::new(&destinations),
                budgets,
                destinations,
            }),
        }))
    }

    pub fn destinations(&self) -> &Destinations {
        &self.inner.destinations
    }

    /// Waits for the first attempts in flight to end and keeps new ones
    /// off (their leads are left to the sweep) while the guard lives: for
    /// a caller about to move the clock past their claims.
    pub async fn quiesce(&self) -> Quiesced {
        self.inner.lanes.quiesce().await
    }

    /// Which destinations get which lead.
    pub fn routes(&self) -> &Routes {
        self.inner.destinations.routes()
    }

    /// The configured destinations' names.
    pub fn names(&self) -> Vec<DestinationName> {
        self.inner.destinations.names()
    }

    /// One sweep at `now`: every due delivery is attempted once. Its
    /// heartbeat is recorded either way (`handler status` and the Bicep's
    /// alert tell a stopped timer by it).
    #[tracing::instrument(name = "deliver", skip_all)]
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepReport, StoreError> {
        let result = self.sweep_once(now).await;
        let beat = SweepBeat {
            at: now,
            error: result.as_ref().err().map(ToString::to_string),
            summary: result
                .as_ref()
                .map(SweepReport::summary)
                .unwrap_or_default(),
            destinations: self.names().iter().map(ToString::to_string).collect(),
        };
        if let Err(e) = self.inner.store.record_sweep(&beat).await {
            tracing::warn!(error = %e, "could not record the sweep's heartbeat");
        }
        result
    }

    async fn sweep_once(&self, now: OffsetDateTime) -> Result<SweepReport, StoreError> {
        let started = Instant::now();
        let inner = &self.inner;
        let scan = Scan::read(&inner.store, &inner.destinations, inner.max_age, now).await?;
        let mut report = SweepReport {
            waiting: scan.waiting,
            ..SweepReport::default()
        };
        if !scan.orphaned.is_empty() {
            // Given up like any delivery: held first, so two instances do
            // not both write it off.
            let mut changes = Vec::new();
            let until = now + time::Duration::minutes(1);
            for item in &scan.orphaned {
                let Ok(claimed) = inner
                    .store
                    .deliveries()
                    .claim(item, uuid::Uuid::new_v4(), until)
                    .await
                else {
                    report.waiting += 1;
                    continue;
                };
                let reason = "the destination is no longer configured";
                log_given_up(item, reason);
                let change = give_up(&Status::NotConfigured.to_string(), reason, now);
                changes.push((claimed, change));
            }
            report.add(self.write(changes).await);
        }
        // Destinations side by side: one that hangs holds up no other.
        let deadline = started + SWEEP_BUDGET;
        let per_destination = scan.due.into_iter().filter_map(|(name, items)| {
            let destination = inner.destinations.get(&name)?.clone();
            Some(async move { self.deliver_due(&destination, items, now, deadline).await })
        });
        for one in futures::future::join_all(per_destination).await {
            report.add(one);
        }
        if let Some(days) = scan.days {
            inner
                .store
                .raise_cursor(Progress::Deliveries, days, scan.oldest, now)
                .await?;
        }
        tracing::info!(
            delivered = report.delivered,
            retrying = report.retrying,
            dead = report.dead,
            waiting = report.waiting,
            duration_ms = started.elapsed().as_millis() as u64,
            "delivery sweep finished"
        );
        Ok(report)
    }

    /// The delivery id: stable for one lead and destination across every
    /// retry and requeue (the webhook's `webhook-id`, an email's key).
    pub(super) fn delivery_id(
        &self,
        destination: &DestinationName,
        lead_row_key: &str,
    ) -> uuid::Uuid {
        let name = format!("{}|{destination}|{lead_row_key}", self.inner.table);
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
    }

    /// Attempts `items` of one destination, each in its send; no send
    /// starts after `deadline` (its items wait for the next sweep).
    async fn deliver_due(
        &self,
        destination: &Arc<dyn Destination>,
        items: Vec<DeliveryItem>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> SweepReport {
        let (sends, mut report) = match self.inner.budgets.get(destination.name()) {
            Some(budget) => {
                self.planned_sends(destination.as_ref(), budget, items, now)
                    .await
            }
            None => (
                items
                    .into_iter()
                    .map(|item| {
                        let key = item.claim_batch.unwrap_or_else(|| {
                            self.delivery_id(&item.destination, &item.key.lead_row_key)
                        });
                        (key, vec![item])
                    })
                    .collect(),
                SweepReport::default(),
            ),
        };
        let mut left: usize = sends.iter().map(|(_, items)| items.len()).sum();
        let done: Vec<SweepReport> = futures::stream::iter(sends)
            .take_while(|_| std::future::ready(Instant::now() < deadline))
            .inspect(|(_, items)| left -= items.len())
            .map(|(key, items)| self.deliver_send(destination, key, items, now))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for one in done {
            report.add(one);
        }
        report.waiting += left;
        report
    }

    /// Groups the capped destination's due leads into the sends the hour's
    /// budget allows: a send whose outcome is unknown goes out again as it
    /// was; the rest one lead each while the budget lasts, its last send
    /// combining what still waits (up to the destination's capacity). What
    /// the budget cannot cover waits for a later sweep, unwritten. Sends
    /// are taken later, by each send once it holds its records.
    async fn planned_sends(
        &self,
        destination: &dyn Destination,
        budget: &HourlyBudget,
        items: Vec<DeliveryItem>,
        now: OffsetDateTime,
    ) -> (Vec<(uuid::Uuid, Vec<DeliveryItem>)>, SweepReport) {
        let mut report = SweepReport::default();
        let mut left = match budget.left(&self.inner.store, now).await {
            Ok(left) => left,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the hour's budget; trying next sweep");
                report.waiting += items.len();
                return (Vec::new(), report);
            }
        };
        let mut again: BTreeMap<uuid::Uuid, Vec<DeliveryItem>> = BTreeMap::new();
        let mut fresh = Vec::new();
        for item in items {
            match item.claim_batch {
                Some(batch) => again.entry(batch).or_default().push(item),
                None => fresh.push(item),
            }
        }
        fresh.sort_by(|a, b| a.key.lead_row_key.cmp(&b.key.lead_row_key));
        let mut sends: Vec<(uuid::Uuid, Vec<DeliveryItem>)> = Vec::new();
        for (batch, items) in again {
            if left == 0 {
                report.waiting += items.len();
                continue;
            }
            left -= 1;
            sends.push((batch, items));
        }
        let plan = plan(fresh.len(), left);
        let mut fresh = fresh.into_iter();
        for item in fresh.by_ref().take(plan.singles) {
            let key = self.delivery_id(&item.destination, &item.key.lead_row_key);
            sends.push((key, vec![item]));
        }
        let combined: Vec<DeliveryItem> = fresh
            .by_ref()
            .take(plan.combined.min(destination.capacity()))
            .collect();
        if !combined.is_empty() {
            sends.push((uuid::Uuid::new_v4(), combined));
        }
        report.waiting += fresh.len();
        (sends, report)
    }

    /// One send: claims its records, takes a send of the hour's budget if
    /// capped, reads the leads, delivers, and settles every record in one
    /// write per partition.
    async fn deliver_send(
        &self,
        destination: &Arc<dyn Destination>,
        key: uuid::Uuid,
        items: Vec<DeliveryItem>,
        now: OffsetDateTime,
    ) -> SweepReport {
        let inner = &self.inner;
        let store = &inner.store;
        let started = Instant::now();
        let mut report = SweepReport::default();
        let until = now + lease(destination.attempt_bound());
        let mut held: Vec<Claimed> = Vec::new();
        for item in items {
            match store.deliveries().claim(&item, key, until).await {
                Ok(item) => held.push(item),
                // Another instance has it.
                Err(StoreError::Conflict) => report.waiting += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim a delivery; the next sweep retries");
                    report.waiting += 1;
                }
            }
        }
        if held.is_empty() {
            return report;
        }
        let mut changes: Vec<(Claimed, RecordChange)> = Vec::new();
        // A capped destination sends only with a send of the hour's
        // budget, taken now that the records are held.
        if let Some(budget) = inner.budgets.get(destination.name()) {
            let taken = match budget.take(store, now, 0).await {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(error = %e, "could not take a send of the hour's budget");
                    false
                }
            };
            if !taken {
                let next = budget.next_free_at(now).await.unwrap_or(now).max(now);
                changes.extend(
                    held.into_iter()
                        .map(|item| (item, RecordChange::Wait { next })),
                );
                return self.write(changes).await;
            }
        }
        let places: Vec<_> = held.iter().map(|item| &item.lead).collect();
        let found = match store.leads_of(&places).await {
            Ok(found) => found,
            Err(e) => {
                // Unclaimed by their lease running out.
                tracing::warn!(error = %e, "could not read the leads to deliver; the next sweep retries");
                report.waiting += held.len();
                return report;
            }
        };
        let mut leads: Vec<StoredLead> = Vec::new();
        let mut attempted: Vec<Claimed> = Vec::new();
        for item in held {
            match found.iter().find(|lead| lead.id == item.lead.id) {
                Some(lead) => {
                    leads.push(lead.clone());
                    attempted.push(item);
                }
                None => {
                    let reason = "the lead is no longer in the table";
                    log_given_up(&item, reason);
                    changes.push((item, give_up(&Status::NoLead.to_string(), reason, now)));
                }
            }
        }
        if !attempted.is_empty() {
            let attempt_started = Instant::now();
            let outcome = self.attempt(destination.as_ref(), &leads, key, now).await;
            log_outcome(destination.name(), &attempted, &outcome, started);
            // A `Retry-After` counts from the answer, not from the sweep.
            let answered = after(now, attempt_started);
            changes.extend(attempted.into_iter().map(|item| {
                let change = settle(&item, &outcome, answered, inner.max_age, &inner.redactor);
                (item, change)
            }));
        }
        report.add(self.write(changes).await);
        report
    }

    /// One attempt, bounded: the lease counts on it, so it is enforced
    /// here whatever a destination's own time-outs do.
    pub(super) async fn attempt(
        &self,
        destination: &dyn Destination,
        leads: &[StoredLead],
        key: uuid::Uuid,
        now: OffsetDateTime,
    ) -> Outcome {
        let bound = destination.attempt_bound();
        let batch = Batch {
            leads,
            key,
            now,
            http: &self.inner.http,
        };
        tokio::time::timeout(bound, destination.deliver(batch))
            .await
            .unwrap_or_else(|_| Outcome::Retry {
                status: Status::TimedOut,
                error: format!("no outcome within {} s", bound.as_secs()),
                after: None,
                maybe_done: true,
            })
    }

    /// Writes `changes` (one transaction per lead's partition) and counts
    /// what they mean; a change that could not be written is left to the
    /// claim's expiry, and the next sweep tries again with the same key.
    pub(super) async fn write(&self, changes: Vec<(Claimed, RecordChange)>) -> SweepReport {
        let mut report = SweepReport::default();
        for settled in self.inner.store.deliveries().settle(changes).await {
            match settled.result {
                Ok(_) => report.count(&settled.change),
                Err(e) => {
                    report.waiting += 1;
                    tracing::warn!(
                        destination = %settled.item.destination, error = %e,
                        "could not record a delivery's outcome; the next sweep will retry it"
                    );
                }
            }
        }
        report
    }
}

/// `now` moved on by the time since `started`: when an attempt that began
/// at `now` ended.
pub(super) fn after(now: OffsetDateTime, started: Instant) -> OffsetDateTime {
    now + time::Duration::try_from(started.elapsed()).unwrap_or_default()
}

fn log_given_up(item: &DeliveryItem, reason: &str) {
    tracing::error!(
        destination = %item.destination, lead_id = %item.lead.id, reason,
        "delivery failed for good"
    );
}
