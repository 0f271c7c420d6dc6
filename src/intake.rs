//! Taking in one lead, whatever calls: parse it; keep a body that is not a
//! lead (quarantine) so nothing Partner Center sent is lost; decide who
//! gets it ([`crate::routing`]); store it with its pending records in one
//! transaction — those of the first attempts about to run already claimed
//! for them; then start those attempts in the background. The HTTP
//! handler only turns what happened into a status.

use crate::clock::Clock;
use crate::delivery::Deliverer;
use crate::domain::{DestinationName, Lead, LeadError};
use crate::store::{keys::LeadId, Consumer, LeadStore, NewRecord, StoreError};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;
use tracing::Instrument as _;

/// A request body, as far as it was read.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    Complete(&'a [u8]),
    /// Longer than a lead can be: its first bytes, and its declared length.
    TooLarge {
        prefix: &'a [u8],
        length: Option<u64>,
    },
}

/// What became of a body.
#[derive(Debug)]
pub enum Ingested {
    /// Stored (or found stored already today: not `created`).
    Stored {
        id: LeadId,
        created: bool,
        is_test: bool,
        bytes: usize,
    },
    /// Not a lead: refused, its body kept under `kept`'s id if it could be.
    Refused {
        error: LeadError,
        length: u64,
        kept: Result<String, StoreError>,
    },
    /// Storage failed: the lead may not be stored. `raw` is the body, for
    /// an operator to post again.
    NotStored { error: StoreError, raw: String },
}

/// The status LeadIngest answers a body that is not a lead (kept with it).
pub fn refusal_status(error: &LeadError) -> u16 {
    match error {
        LeadError::TooLarge => 413,
        _ => 400,
    }
}

/// More leads than this being stored at once is a burst: their first
/// attempts give way to the sweep, so that storage serves ingest first (a
/// first attempt writes its outcomes: a second storage request per lead).
/// Leads that arrive on their own — the usual case, a few an hour — are
/// delivered at once.
pub const BURST: usize = 2;

/// Takes in leads. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Intake {
    store: LeadStore,
    deliverer: Option<Deliverer>,
    clock: Clock,
    /// Rate each lead as it is stored (`LEAD_RATING`).
    rate_leads: bool,
    /// Leads being stored now.
    storing: Arc<AtomicUsize>,
}

/// Counts a lead being stored while it lives.
struct Storing(Arc<AtomicUsize>);

impl Drop for Storing {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Intake {
    pub fn new(store: LeadStore, deliverer: Option<Deliverer>, clock: Clock) -> Self {
        Self {
            store,
            deliverer,
            clock,
            rate_leads: true,
            storing: Arc::default(),
        }
    }

    /// Rates each lead as it is stored, or (`false`) none.
    pub fn rating_leads(self, rate_leads: bool) -> Self {
        Self { rate_leads, ..self }
    }

    /// One body, received now.
    pub async fn ingest(&self, body: Body<'_>) -> Ingested {
        let received_at = self.clock.now();
        let parsed = match body {
            Body::Complete(bytes) => Lead::parse(bytes).map_err(|e| (e, bytes.len() as u64)),
            Body::TooLarge { prefix, length } => {
                Err((LeadError::TooLarge, length.unwrap_or(prefix.len() as u64)))
            }
        };
        match parsed {
            // Rated once, here: routes may take it, and it is stored.
            Ok(lead) if self.rate_leads => self.store_lead(lead.rated(), received_at).await,
            Ok(lead) => self.store_lead(lead, received_at).await,
            Err((error, length)) => {
                let kept = match body {
                    Body::Complete(bytes) => bytes,
                    Body::TooLarge { prefix, .. } => prefix,
                };
                let kept = self
                    .store
                    .quarantine(
                        received_at,
                        refusal_status(&error),
                        &error.to_string(),
                        length,
                        kept,
                    )
                    .await;
                Ingested::Refused {
                    error,
                    length,
                    kept,
                }
            }
        }
    }

    /// Whether a lead posted now could be stored: storage answers within
    /// `within` (the health endpoint's question).
    pub async fn can_store(&self, within: std::time::Duration) -> bool {
        matches!(
            tokio::time::timeout(within, self.store.probe()).await,
            Ok(Ok(()))
        )
    }

    async fn store_lead(&self, lead: Lead, received_at: OffsetDateTime) -> Ingested {
        let destinations: Vec<DestinationName> = match &self.deliverer {
            Some(deliverer) => deliverer
                .routes()
                .destinations_for(&lead)
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        let storing = Storing(self.storing.clone());
        let in_burst = storing.0.fetch_add(1, Ordering::Relaxed) >= BURST;
        let reservation = match &self.deliverer {
            Some(deliverer) if !in_burst => deliverer.reserve(&destinations, received_at),
            _ => {
                if in_burst && !destinations.is_empty() {
                    tracing::debug!("a burst of leads: this one's deliveries are the sweep's");
                }
                Default::default()
            }
        };
        let saved = self
            .store
            .save_lead(&lead, received_at, |place| match &self.deliverer {
                Some(deliverer) => deliverer.new_records(&destinations, &reservation, place),
                None => vec![NewRecord::unclaimed(Consumer::Digest)],
            })
            .await;
        match saved {
            Ok(saved) => {
                let (id, created, is_test) = (
                    saved.lead.id.clone(),
                    saved.created,
                    saved.lead.lead.is_test,
                );
                // The first attempts start now, in the background: the
                // answer never waits for a destination, and what this
                // leaves undone the LeadDeliver sweep finishes.
                // Under the request's span, naming the lead, so its log
                // lines say which request started them.
                if let (true, Some(deliverer)) = (created, &self.deliverer) {
                    let span = tracing::info_span!("first_attempts", lead_id = %id);
                    tokio::spawn(
                        deliverer
                            .clone()
                            .deliver_new(
                                reservation,
                                saved.lead,
                                saved.deliveries,
                                self.clock.clone(),
                            )
                            .instrument(span),
                    );
                }
                Ingested::Stored {
                    id,
                    created,
                    is_test,
                    bytes: lead.raw.len(),
                }
            }
            Err(error) => Ingested::NotStored {
                error,
                raw: lead.raw,
            },
        }
    }
}
