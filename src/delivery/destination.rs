//! What every destination is to the engine: a name, how many leads one
//! send may carry, how long one attempt may take, an optional hourly cap,
//! and `deliver`. The engine knows nothing else of any destination, so a
//! new one is a file in [`super::destinations`] and a line in
//! [`super::registry`].

use super::lease::HTTP_ATTEMPT_BOUND;
use super::outcome::Outcome;
use crate::configuration::{ConfigError, ConfigWarning, Scope, Settings};
use crate::domain::{DestinationName, Secret};
use crate::store::StoredLead;
use futures::future::BoxFuture;
use std::time::Duration;
use time::OffsetDateTime;

/// One send: the leads it carries (never more than the destination's
/// [`capacity`](Destination::capacity), never none), its idempotency key
/// (stable across retries of the same send), and the shared HTTP client.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    pub leads: &'a [StoredLead],
    pub key: uuid::Uuid,
    pub now: OffsetDateTime,
    pub http: &'a reqwest::Client,
}

impl<'a> Batch<'a> {
    /// The lead of a one-lead send.
    pub fn lead(&self) -> &'a StoredLead {
        &self.leads[0]
    }
}

/// What a destination does with a lead's routing, by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Tells people (email, Teams) or systems (webhooks) about the lead.
    Notification,
    /// Writes a record into a CRM: test leads only when asked for, and a
    /// do-not-contact lead only with the CRM's own do-not-contact fields.
    Crm {
        /// Whether it can mark a record "do not contact".
        writes_do_not_contact: bool,
    },
}

pub trait Destination: Send + Sync + std::fmt::Debug {
    /// As in records, logs and the command line: `teams`, `teams:sales`.
    fn name(&self) -> &DestinationName;

    fn family(&self) -> Family {
        Family::Notification
    }

    /// Leads one send may carry; more than one only where the receiver
    /// reads them together (an email listing several).
    fn capacity(&self) -> usize {
        1
    }

    /// Sends per rolling hour, shared by every instance; beyond it the
    /// leads waiting are combined into the hour's last send.
    fn hourly_cap(&self) -> Option<HourlyCap> {
        None
    }

    /// The longest one attempt takes, whatever the receiver does: the
    /// engine enforces it, and claims are held for it.
    fn attempt_bound(&self) -> Duration {
        HTTP_ATTEMPT_BOUND
    }

    /// The credentials it holds: redacted from whatever is stored.
    fn secrets(&self) -> Vec<Secret> {
        Vec::new()
    }

    fn deliver<'a>(&'a self, batch: Batch<'a>) -> BoxFuture<'a, Outcome>;
}

/// A cap on sends per rolling hour that a destination shares with every
/// other sender of one budget: the per-lead emails and the digest share
/// their sending domain's (ACS allows an Azure-managed domain 10 an hour,
/// whoever sends them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourlyCap {
    /// The budget's name: where its sends are counted.
    pub budget: String,
    /// Sends an hour the whole budget allows.
    pub budget_limit: u32,
    /// This destination's own, lower cap, if it has one.
    pub own_limit: Option<u32>,
    /// A sender the budget never holds back (the digest): while it has
    /// not sent within the hour, one send is kept for it.
    pub reserved_for: Option<&'static str>,
}

/// How a kind builds its destination from its (possibly labelled)
/// settings, once its first setting (the one that switches it on) is set.
/// A setting that is wrong stops start-up; one that is only doubtful is
/// pushed to the warnings.
pub type Build = fn(
    Scope<'_>,
    DestinationName,
    &Settings,
    &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError>;
