//! The outbox: one pending record per lead and consumer, written in the
//! lead's own entity-group transaction, so a stored lead always has its
//! pending work and a duplicate never adds any.
//!
//! A consumer ([`Consumer`]) is the digest or a delivery destination
//! (`email`, `teams`, `teams:sales`, …). Records live in the leads table
//! beside the leads, keyed by [`RecordKey`]:
//!
//! - `P.<consumer>.<lead row key>` — pending; consumers read only this range;
//! - `S.<consumer>.<lead row key>` — delivered (destinations only);
//! - `X.<consumer>.<lead row key>` — dead: could not be delivered;
//! - `P.*.<lead row key>` — a new lead's pending deliveries to several
//!   destinations, as one record until it is unpacked ([`bundle`]);
//! - `P.digest.X.<destination>.<lead row key>` — a dead letter for the
//!   digest to report, written with the `X` record.
//!
//! Finding pending work reads only `P.` ranges, never a table scan: pending
//! records are inserted only into today's partition (ingest: the receive
//! day, which for a write committing just after midnight is yesterday), or
//! beside a pending record they replace. So a consumer's pending records
//! live in partitions at or after its *cursor*, the oldest day that may
//! still hold one, which it raises as its work is done. The digest and the
//! deliveries keep a cursor each ([`Progress`]): the sweep never sees the
//! digest's records, and the digest never moves past a day where a
//! delivery is still pending (a delivery that dies there writes the
//! digest's dead letter beside it). A write cannot commit more than minutes
//! late (Table storage refuses a request whose `x-ms-date` is 15 minutes
//! old), so a cursor kept at least a day behind today never passes a record
//! still being written.
//!
//! - [`record`] — consumers, states, keys; [`row`] — a record's columns;
//!   [`reading`] — one reading of a row: a record, or a bundle as the
//!   records it becomes.
//! - [`delivery`] — pending deliveries: reading and claiming them;
//!   [`change`] — what an attempt means, as the rows and operations that
//!   write it; [`settle`] — writing it; [`unpack`] — a bundle's deliveries
//!   becoming records of their own;
//!   [`bundle`] — several deliveries of a new lead as one record;
//!   [`listing`] — delivery records as the command line lists and
//!   requeues them.
//! - [`digest`] — the digest's records: reading, stamping, removing.
//! - [`backfill`] — enqueueing older leads for a consumer added later.

mod backfill;
pub mod bundle;
mod change;
mod delivery;
mod digest;
mod listing;
pub mod reading;
pub mod record;
pub mod row;
mod settle;
mod unpack;

pub use bundle::{Bundle, Bundled};
pub use change::RecordChange;
pub use delivery::{Claimed, Deliveries, DeliveryItem, PendingPage};
pub use digest::{DigestItem, DigestQueue};
pub use listing::DeliveryRecord;
pub use record::{Consumer, LeadRef, Lease, RecordKey, RecordState};
pub use row::{DeadLetter, OutboxRow};
pub use settle::{Settled, Settlement};

use super::{keys, retrying, LeadStore, StoreError};
use azure_core::StatusCode;
use serde_json::{json, Map, Value};
use time::{Date, OffsetDateTime};

/// Before the first cursor is written, readers look this far back.
const FIRST_LOOKBACK_DAYS: i64 = 90;
/// Operations per entity-group transaction: the service's limit.
const MAX_BATCH: usize = 100;

const CURSOR_PARTITION: &str = "cursor";
/// The shared cursor of versions before 0.3: where each own cursor starts.
const LEGACY_CURSOR_ROW: &str = "pending";
const OLDEST_DAY: &str = "OldestDay";

/// Whose progress through the outbox a cursor keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Digest,
    Deliveries,
}

impl Progress {
    fn row(self) -> &'static str {
        match self {
            Self::Digest => "pending.digest",
            Self::Deliveries => "pending.deliveries",
        }
    }
}

/// Where pending records may be: the cursor's day through today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingDays {
    pub first: Date,
    pub last: Date,
}

impl PendingDays {
    /// Every day from `first` through `last`.
    pub fn new(first: Date, last: Date) -> Self {
        Self { first, last }
    }
}

/// Where `lead`, received at `received_at`, is (or will be) stored.
pub fn lead_ref_of(lead: &crate::domain::Lead, received_at: OffsetDateTime) -> LeadRef {
    let received_at = keys::truncate_to_micros(received_at);
    LeadRef {
        partition: keys::partition_key(received_at),
        row_key: keys::lead_row_key(received_at, &lead.fingerprint),
        id: keys::LeadId::new(received_at.date(), &lead.fingerprint),
        is_test: lead.is_test,
        offer: None,
        action: None,
        rating: None,
    }
    .labelled(lead)
}

/// Where a stored lead lives, from what its row holds.
pub fn lead_ref(lead: &super::StoredLead) -> LeadRef {
    LeadRef {
        partition: keys::partition_key(lead.received_at),
        row_key: keys::lead_row_key(lead.received_at, &lead.lead.fingerprint),
        id: lead.id.clone(),
        is_test: lead.lead.is_test,
        offer: None,
        action: None,
        rating: None,
    }
    .labelled(&lead.lead)
}

impl LeadStore {
    /// The days that may hold `whose` pending records at `now`. The
    /// digest's start no later than the deliveries' (see the module doc).
    pub async fn pending_days(
        &self,
        whose: Progress,
        now: OffsetDateTime,
    ) -> Result<PendingDays, StoreError> {
        let cursor = |row| async move {
            let client = self
                .digest
                .partition_key_client(CURSOR_PARTITION)
                .entity_client(row);
            retrying("read an outbox cursor", || async {
                match client.get::<Map<String, Value>>().await {
                    Ok(found) => Ok(found
                        .entity
                        .get(OLDEST_DAY)
                        .and_then(Value::as_str)
                        .and_then(keys::parse_day_key)),
                    Err(e) if super::status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                    Err(e) => Err(e),
                }
            })
            .await
        };
        let own = match cursor(whose.row()).await? {
            Some(day) => Some(day),
            None => cursor(LEGACY_CURSOR_ROW).await?,
        };
        let mut first =
            own.unwrap_or_else(|| (now - time::Duration::days(FIRST_LOOKBACK_DAYS)).date());
        if whose == Progress::Digest {
            if let Some(deliveries) = cursor(Progress::Deliveries.row()).await? {
                first = first.min(deliveries);
            }
        }
        Ok(PendingDays {
            first,
            last: now.date(),
        })
    }

    /// Moves `whose` cursor up to `oldest_pending` (the oldest day a
    /// complete read of its pending records found, `None` if it found
    /// none), never past the day before `now`.
    pub async fn raise_cursor(
        &self,
        whose: Progress,
        days: PendingDays,
        oldest_pending: Option<Date>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let floor = (now - time::Duration::days(1)).date();
        let cursor = oldest_pending.map_or(floor, |day| day.min(floor));
        if cursor <= days.first {
            return Ok(());
        }
        let row = Map::from_iter([
            (keys::PARTITION_KEY.to_owned(), json!(CURSOR_PARTITION)),
            (keys::ROW_KEY.to_owned(), json!(whose.row())),
            (OLDEST_DAY.to_owned(), json!(keys::day_key(cursor))),
        ]);
        let client = self
            .digest
            .partition_key_client(CURSOR_PARTITION)
            .entity_client(whose.row());
        retrying("move an outbox cursor", || async {
            client.insert_or_replace(&row)?.await
        })
        .await
        .map(|_| ())
    }
}
