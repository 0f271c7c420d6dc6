//! Domain types: values that are valid once you hold them. They know nothing
//! of configuration, storage, email transports or HTTP, so every other
//! module can use them and none of them uses another module back.
//!
//! - [`lead`] — Partner Center's lead payload, parsed and normalised;
//!   [`lenient_json`] recovers the almost-right JSON some senders emit.
//! - [`email_address`] — an email address and a recipient list.
//! - [`destination_name`] — a delivery destination's name (`teams:sales`).
//! - [`secret`] — a value kept out of logs and error messages.
//! - [`time_range`] — a half-open span of receive times, `[start, end)`.
//! - [`text`] — customer text made safe to show on one line.
//! - [`rating`] — hot, warm or cold, and why: which lead to call first.

pub mod destination_name;
pub mod email_address;
pub mod lead;
pub mod lenient_json;
pub mod rating;
pub mod secret;
pub mod table_lead;
pub mod text;
pub mod time_range;

pub use destination_name::DestinationName;
pub use email_address::{EmailAddress, Recipients};
pub use lead::{
    action_in_words, Customer, Fingerprint, Lead, LeadError, LeadSource, Origin, MAX_BODY_BYTES,
};
pub use rating::{Level, Rating};
pub use secret::Secret;
pub use time_range::TimeRange;
