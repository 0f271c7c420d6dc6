//! Acting on each lead as it arrives: an email per lead, a Teams card, a
//! signed webhook — each destination switched on by its settings.
//!
//! The promises, and what keeps them:
//!
//! - **Atomic.** A pending record per destination is written in the lead's
//!   own entity-group transaction ([`crate::store::outbox`]): a stored lead
//!   always has its pending deliveries, a duplicate never adds any.
//! - **Never slows ingest.** LeadIngest answers before any destination is
//!   tried; the first attempt starts right after, in the background
//!   ([`Deliverer::deliver_new`]).
//! - **Driven by the host.** On Flex Consumption, work left running after an
//!   invocation answered may never finish, so a timer function (LeadDeliver,
//!   every minute) sweeps for due deliveries ([`Deliverer::sweep`]);
//!   standalone mode runs the same sweep on the same schedule.
//! - **Once in effect.** A sweep claims a record with its ETag before acting
//!   on it: two instances never deliver one record at once. What is sent
//!   carries an idempotency key stable across retries (`webhook-id`, the
//!   email's `Message-ID`): a crash between sending and recording resends,
//!   never as something the receiver cannot recognise.
//! - **Retried, then dead, never forgotten.** See [`attempt`]: backoff from
//!   10 s to 15 min until `DELIVERY_MAX_AGE_HOURS`; then dead, logged at
//!   error, and reported by the next digest.
//!
//! - [`engine`] — the sweep and the first attempt.
//! - [`attempt`] — outcomes, HTTP answers, backoff.
//! - [`notify`], [`teams`], [`webhook`], [`dataverse`], [`hubspot`] — the
//!   destinations.

pub mod attempt;
mod crm;
pub mod dataverse;
pub mod engine;
pub mod hubspot;
pub mod notify;
pub mod teams;
pub mod webhook;

pub use engine::{Deliverer, Quiesced, SweepReport};

use crate::store::StoredLead;
use attempt::Attempt;
use time::OffsetDateTime;

/// A configured destination.
#[derive(Debug)]
pub enum Destination {
    Notify(notify::NotifyDestination),
    Teams(teams::TeamsDestination),
    Webhook(webhook::WebhookDestination),
    Dataverse(dataverse::DataverseDestination),
    HubSpot(hubspot::HubSpotDestination),
}

impl Destination {
    /// The name in pending records, logs and the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Notify(_) => notify::NAME,
            Self::Teams(_) => teams::NAME,
            Self::Webhook(_) => webhook::NAME,
            Self::Dataverse(_) => dataverse::NAME,
            Self::HubSpot(_) => hubspot::NAME,
        }
    }

    /// CRMs get Partner Center's test leads only when asked to.
    pub fn is_crm(&self) -> bool {
        matches!(self, Self::Dataverse(_) | Self::HubSpot(_))
    }

    /// Delivers `leads` (one, but for a combined email) under `batch`, the
    /// idempotency key of what is sent.
    async fn deliver(
        &self,
        http: &reqwest::Client,
        leads: &[StoredLead],
        batch: uuid::Uuid,
        now: OffsetDateTime,
    ) -> Attempt {
        match (self, leads) {
            (Self::Notify(email), leads) => email.deliver(leads, batch).await,
            (Self::Teams(teams), [lead]) => teams.deliver(http, lead, now).await,
            (Self::Webhook(webhook), [lead]) => webhook.deliver(http, lead, batch, now).await,
            (Self::Dataverse(dataverse), [lead]) => dataverse.deliver(http, lead, now).await,
            (Self::HubSpot(hubspot), [lead]) => hubspot.deliver(http, lead, now).await,
            _ => Attempt::Dead {
                status: "not sent".into(),
                error: "this destination takes one lead at a time".into(),
            },
        }
    }
}
