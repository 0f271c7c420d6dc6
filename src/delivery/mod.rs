//! Acting on each lead as it arrives: an email per lead, a Teams card, a
//! signed webhook, a CRM record — each destination switched on by its
//! settings, and routed by offer and action ([`crate::routing`]).
//!
//! The promises, and what keeps them:
//!
//! - **Atomic.** A pending record per destination is written in the lead's
//!   own entity-group transaction ([`crate::store::outbox`]): a stored lead
//!   always has its pending deliveries, a duplicate never adds any.
//! - **Never slows ingest.** LeadIngest answers before any destination is
//!   tried; the first attempts start right after, in the background
//!   ([`first`]), from records written already claimed for them, and
//!   settle in one write: two storage requests per lead delivered.
//! - **Driven by the host.** On Flex Consumption, work left running after
//!   an invocation answered may never finish, so a timer function
//!   (LeadDeliver, every minute) sweeps for due deliveries
//!   ([`Deliverer::sweep`]); standalone mode runs the same sweep on the
//!   same schedule.
//! - **Once in effect.** A delivery is claimed (with its ETag) before it
//!   is acted on: two instances never deliver one record at once. What is
//!   sent carries an idempotency key stable across retries (`webhook-id`,
//!   the email's `Message-ID`, a CRM's record key): a crash between
//!   sending and recording resends, never as something the receiver
//!   cannot recognise.
//! - **Retried, then dead, never forgotten.** See [`settle`]: backoff from
//!   10 s to 15 min until `DELIVERY_MAX_AGE_HOURS`; then dead, logged at
//!   error, and reported by the next digest — with nothing a receiver
//!   echoed of our credentials ([`redact`]).
//!
//! - [`destination`] — what every destination is to the engine (a trait);
//!   [`destinations`] — each kind, with its settings; [`registry`] —
//!   the kinds, and the destinations the settings configure.
//! - [`engine`] — the sweep; [`first`] — a new lead's first attempts,
//!   [`lanes`] — how many at once;
//!   [`scan`] — reading due deliveries; [`budget`] — the hourly cap;
//!   [`lease`] — time bounds and claims.
//! - [`outcome`] — what an attempt came to; [`settle`] — what that means
//!   for its record.

pub mod budget;
pub mod destination;
pub mod destinations;
pub mod engine;
pub mod first;
pub mod lanes;
pub mod lease;
pub mod outcome;
pub mod redact;
pub mod registry;
pub mod scan;
pub mod settle;

pub use destination::{Batch, Destination, Family};
pub use engine::{Deliverer, SweepReport};
pub use first::Reservation;
pub use lanes::Quiesced;
pub use outcome::{Outcome, Status};
pub use registry::Destinations;
