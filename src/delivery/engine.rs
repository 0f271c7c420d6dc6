//! The delivery engine: finds due deliveries, claims them, delivers them and
//! records the outcome — for a sweep (the LeadDeliver timer, standalone
//! mode's schedule) and for a new lead's first attempt alike.
//!
//! A sweep reads only the outbox's pending range from the cursor's day on
//! (never a table scan) and keeps the cursor moving. Records of destinations
//! no longer configured wait, and die at the maximum age like any other.

use super::attempt::{backoff, Attempt};
use super::dataverse::DataverseDestination;
use super::hubspot::HubSpotDestination;
use super::notify::{self, NotifyDestination};
use super::teams::TeamsDestination;
use super::webhook::WebhookDestination;
use super::Destination;
use crate::clock::Clock;
use crate::configuration::{DataverseAuth, Settings};
use crate::email::Mailer;
use crate::store::outbox::DIGEST;
use crate::store::{keys, LeadStore, PendingItem, StoreError, StoredLead};
use futures::{StreamExt, TryStreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::{Date, OffsetDateTime};

/// A sweep starts no delivery after this; what is left stays due for the
/// next sweep. So a sweep ends within this plus one attempt, whatever its
/// receivers do, and every claim it makes is still held when its attempt
/// ends (see [`CLAIM_LEASE`]).
pub const SWEEP_BUDGET: Duration = Duration::from_secs(20);
/// One HTTP exchange with a destination.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// One attempt at an HTTP destination, a token fetch included: enforced.
const HTTP_ATTEMPT_BOUND: Duration = Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs());
/// Claiming before an attempt and recording its outcome after.
const BOOKKEEPING: Duration = Duration::from_secs(10);
/// A claimed delivery to an HTTP destination is held this long: it is
/// claimed within [`SWEEP_BUDGET`] of the sweep's time, its attempt ends
/// within [`HTTP_ATTEMPT_BOUND`], and its outcome is recorded after; and a
/// crashed instance's deliveries go out again within a minute or two. An
/// email is held longer, by its mailer's send budget ([`lease`]).
pub const CLAIM_LEASE: Duration = Duration::from_secs(
    SWEEP_BUDGET.as_secs() + HTTP_ATTEMPT_BOUND.as_secs() + BOOKKEEPING.as_secs(),
);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deliveries in flight at once in a sweep.
const CONCURRENCY: usize = 8;
/// Due deliveries one sweep takes per destination; more wait for the next.
const MAX_DUE_PER_SWEEP: usize = 2_000;
/// Leads combined into one email at most.
const MAX_COMBINED: usize = 200;
/// The per-lead email's rate window.
const HOUR: Duration = Duration::from_secs(3_600);
/// A new lead's first attempt retries in the background while the next
/// attempt is this close (at most [`FAST_ROUNDS`] times); later ones are
/// the sweep's.
const FAST_RETRY_WITHIN: Duration = Duration::from_secs(30);
const FAST_ROUNDS: usize = 3;
/// First attempts in flight at once per destination (see
/// [`Deliverer::deliver_new`]).
const FAST_LANE: usize = 4;

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
    fn add(&mut self, other: SweepReport) {
        self.delivered += other.delivered;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.waiting += other.waiting;
    }

    pub fn summary(&self) -> String {
        format!(
            "deliveries: {} delivered, {} to retry, {} dead, {} waiting",
            self.delivered, self.retrying, self.dead, self.waiting
        )
    }
}

/// Holds new leads' first attempts off; see [`Deliverer::quiesce`].
#[derive(Debug)]
pub struct Quiesced(#[allow(dead_code)] Vec<tokio::sync::OwnedSemaphorePermit>);

/// Delivers leads to the configured destinations. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Deliverer {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: LeadStore,
    destinations: Vec<Destination>,
    http: reqwest::Client,
    max_age: Duration,
    table: String,
    /// Whether Partner Center's test leads go to the CRMs.
    crm_test_leads: bool,
    /// Admits new leads' first attempts, one lane per destination (in
    /// the order of `destinations`), so a hanging destination holds up
    /// none of the others.
    lanes: Vec<Arc<tokio::sync::Semaphore>>,
}

