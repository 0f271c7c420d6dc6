//! Load and faults, end to end, in a test binary of its own: the real routes
//! against a real Azurite and a real MailDev (the API tests' harness), all on
//! loopback, every loop bounded.
//!
//! - 10,000 distinct leads over 64 concurrent connections: every lead
//!   answered 2xx is in the table exactly once, under the id it was given.
//! - The same while Azurite is stopped a third of the way in and started
//!   again: every lead answered 2xx is stored, every lead not stored was
//!   refused; a refused lead that was stored anyway is counted, not hidden.
//! - The digest with the mail sink down for a run, storage down for a run,
//!   and storage cut between the send and the checkpoint: after recovery
//!   every lead was reported, and the leads reported twice are counted.
//!
//! Counts are printed to stderr (not captured), so a normal `cargo test`
//! run shows them. Timing is printed, never asserted beyond generous bounds.

mod digest_faults;
mod ingest;

use std::time::Duration;
use testkit::AppOptions;

pub(crate) const LEADS: usize = 10_000;
pub(crate) const CONNECTIONS: usize = 64;
/// Longer than the handler's write deadline (6 s), so that some leads are
/// refused while storage is down.
pub(crate) const OUTAGE: Duration = Duration::from_secs(8);
/// Every load run stops by itself well within this.
pub(crate) const LOAD_BOUND: Duration = Duration::from_secs(300);

/// These tests measure throughput and stop services: one at a time.
pub(crate) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub(crate) use testkit::report;

pub(crate) fn options(storage: String, smtp_url: Option<String>) -> AppOptions {
    AppOptions {
        storage,
        smtp_url,
        key: None,
        host_port: None,
        extra: Vec::new(),
    }
}
