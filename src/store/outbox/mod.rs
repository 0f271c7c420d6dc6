//! The outbox: one pending record per lead and consumer, written in the
//! lead's own entity-group transaction, so a stored lead always has its
//! pending work and a duplicate never adds any.
//!
//! A consumer is the digest or a delivery destination (`email`, `teams`,
//! `webhook`, …). Records live in the leads table beside the leads:
//!
//! - `P.<consumer>.<lead row key>` — pending; consumers read only this range;
//! - `S.<consumer>.<lead row key>` — delivered (destinations only);
//! - `X.<consumer>.<lead row key>` — dead: could not be delivered;
//! - `P.digest.X.<destination>.<lead row key>` — a dead letter for the
//!   digest to report, written with the `X` record.
//!
//! Finding pending work reads only `P.` ranges, never a table scan: pending
//! records are inserted only into today's partition (ingest: the receive
//! day, which for a write committing just after midnight is yesterday), or
//! beside a pending record they replace. So every pending record lives in a
//! partition at or after the *cursor*, the oldest day that may still hold
//! one, which readers raise as work is done ([`LeadStore::pending`]). A
//! write cannot commit more than minutes late (Table storage refuses a
//! request whose `x-ms-date` is 15 minutes old), so a cursor kept at least a
//! day behind today never passes a record still being written.

use super::digest_state::Version;
use super::entity::{datetime, put_datetime};
use super::{keys, pages, retrying, LeadStore, StoreError, StoredLead};
use azure_core::StatusCode;
use azure_data_tables::operations::TransactionBuilder;
use futures::{Stream, TryStreamExt};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime};

/// The digest's consumer name.
pub const DIGEST: &str = "digest";
const PENDING: &str = "P";
const DELIVERED: &str = "S";
const DEAD: &str = "X";

mod delivery;
mod digest;

pub use delivery::{DeliveryRecord, RecordState};
/// Before the first cursor is written, readers look this far back.
const FIRST_LOOKBACK_DAYS: i64 = 90;
/// Operations per entity-group transaction: the service's limit.
const MAX_BATCH: usize = 100;

const CURSOR_PARTITION: &str = "cursor";
const CURSOR_ROW: &str = "pending";

/// Which lead a record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRef {
    pub partition: String,
    pub row_key: String,
    pub id: String,
    /// Partner Center's test lead: the digest counts these apart.
    pub is_test: bool,
}

/// A pending record, as read back.
#[derive(Debug, Clone)]
pub struct PendingItem {
    pub consumer: String,
    /// Where this record lives.
    pub partition: String,
    pub row_key: String,
    /// The lead it is about.
    pub lead_partition: String,
    pub lead_row_key: String,
    pub lead_id: String,
    pub is_test: bool,
    pub enqueued_at: OffsetDateTime,
    /// For the digest: a destination that gave up on this lead.
    pub dead_letter: Option<DeadLetter>,
    /// The digest run that holds this record.
    pub digest_run: Option<uuid::Uuid>,
    /// Delivery attempts that failed so far, and the last one's answer.
    pub attempts: u32,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    /// Not to be tried before this.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// A delivery holds this record until then; with the batch it sends
    /// it in (whose id is the idempotency key of what it sends).
    pub claimed_until: Option<OffsetDateTime>,
    pub claim_batch: Option<uuid::Uuid>,
    pub version: Version,
}

/// Why a destination gave up on a lead, as the digest reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub destination: String,
    pub last_status: String,
    pub excerpt: String,
    pub died_at: OffsetDateTime,
}

/// The row key of `consumer`'s record in `state` about a lead.
pub(super) fn state_row_key(state: &str, consumer: &str, lead_row_key: &str) -> String {
    format!("{state}.{consumer}.{lead_row_key}")
}

pub(super) fn pending_row_key(consumer: &str, lead_row_key: &str) -> String {
    state_row_key(PENDING, consumer, lead_row_key)
}

/// `RowKey ge 'P.<consumer>.' and RowKey lt 'P.<consumer>/'`: one consumer's
/// records in `state` (`/` is the character after `.`); every consumer's
/// when `consumer` is `None`.
pub(super) fn state_range(state: &str, consumer: Option<&str>) -> String {
    let prefix = match consumer {
        Some(consumer) => format!("{state}.{consumer}"),
        None => state.to_owned(),
    };
    format!(
        "RowKey ge {} and RowKey lt {}",
        keys::odata_string(&format!("{prefix}.")),
        keys::odata_string(&format!("{prefix}/")),
    )
}

