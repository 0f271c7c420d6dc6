//! A new lead's first attempts, right after it is stored — two storage
//! requests for a lead delivered everywhere at once: the lead's own
//! transaction writes its pending deliveries *already claimed* by the
//! attempts about to run ([`Deliverer::reserve`]) — for several
//! destinations, as one bundle record — and the outcomes of all its
//! destinations are settled in one transaction after (unpacking the
//! bundle: `store::outbox::bundle`). When a destination is slow, the
//! outcomes known after a second are written then, and the slow one's
//! when it answers.
//!
//! Ingest comes first: at most [`FAST_LANE`](super::lanes::FAST_LANE) first attempts per destination
//! are in flight at once. Beyond that (a burst, a hanging receiver) the
//! lead's record is written unclaimed and the sweep delivers it, so
//! deliveries never take the storage, connections and CPU ingest needs.
//!
//! Nothing here must finish: on Flex Consumption work left running after
//! the answer may never end. A claim that is never settled expires, and
//! the sweep (driven by the host's timer) delivers the lead under the same
//! idempotency key.

use super::destination::Destination;
use super::engine::Deliverer;
use super::lease::lease;
use super::outcome::log_outcome;
use super::settle::settle;
use crate::clock::Clock;
use crate::domain::DestinationName;
use crate::store::{
    Claimed, Consumer, DeliveryItem, LeadRef, Lease, NewRecord, RecordChange, Settled, StoredLead,
};
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::OwnedSemaphorePermit;

/// A failed first attempt is retried here while the next attempt is this
/// close (at most [`FAST_ROUNDS`] times); later ones are the sweep's.
const FAST_RETRY_WITHIN: Duration = Duration::from_secs(30);
const FAST_ROUNDS: usize = 3;
/// When a lead's destinations have not all answered by then, the outcomes
/// known are written at once: a delivery answered 2xx is then on record
/// within about this long, not only once its slowest sibling is done (a
/// crash in between would send it again, and Teams and email cannot tell
/// a repeat). When all answer sooner — the common case — their outcomes
/// are one transaction.
const RECORD_KNOWN_AFTER: Duration = Duration::from_secs(1);

/// A first attempt's delivery: held since the lead was written, or — for
/// a quick retry — released by the last attempt, to be claimed again.
enum Turn {
    Held(Claimed),
    Released(DeliveryItem),
}

impl Turn {
    fn item(&self) -> &DeliveryItem {
        match self {
            Self::Held(claimed) => claimed,
            Self::Released(item) => item,
        }
    }
}

/// The first attempts a new lead may make now: a lane each, and how long
/// its record is claimed for.
#[derive(Debug, Default)]
pub struct Reservation {
    lanes: Vec<(DestinationName, OwnedSemaphorePermit, OffsetDateTime)>,
}

impl Deliverer {
    /// Reserves a first attempt at `destinations` where a lane is free.
    pub fn reserve(&self, destinations: &[DestinationName], now: OffsetDateTime) -> Reservation {
        let inner = &self.inner;
        let lanes = destinations
            .iter()
            .filter_map(|name| {
                let destination = inner.destinations.get(name)?;
                let permit = inner.lanes.try_acquire(name)?;
                if permit.is_none() {
                    tracing::debug!(
                        destination = %name,
                        "first attempts of this destination at their limit; the sweep delivers"
                    );
                }
                Some((
                    name.clone(),
                    permit?,
                    now + lease(destination.attempt_bound()),
                ))
            })
            .collect();
        Reservation { lanes }
    }

    /// The records a new lead is written with, at `place`: the digest's,
    /// and one per destination — claimed by the reserved first attempts.
    pub fn new_records(
        &self,
        destinations: &[DestinationName],
        reservation: &Reservation,
        place: &LeadRef,
    ) -> Vec<NewRecord> {
        let mut records = vec![NewRecord::unclaimed(Consumer::Digest)];
        records.extend(destinations.iter().map(|name| {
            NewRecord {
                consumer: Consumer::Destination(name.clone()),
                claim: reservation
                    .lanes
                    .iter()
                    .find(|(reserved, _, _)| reserved == name)
                    .map(|(_, _, until)| Lease {
                        until: *until,
                        batch: self.delivery_id(name, &place.row_key),
                    }),
            }
        }));
        records
    }