impl Deliverer {
    /// The engine for the configured destinations; `Ok(None)` when none is.
    pub fn from_settings(store: LeadStore, settings: &Settings) -> Result<Option<Self>, String> {
        let delivery = &settings.delivery;
        let mut destinations = Vec::new();
        if let Some(notify) = &delivery.notify {
            let transport = settings.email.transport.as_ref().ok_or(
                "NOTIFY_TO: no email transport is configured (ACS_ENDPOINT, \
                 ACS_CONNECTION_STRING or SMTP_URL)",
            )?;
            let from = settings
                .email
                .from
                .clone()
                .ok_or("NOTIFY_TO: DIGEST_FROM (the sender address) is not set")?;
            destinations.push(Destination::Notify(NotifyDestination {
                mailer: Mailer::from_settings(transport)?,
                to: notify.to.clone(),
                from,
                max_per_hour: notify.max_per_hour,
            }));
        }
        if let Some(url) = &delivery.teams {
            destinations.push(Destination::Teams(TeamsDestination::new(url.clone())));
        }
        if let Some(webhook) = &delivery.webhook {
            destinations.push(Destination::Webhook(WebhookDestination::new(
                webhook.url.clone(),
                &webhook.secret,
            )?));
        }
        if let Some(dataverse) = &delivery.crm.dataverse {
            let credential = match &dataverse.auth {
                DataverseAuth::Identity => crate::identity::default_credential().map_err(|_| {
                    "DATAVERSE_URL: no identity is available to get a token".to_owned()
                })?,
                DataverseAuth::ClientSecret {
                    authority_host,
                    tenant_id,
                    client_id,
                    secret,
                } => crate::identity::client_secret_credential(
                    authority_host.clone(),
                    tenant_id,
                    client_id,
                    secret.expose(),
                ),
            };
            destinations.push(Destination::Dataverse(DataverseDestination::new(
                dataverse.url.clone(),
                credential,
            )));
        }
        if let Some(hubspot) = &delivery.crm.hubspot {
            destinations.push(Destination::HubSpot(HubSpotDestination::new(
                hubspot.api_url.clone(),
                hubspot.token.clone(),
            )));
        }
        if destinations.is_empty() {
            return Ok(None);
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect is an answer to fix the URL, not to follow: the
            // lead must not go where nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("marketplace-leads/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"))?;
        Ok(Some(Self {
            inner: Arc::new(Inner {
                store,
                http,
                max_age: delivery.max_age,
                table: settings.storage.leads_table.clone(),
                crm_test_leads: delivery.crm.include_test_leads,
                lanes: destinations
                    .iter()
                    .map(|_| Arc::new(tokio::sync::Semaphore::new(FAST_LANE)))
                    .collect(),
                destinations,
            }),
        }))
    }

    /// The configured destinations' names.
    pub fn destinations(&self) -> Vec<&'static str> {
        self.inner
            .destinations
            .iter()
            .map(Destination::name)
            .collect()
    }