pub(super) fn day_range(first: Date, last: Date) -> String {
    format!(
        "PartitionKey ge {} and PartitionKey le {}",
        keys::odata_string(&keys::day_key(first)),
        keys::odata_string(&keys::day_key(last)),
    )
}

/// `consumer`'s pending record about `lead`, in `partition` (the lead's
/// own in its transaction; today's when enqueued later).
pub(super) fn pending_entity(
    consumer: &str,
    partition: &str,
    lead: &LeadRef,
    enqueued_at: OffsetDateTime,
) -> Map<String, Value> {
    let mut row = Map::from_iter([
        ("PartitionKey".to_owned(), json!(partition)),
        (
            "RowKey".to_owned(),
            json!(pending_row_key(consumer, &lead.row_key)),
        ),
        ("Consumer".to_owned(), json!(consumer)),
        ("LeadPartition".to_owned(), json!(lead.partition)),
        ("LeadRowKey".to_owned(), json!(lead.row_key)),
        ("LeadId".to_owned(), json!(lead.id)),
        ("IsTestLead".to_owned(), json!(lead.is_test)),
    ]);
    put_datetime(&mut row, "EnqueuedAt", enqueued_at);
    row
}

pub(super) fn pending_item(row: &Map<String, Value>) -> Option<PendingItem> {
    let text = |name: &str| row.get(name)?.as_str().map(str::to_owned);
    let dead_letter = match text("DeadDestination") {
        Some(destination) => Some(DeadLetter {
            destination,
            last_status: text("DeadStatus").unwrap_or_default(),
            excerpt: text("DeadExcerpt").unwrap_or_default(),
            died_at: datetime(row, "DiedAt")?,
        }),
        None => None,
    };
    Some(PendingItem {
        consumer: text("Consumer")?,
        partition: text("PartitionKey")?,
        row_key: text("RowKey")?,
        lead_partition: text("LeadPartition")?,
        lead_row_key: text("LeadRowKey")?,
        lead_id: text("LeadId")?,
        is_test: row
            .get("IsTestLead")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        enqueued_at: datetime(row, "EnqueuedAt")?,
        dead_letter,
        digest_run: text("DigestRun").and_then(|r| r.parse().ok()),
        attempts: row
            .get("Attempts")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        last_status: text("LastStatus"),
        last_error: text("LastError"),
        next_attempt_at: datetime(row, "NextAttemptAt"),
        claimed_until: datetime(row, "ClaimedUntil"),
        // Cleared by writing it empty: a merge cannot remove a property.
        claim_batch: text("ClaimBatch").and_then(|b| b.parse().ok()),
        version: Version::from_etag(text("odata.etag")?),
    })
}

/// Where `lead`, received at `received_at`, is (or will be) stored.
pub fn lead_ref_of(lead: &crate::domain::Lead, received_at: OffsetDateTime) -> LeadRef {
    let received_at = keys::truncate_to_micros(received_at);
    LeadRef {
        partition: keys::partition_key(received_at),
        row_key: keys::lead_row_key(received_at, &lead.fingerprint),
        id: keys::LeadId::new(received_at.date(), &lead.fingerprint).to_string(),
        is_test: lead.is_test,
    }
}

/// Where a stored lead lives, from what its row holds.
pub fn lead_ref(lead: &StoredLead) -> LeadRef {
    LeadRef {
        partition: keys::partition_key(lead.received_at),
        row_key: keys::lead_row_key(lead.received_at, &lead.lead.fingerprint),
        id: lead.id.clone(),
        is_test: lead.lead.is_test,
    }
}

/// Where pending records may be: the cursor's day through today.
#[derive(Debug, Clone, Copy)]
pub struct PendingDays {
    pub first: Date,
    pub last: Date,
}

impl LeadStore {
    /// The days that may hold pending records at `now`.
    pub async fn pending_days(&self, now: OffsetDateTime) -> Result<PendingDays, StoreError> {
        let client = self
            .digest
            .partition_key_client(CURSOR_PARTITION)
            .entity_client(CURSOR_ROW);
        let cursor = retrying("read the outbox cursor", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => Ok(Some(found.entity)),
                Err(e) if super::status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        let first = cursor
            .and_then(|row| row.get("OldestDay")?.as_str().and_then(keys::parse_day_key))
            .unwrap_or_else(|| (now - time::Duration::days(FIRST_LOOKBACK_DAYS)).date());
        Ok(PendingDays {
            first,
            last: now.date(),
        })
    }

    /// Every pending record of `consumer` (all consumers' with `None`) in
    /// `days`, a page at a time, oldest day first.
    pub fn pending(
        &self,
        consumer: Option<&str>,
        days: PendingDays,
        extra_filter: Option<String>,
    ) -> impl Stream<Item = Result<Vec<PendingItem>, StoreError>> + Send + 'static {
        let mut filter = format!(
            "{} and {}",
            day_range(days.first, days.last),
            state_range(PENDING, consumer)
        );
        if let Some(extra) = extra_filter {
            filter = format!("{filter} and {extra}");
        }
        pages::pages(self.leads.clone(), filter).map_ok(|rows| {
            rows.iter()
                .filter_map(|row| {
                    let item = pending_item(row);
                    if item.is_none() {
                        tracing::warn!(row_key = ?row.get("RowKey"), "an unreadable pending record; skipped");
                    }
                    item
                })
                .collect()
        })
    }