    /// The first attempts of a new lead, from the records its save just
    /// wrote — nothing is read back. Takes the (cheaply cloned) engine,
    /// for `tokio::spawn`.
    pub async fn deliver_new(
        self,
        reservation: Reservation,
        lead: StoredLead,
        written: Vec<Claimed>,
        clock: Clock,
    ) {
        let mut lanes: BTreeMap<DestinationName, OwnedSemaphorePermit> = reservation
            .lanes
            .into_iter()
            .map(|(name, permit, _)| (name, permit))
            .collect();
        // Only the records claimed for our lanes: the rest are the sweep's.
        let mut turns: Vec<Turn> = written
            .into_iter()
            .filter(|claimed| lanes.contains_key(&claimed.destination))
            .map(Turn::Held)
            .collect();
        for _ in 0..FAST_ROUNDS {
            let now = clock.now();
            let mut attempts = Vec::with_capacity(turns.len());
            for turn in turns.drain(..) {
                let item = turn.item();
                let Some(destination) = self.inner.destinations.get(&item.destination) else {
                    continue;
                };
                // The lane reserved for the first round; a retry takes one
                // only if it is free (else the sweep retries).
                let lane = lanes
                    .remove(&item.destination)
                    .or_else(|| self.inner.lanes.try_acquire(&item.destination).flatten());
                if let Some(lane) = lane {
                    attempts.push(self.first_attempt(destination.clone(), turn, &lead, now, lane));
                }
            }
            let settled = self.attempt_and_record(attempts).await;
            let mut next: Option<OffsetDateTime> = None;
            for one in settled {
                match one.result {
                    Ok(Some(item)) if !self.inner.budgets.contains_key(&item.destination) => {
                        let at = item.next_attempt_at.unwrap_or(now);
                        next = Some(next.map_or(at, |n| n.min(at)));
                        turns.push(Turn::Released(item));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(
                            destination = %one.item.destination, lead_id = %lead.id, error = %e,
                            "could not record a delivery's outcome; the sweep will retry it"
                        );
                    }
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

    /// Runs `attempts` side by side and records their outcomes: all in one
    /// transaction when all end within [`RECORD_KNOWN_AFTER`]; else those
    /// known by then at once (a bundle is unpacked, the deliveries still
    /// being attempted becoming records of their own) and the rest as they
    /// end.
    async fn attempt_and_record<F>(&self, attempts: Vec<F>) -> Vec<Settled>
    where
        F: std::future::Future<Output = Option<(Claimed, RecordChange)>>,
    {
        let store = &self.inner.store;
        let mut running: FuturesUnordered<F> = attempts.into_iter().collect();
        let mut known = Vec::new();
        let mut settled = Vec::new();
        // Deliveries unpacked from their bundle while their attempt ran:
        // their outcome is written to the record they became.
        let mut unpacked: BTreeMap<DestinationName, Claimed> = BTreeMap::new();
        let split = tokio::time::sleep(RECORD_KNOWN_AFTER);
        tokio::pin!(split);
        let mut split_done = false;
        loop {
            tokio::select! {
                next = running.next() => match next {
                    Some(Some(change)) => known.push(change),
                    Some(None) => {}
                    None => break,
                },
                _ = &mut split, if !split_done && !known.is_empty() => {
                    split_done = true;
                    let settlement = store.deliveries().settle_some(std::mem::take(&mut known)).await;
                    settled.extend(settlement.settled);
                    unpacked.extend(
                        settlement
                            .unpacked
                            .into_iter()
                            .map(|item| (item.destination.clone(), item)),
                    );
                }
            }
        }
        let rest = known
            .into_iter()
            .map(|(item, change)| match unpacked.remove(&item.destination) {
                Some(record) => (record, change),
                None => (item, change),
            })
            .collect();
        settled.extend(store.deliveries().settle(rest).await);
        settled
    }

    /// One destination's attempt at a new lead: the change to write, or
    /// nothing (not due, or taken by a sweep meanwhile). `lane` is held
    /// for the attempt only — not while the lead's other destinations
    /// answer and the outcomes are written — so a slow destination of one
    /// lead never keeps the next lead from its first attempts.
    async fn first_attempt(
        &self,
        destination: Arc<dyn Destination>,
        turn: Turn,
        lead: &StoredLead,
        now: OffsetDateTime,
        lane: OwnedSemaphorePermit,
    ) -> Option<(Claimed, RecordChange)> {
        let inner = &self.inner;
        let item = match turn {
            Turn::Held(claimed) => claimed,
            Turn::Released(item) => {
                // The same key as before when the receiver may have acted.
                let key = item
                    .claim_batch
                    .unwrap_or_else(|| self.delivery_id(&item.destination, &item.key.lead_row_key));
                let until = now + lease(destination.attempt_bound());
                inner
                    .store
                    .deliveries()
                    .claim(&item, key, until)
                    .await
                    .ok()?
            }
        };
        let key = item
            .batch()
            .unwrap_or_else(|| self.delivery_id(&item.destination, &item.key.lead_row_key));
        if let Some(budget) = inner.budgets.get(destination.name()) {
            // The hour's last send is the sweep's, to combine what waits.
            let taken = budget.take(&inner.store, now, 1).await.unwrap_or(false);
            if !taken {
                return Some((item, RecordChange::Wait { next: now }));
            }
        }
        let started = Instant::now();
        let outcome = self
            .attempt(destination.as_ref(), std::slice::from_ref(lead), key, now)
            .await;
        drop(lane);
        log_outcome(
            destination.name(),
            std::slice::from_ref(&item),
            &outcome,
            started,
        );
        // A `Retry-After` counts from the answer, not from the lead's arrival.
        let answered = super::engine::after(now, started);
        let change = settle(&item, &outcome, answered, inner.max_age, &inner.redactor);
        Some((item, change))
    }
}