    /// The destinations a lead goes to: all of them, but a test lead goes
    /// to a CRM only with `CRM_INCLUDE_TEST_LEADS`.
    pub fn destinations_for(&self, is_test: bool) -> Vec<&'static str> {
        self.inner
            .destinations
            .iter()
            .filter(|d| self.takes(d, is_test))
            .map(Destination::name)
            .collect()
    }

    /// Whether `destination` (a name) takes a lead that `is_test`.
    pub fn accepts(&self, destination: &str, is_test: bool) -> bool {
        self.destination(destination)
            .is_some_and(|d| self.takes(d, is_test))
    }

    fn takes(&self, destination: &Destination, is_test: bool) -> bool {
        !(is_test && destination.is_crm() && !self.inner.crm_test_leads)
    }

    /// One sweep at `now`: every due delivery is attempted once.
    #[tracing::instrument(name = "deliver", skip_all)]
    pub async fn sweep(&self, now: OffsetDateTime) -> Result<SweepReport, StoreError> {
        let started = Instant::now();
        let store = &self.inner.store;
        let days = store.pending_days(now).await?;
        let mut oldest: Option<Date> = None;
        let mut due: BTreeMap<&'static str, Vec<PendingItem>> = BTreeMap::new();
        let mut report = SweepReport::default();
        let mut pages = std::pin::pin!(store.pending(None, days, None));
        while let Some(page) = pages.try_next().await? {
            for item in page {
                let day = keys::parse_day_key(&item.partition);
                oldest = match (oldest, day) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                if item.consumer == DIGEST {
                    continue;
                }
                let Some(destination) = self.destination(&item.consumer) else {
                    // Unconfigured since: it waits, and dies at the maximum age.
                    if self.too_old(&item, now) {
                        self.give_up(
                            &item,
                            "not configured",
                            "the destination is no longer configured",
                            now,
                        )
                        .await;
                        report.dead += 1;
                    } else {
                        report.waiting += 1;
                    }
                    continue;
                };
                let list = due.entry(destination.name()).or_default();
                if is_due(&item, now) && list.len() < MAX_DUE_PER_SWEEP {
                    list.push(item);
                } else {
                    report.waiting += 1;
                }
            }
        }
        // Destinations side by side: one that hangs holds up no other.
        let deadline = started + SWEEP_BUDGET;
        let per_destination = due.into_iter().filter_map(|(name, items)| {
            let destination = self.destination(name)?;
            Some(self.deliver_due(destination, items, now, deadline))
        });
        for one in futures::future::join_all(per_destination).await {
            report.add(one);
        }
        store.raise_cursor(days, oldest, now).await?;
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

    /// A new lead's first attempts, right after it was stored (in the
    /// background: the caller does not wait), from the lead and the pending
    /// records `save` just wrote — nothing is read back. Whatever this
    /// leaves undone, the sweep finishes.
    ///
    /// Ingest comes first: at most [`FAST_LANE`] first attempts per
    /// destination are in flight at once; beyond that (a burst, a hanging
    /// receiver) the lead waits for the sweep, so deliveries never take the
    /// storage, connections and CPU that ingest needs.
    /// Takes the (cheaply cloned) engine, for `tokio::spawn`.
    pub async fn deliver_new(self, lead: StoredLead, pending: Vec<PendingItem>, clock: Clock) {
        let place = crate::store::outbox::lead_ref(&lead);
        let mut items: Vec<PendingItem> = pending
            .into_iter()
            .filter(|item| item.consumer != DIGEST)
            .collect();
        let engine = &self;
        let lead = &lead;
        for _ in 0..FAST_ROUNDS {
            let now = clock.now();
            let attempts = items.iter().filter_map(|item| {
                let (destination, lane) = engine.lane(&item.consumer)?;
                let Ok(permit) = lane.clone().try_acquire_owned() else {
                    tracing::debug!(
                        lead_id = %lead.id, destination = destination.name(),
                        "first attempts of this destination at their limit; the sweep delivers"
                    );
                    return None;
                };
                Some(async move {
                    let retry = engine.first_attempt(destination, item, lead, now).await;
                    drop(permit);
                    retry
                })
            });
            let retried: Vec<&'static str> = futures::future::join_all(attempts)
                .await
                .into_iter()
                .flatten()
                .collect();
            // What failed has its next attempt recorded: read those back.
            items.clear();
            let mut next: Option<OffsetDateTime> = None;
            for name in retried {
                if let Ok(Some(item)) = self
                    .inner
                    .store
                    .pending_of(&place.partition, name, &place.row_key)
                    .await
                {
                    let at = item.next_attempt_at.unwrap_or(now);
                    next = Some(next.map_or(at, |n| n.min(at)));
                    items.push(item);
                }
            }
            let Some(at) = next else { return };
            let wait: Duration = (at - clock.now()).try_into().unwrap_or_default();
            if wait > FAST_RETRY_WITHIN {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Waits for the first attempts in flight to end and keeps new ones
    /// off (their leads are left to the sweep) while the guard lives: for
    /// a caller about to move the clock past their claims.
    pub async fn quiesce(&self) -> Quiesced {
        let mut held = Vec::new();
        for lane in &self.inner.lanes {
            if let Ok(permits) = lane.clone().acquire_many_owned(FAST_LANE as u32).await {
                held.push(permits);
            }
        }
        Quiesced(held)
    }

    fn lane(&self, name: &str) -> Option<(&Destination, &Arc<tokio::sync::Semaphore>)> {
        let at = self
            .inner
            .destinations
            .iter()
            .position(|d| d.name() == name)?;
        Some((&self.inner.destinations[at], &self.inner.lanes[at]))
    }

    /// One destination's attempt at a new lead; the destination's name if
    /// it is to be retried.
    async fn first_attempt(
        &self,
        destination: &Destination,
        item: &PendingItem,
        lead: &StoredLead,
        now: OffsetDateTime,
    ) -> Option<&'static str> {
        if let Destination::Notify(email) = destination {
            // Emails are planned together (the hourly cap combines what
            // waits), so a new lead's email goes with the others due — but
            // only when a send is free: otherwise the backlog is the
            // sweep's, and one budget read is all a new lead costs.
            let budget = self
                .inner
                .store
                .send_budget(notify::NAME, email.max_per_hour as usize, HOUR, now)
                .await;
            if matches!(budget, Ok(budget) if budget.left > 0) {
                if let Err(e) = self.sweep_destination(destination, now).await {
                    tracing::warn!(error = %e, "could not send a new lead's email; the sweep will");
                }
            }
            return None;
        }
        if !is_due(item, now) {
            return None;
        }
        let batch = item.claim_batch.unwrap_or_else(|| self.delivery_id(item));
        let report = self
            .deliver_batch(destination, batch, vec![item.clone()], Some(lead), now)
            .await;
        (report.retrying > 0).then_some(destination.name())
    }

    /// Attempts the due deliveries of one destination.
    async fn sweep_destination(
        &self,
        destination: &Destination,
        now: OffsetDateTime,
    ) -> Result<SweepReport, StoreError> {
        let store = &self.inner.store;
        let days = store.pending_days(now).await?;
        let mut due = Vec::new();
        let mut pages = std::pin::pin!(store.pending(Some(destination.name()), days, None));
        while let Some(page) = pages.try_next().await? {
            due.extend(page.into_iter().filter(|item| is_due(item, now)));
            if due.len() >= MAX_DUE_PER_SWEEP {
                break;
            }
        }
        let deadline = Instant::now() + SWEEP_BUDGET;
        Ok(self.deliver_due(destination, due, now, deadline).await)
    }

    fn destination(&self, name: &str) -> Option<&Destination> {
        self.inner.destinations.iter().find(|d| d.name() == name)
    }

    fn too_old(&self, item: &PendingItem, now: OffsetDateTime) -> bool {
        now - item.enqueued_at > self.inner.max_age
    }

    /// The delivery id: stable for one lead and destination across every
    /// retry and requeue (the webhook's `webhook-id`, an email's key).
    fn delivery_id(&self, item: &PendingItem) -> uuid::Uuid {
        let name = format!(
            "{}|{}|{}",
            self.inner.table, item.consumer, item.lead_row_key
        );
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
    }

    /// Attempts `items` of one destination, each in its batch; no batch
    /// starts after `deadline` (its items wait for the next sweep).
    async fn deliver_due(
        &self,
        destination: &Destination,
        items: Vec<PendingItem>,
        now: OffsetDateTime,
        deadline: Instant,
    ) -> SweepReport {
        let (batches, mut report) = match destination {
            Destination::Notify(email) => self.email_batches(email, items, now).await,
            _ => (
                items
                    .into_iter()
                    .map(|item| {
                        (
                            item.claim_batch.unwrap_or_else(|| self.delivery_id(&item)),
                            vec![item],
                        )
                    })
                    .collect(),
                SweepReport::default(),
            ),
        };
        let mut left: usize = batches.iter().map(|(_, items)| items.len()).sum();
        let done: Vec<SweepReport> = futures::stream::iter(batches)
            .take_while(|_| std::future::ready(Instant::now() < deadline))
            .inspect(|(_, items)| left -= items.len())
            .map(|(batch, items)| self.deliver_batch(destination, batch, items, None, now))
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        for one in done {
            report.add(one);
        }
        report.waiting += left;
        report
    }

    /// Groups the emails due: a batch whose outcome is unknown goes out
    /// again as it was; the rest one email per lead while the hour's budget
    /// lasts, its last send combining what still waits. What the budget
    /// cannot cover waits for a later sweep.
    async fn email_batches(
        &self,
        email: &NotifyDestination,
        items: Vec<PendingItem>,
        now: OffsetDateTime,
    ) -> (Vec<(uuid::Uuid, Vec<PendingItem>)>, SweepReport) {
        let store = &self.inner.store;
        let limit = email.max_per_hour as usize;
        let mut report = SweepReport::default();
        let budget = match store.send_budget(notify::NAME, limit, HOUR, now).await {
            Ok(budget) => budget,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the email budget; trying next sweep");
                report.waiting += items.len();
                return (Vec::new(), report);
            }
        };
        let mut again: BTreeMap<uuid::Uuid, Vec<PendingItem>> = BTreeMap::new();
        let mut fresh = Vec::new();
        for item in items {
            match item.claim_batch {
                Some(batch) => again.entry(batch).or_default().push(item),
                None => fresh.push(item),
            }
        }
        fresh.sort_by(|a, b| a.lead_row_key.cmp(&b.lead_row_key));
        let mut left = budget.left;
        let mut batches: Vec<(uuid::Uuid, Vec<PendingItem>)> = Vec::new();
        let mut deferred = Vec::new();
        for (batch, items) in again {
            if left > 0 && self.take_send(email, now).await {
                left -= 1;
                batches.push((batch, items));
            } else {
                deferred.extend(items);
            }
        }
        let plan = notify::plan(fresh.len(), left);
        let mut fresh = fresh.into_iter();
        for item in fresh.by_ref().take(plan.singles) {
            if self.take_send(email, now).await {
                batches.push((self.delivery_id(&item), vec![item]));
            } else {
                deferred.push(item);
            }
        }
        let combined: Vec<PendingItem> = fresh
            .by_ref()
            .take(plan.combined.min(MAX_COMBINED))
            .collect();
        if !combined.is_empty() {
            if self.take_send(email, now).await {
                batches.push((uuid::Uuid::new_v4(), combined));
            } else {
                deferred.extend(combined);
            }
        }
        // What waits stays due, unwritten: the next sweep plans again
        // (reading the records back costs less than rewriting each).
        report.waiting += deferred.len() + fresh.len();
        (batches, report)
    }

    async fn take_send(&self, email: &NotifyDestination, now: OffsetDateTime) -> bool {
        let limit = email.max_per_hour as usize;
        match self
            .inner
            .store
            .take_send(notify::NAME, limit, HOUR, now)
            .await
        {
            Ok(taken) => taken,
            Err(e) => {
                tracing::warn!(error = %e, "could not take an email send");
                false
            }
        }
    }

    /// Claims the batch's records, delivers their leads, records the
    /// outcome. `known` is the lead of a one-record batch when the caller
    /// has it already (a new lead); otherwise each lead is read.
    async fn deliver_batch(
        &self,
        destination: &Destination,
        batch: uuid::Uuid,
        items: Vec<PendingItem>,
        known: Option<&StoredLead>,
        now: OffsetDateTime,
    ) -> SweepReport {
        let store = &self.inner.store;
        let started = Instant::now();
        let mut report = SweepReport::default();
        let until = now + lease(destination);
        let mut held: Vec<(PendingItem, StoredLead)> = Vec::new();
        for item in items {
            let item = match store.claim(&item, batch, until).await {
                Ok(item) => item,
                // Another instance has it.
                Err(StoreError::Conflict) => {
                    report.waiting += 1;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not claim a delivery; the next sweep retries");
                    report.waiting += 1;
                    continue;
                }
            };
            if let Some(lead) = known.filter(|lead| lead.id == item.lead_id) {
                held.push((item, lead.clone()));
                continue;
            }
            match store.lead(&item.lead_partition, &item.lead_row_key).await {
                Ok(Some(lead)) => held.push((item, lead)),
                Ok(None) => {
                    self.give_up(&item, "no lead", "the lead is no longer in the table", now)
                        .await;
                    report.dead += 1;
                }
                Err(e) => {
                    // Unclaimed by its lease running out.
                    tracing::warn!(error = %e, "could not read a lead to deliver; the next sweep retries");
                    report.waiting += 1;
                }
            }
        }
        if held.is_empty() {
            return report;
        }
        let leads: Vec<StoredLead> = held.iter().map(|(_, lead)| lead.clone()).collect();
        // The lease counts on this bound, so it is enforced here, whatever
        // a destination's own time-outs (a token fetch, a mail server).
        let bound = attempt_bound(destination);
        let attempt = tokio::time::timeout(
            bound,
            destination.deliver(&self.inner.http, &leads, batch, now),
        )
        .await
        .unwrap_or_else(|_| Attempt::Retry {
            status: "timed out".into(),
            error: format!("no outcome within {} s", bound.as_secs()),
            after: None,
            maybe_done: true,
        });
        let duration_ms = started.elapsed().as_millis() as u64;
        let lead_ids: Vec<&str> = held.iter().map(|(item, _)| item.lead_id.as_str()).collect();
        for (item, _) in &held {
            report.add(self.record(destination.name(), item, &attempt, now).await);
        }
        match &attempt {
            Attempt::Delivered { status } => tracing::info!(
                destination = destination.name(), leads = ?lead_ids, status, duration_ms,
                "lead delivered"
            ),
            Attempt::Retry { status, .. } => tracing::warn!(
                destination = destination.name(), leads = ?lead_ids, status, duration_ms,
                "delivery failed; will retry"
            ),
            Attempt::Dead { status, .. } => tracing::error!(
                destination = destination.name(), leads = ?lead_ids, status, duration_ms,
                "delivery failed for good"
            ),
        }
        report
    }

    /// Writes what an attempt means for one record.
    async fn record(
        &self,
        destination: &str,
        item: &PendingItem,
        attempt: &Attempt,
        now: OffsetDateTime,
    ) -> SweepReport {
        let store = &self.inner.store;
        let mut report = SweepReport::default();
        let written = match attempt {
            Attempt::Delivered { status } => {
                report.delivered += 1;
                store.delivered(item, status, now).await
            }
            Attempt::Dead { status, error } => {
                report.dead += 1;
                store.dead(item, status, error, now).await
            }
            Attempt::Retry {
                status,
                error,
                after,
                maybe_done,
            } => {
                let failures = item.attempts + 1;
                let wait = after.unwrap_or_else(|| backoff(failures));
                let next = now + wait;
                if next - item.enqueued_at > self.inner.max_age {
                    report.dead += 1;
                    let hours = self.inner.max_age.as_secs() / 3_600;
                    let reason = format!(
                        "gave up after {failures} attempts over {hours} h; last: {status} {error}"
                    );
                    store.dead(item, status, &reason, now).await
                } else {
                    report.retrying += 1;
                    store
                        .retry_later(item, next, status, error, *maybe_done)
                        .await
                }
            }
        };
        if let Err(e) = written {
            // The claim runs out and the next sweep tries again: with the
            // same key, so a receiver that got it can tell.
            tracing::warn!(
                destination, lead_id = %item.lead_id, error = %e,
                "could not record a delivery's outcome; the next sweep will retry it"
            );
        }
        report
    }

    /// Marks a record dead without attempting it.
    async fn give_up(&self, item: &PendingItem, status: &str, reason: &str, now: OffsetDateTime) {
        tracing::error!(
            destination = %item.consumer, lead_id = %item.lead_id, reason,
            "delivery failed for good"
        );
        if let Err(e) = self.inner.store.dead(item, status, reason, now).await {
            tracing::warn!(error = %e, "could not record a dead delivery");
        }
    }
}

/// Not waiting for a later attempt, and not held by another instance.
/// The longest one attempt at `destination` may take.
fn attempt_bound(destination: &Destination) -> Duration {
    match destination {
        Destination::Notify(email) => email.send_budget(),
        _ => HTTP_ATTEMPT_BOUND,
    }
}

/// How long a claim on a delivery to `destination` is held (see
/// [`CLAIM_LEASE`]).
fn lease(destination: &Destination) -> Duration {
    SWEEP_BUDGET + attempt_bound(destination) + BOOKKEEPING
}

fn is_due(item: &PendingItem, now: OffsetDateTime) -> bool {
    item.next_attempt_at.is_none_or(|at| at <= now)
        && item.claimed_until.is_none_or(|until| until <= now)
}