    /// Moves the cursor up to `oldest_pending` (the oldest day a complete
    /// read of every consumer's pending records found, `None` if it found
    /// none), never past the day before `now`.
    pub async fn raise_cursor(
        &self,
        days: PendingDays,
        oldest_pending: Option<Date>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let floor = (now - time::Duration::days(1)).date();
        let cursor = oldest_pending.map_or(floor, |day| day.min(floor));
        if cursor <= days.first {
            return Ok(());
        }
        let row = json!({
            "PartitionKey": CURSOR_PARTITION,
            "RowKey": CURSOR_ROW,
            "OldestDay": keys::day_key(cursor),
        });
        let client = self
            .digest
            .partition_key_client(CURSOR_PARTITION)
            .entity_client(CURSOR_ROW);
        retrying("move the outbox cursor", || async {
            client.insert_or_replace(&row)?.await
        })
        .await
        .map(|_| ())
    }

    /// Runs `add` for every item, grouped into entity-group transactions of
    /// one partition and at most [`MAX_BATCH`] operations.
    pub(super) async fn batched(
        &self,
        items: &[PendingItem],
        operation: &'static str,
        add: impl Fn(TransactionBuilder, &PendingItem) -> azure_core::Result<TransactionBuilder>,
    ) -> Result<(), StoreError> {
        let mut by_partition: BTreeMap<&str, Vec<&PendingItem>> = BTreeMap::new();
        for item in items {
            by_partition.entry(&item.partition).or_default().push(item);
        }
        for (partition, items) in by_partition {
            let client = self.leads.partition_key_client(partition);
            for chunk in items.chunks(MAX_BATCH) {
                let response = retrying(operation, || async {
                    let mut batch = client.transaction();
                    for item in chunk {
                        batch = add(batch, item)?;
                    }
                    batch.await
                })
                .await?;
                if let Some(failed) = response
                    .operation_responses
                    .iter()
                    .find(|op| !op.status_code.is_success())
                {
                    return Err(if failed.status_code == StatusCode::PreconditionFailed {
                        StoreError::Conflict
                    } else {
                        StoreError::Rejected {
                            operation,
                            failure: super::Failure::answered(failed.status_code),
                        }
                    });
                }
            }
        }
        Ok(())
    }

    /// Enqueues `consumer`'s pending record in today's partition for each
    /// of `leads` that has none there yet. Leads are enqueued late by
    /// backfills and upgrades; the records go into today's partition so that
    /// the cursor never passes them. Returns how many were enqueued.
    pub async fn enqueue_today(
        &self,
        consumer: &str,
        leads: &[LeadRef],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let partition = keys::partition_key(now);
        let mut enqueued = 0;
        for lead in leads {
            let row = pending_entity(consumer, &partition, lead, now);
            // One at a time: a record already there is fine, and in a batch
            // its conflict would fail the whole batch.
            match retrying("enqueue a lead", || async {
                self.leads.insert::<_, Value>(&row)?.await
            })
            .await
            {
                Ok(_) => enqueued += 1,
                Err(e) if e.is_status(StatusCode::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(enqueued)
    }

    /// The leads `items` are about, read back (lead rows of one partition in
    /// one key range); a lead that is gone is left out, and logged.
    pub async fn leads_of(&self, items: &[PendingItem]) -> Result<Vec<StoredLead>, StoreError> {
        let mut by_partition: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for item in items {
            by_partition
                .entry(&item.lead_partition)
                .or_default()
                .push(&item.lead_row_key);
        }
        let mut leads = Vec::with_capacity(items.len());
        for (partition, mut row_keys) in by_partition {
            row_keys.sort_unstable();
            let (Some(first), Some(last)) = (row_keys.first(), row_keys.last()) else {
                continue;
            };
            let filter = format!(
                "PartitionKey eq {} and RowKey ge {} and RowKey le {}",
                keys::odata_string(partition),
                keys::odata_string(first),
                keys::odata_string(last)
            );
            let mut pages = std::pin::pin!(pages::pages(self.leads.clone(), filter));
            while let Some(rows) = pages.try_next().await? {
                leads.extend(rows.iter().filter_map(|row| {
                    let key = row.get("RowKey")?.as_str()?;
                    row_keys.binary_search(&key).ok()?;
                    super::read_lead(row)
                }));
            }
        }
        if leads.len() < items.len() {
            tracing::warn!(
                missing = items.len() - leads.len(),
                "pending records name leads that are no longer in the table"
            );
        }
        Ok(leads)
    }

    /// Enqueues `consumer`'s pending record for every lead received in
    /// `range` that `keep` accepts and that `consumer` has no record of
    /// (pending, delivered or dead): a destination added later, or the
    /// digest taking over from the time-window digest of older versions.
    /// Running it twice enqueues nothing the second time. Returns how many
    /// leads were enqueued.
    pub async fn backfill(
        &self,
        consumer: &str,
        range: crate::domain::TimeRange,
        now: OffsetDateTime,
        keep: impl Fn(&StoredLead) -> bool,
    ) -> Result<usize, StoreError> {
        // Leads first, then records: a lead committed before it was read
        // had its records committed with it, so it is never enqueued twice.
        let mut leads = Vec::new();
        let mut pages = std::pin::pin!(self.leads_in(range));
        while let Some(page) = pages.try_next().await? {
            leads.extend(page.iter().filter(|lead| keep(lead)).map(lead_ref));
        }
        let days = PendingDays {
            first: range.start.date(),
            last: now.date(),
        };
        let recorded = self.recorded_leads(consumer, days).await?;
        leads.retain(|lead| !recorded.contains(&lead.row_key));
        self.enqueue_today(consumer, &leads, now).await
    }

    /// The lead row keys that `consumer` has any record of (pending,
    /// delivered or dead) in `days`.
    pub async fn recorded_leads(
        &self,
        consumer: &str,
        days: PendingDays,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut found = std::collections::HashSet::new();
        for state in [PENDING, DELIVERED, DEAD] {
            let filter = format!(
                "{} and {}",
                day_range(days.first, days.last),
                state_range(state, Some(consumer))
            );
            let mut pages = std::pin::pin!(pages::pages(self.leads.clone(), filter));
            while let Some(rows) = pages.try_next().await? {
                found.extend(
                    rows.iter()
                        .filter_map(|r| r.get("LeadRowKey")?.as_str().map(str::to_owned)),
                );
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn ranges_select_one_consumer_or_all_and_never_a_lead() {
        let digest = state_range(PENDING, Some(DIGEST));
        assert_eq!(digest, "RowKey ge 'P.digest.' and RowKey lt 'P.digest/'");
        let range = "P.digest.".."P.digest/";
        let key = pending_row_key(DIGEST, "L20261122T101500.123456Z-0011223344556677");
        assert!(range.contains(&key.as_str()));
        let dead_notice = format!("P.digest.X.webhook.{}", "L20261122T101500.123456Z-00");
        assert!(range.contains(&dead_notice.as_str()));
        for other in [
            "P.digests.Lx",
            "P.webhook.Lx",
            "L20261122T101500.123456Z-00",
            "D00",
            "S.digest.Lx",
        ] {
            assert!(!("P.digest.".."P.digest/").contains(&other), "{other}");
        }
        assert_eq!(
            state_range(PENDING, None),
            "RowKey ge 'P.' and RowKey lt 'P/'"
        );
        assert_eq!(
            day_range(date!(2026 - 11 - 21), date!(2026 - 11 - 22)),
            "PartitionKey ge '2026-11-21' and PartitionKey le '2026-11-22'"
        );
    }

    #[test]
    fn a_pending_record_reads_back() {
        let lead = LeadRef {
            partition: "2026-11-21".into(),
            row_key: "L20261121T235959.123456Z-0011223344556677".into(),
            id: "20261121-0011223344556677".into(),
            is_test: true,
        };
        let mut row = pending_entity(
            DIGEST,
            "2026-11-22",
            &lead,
            datetime!(2026-11-22 00:00:01 UTC),
        );
        row.insert("odata.etag".into(), json!("W/\"datetime'x'\""));
        let item = pending_item(&row).expect("reads back");
        assert_eq!(item.consumer, "digest");
        assert_eq!(item.partition, "2026-11-22");
        assert_eq!(item.lead_partition, "2026-11-21");
        assert_eq!(item.lead_id, "20261121-0011223344556677");
        assert!(item.is_test);
        assert_eq!(item.dead_letter, None);
        assert_eq!(item.digest_run, None);
    }
}
