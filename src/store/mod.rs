//! The store: the only code that knows `azure_data_tables`.
//!
//! Two tables: the leads table (`LEADS_TABLE`, one row per lead plus a
//! de-duplication marker, see [`keys`]) and the digest-state table
//! (`<LEADS_TABLE>Digest`, see [`digest_state`]). Everything else speaks in
//! our own types: [`Lead`], [`StoredLead`], [`ExportRow`], [`Checkpoint`].
//!
//! - [`keys`] — the key layout, made for reading time ranges.
//! - [`entity`] — the columns of a lead row.
//! - [`error`] — failures in our words, with the HTTP status kept.
//! - [`pages`] — reading a range a page at a time.
//! - [`outbox`] — pending work per lead and consumer (digest, destinations).
//! - [`quarantine`] — bodies LeadIngest refused, kept.
//! - [`rate`] — sends per rolling hour, shared by every instance.
//! - [`digest_state`] — the digest checkpoint and run history.
//! - [`transaction`] — an entity-group transaction as data, and its answers.
//! - [`batch`] — sending one, as the REST reference writes a `$batch`.
//! - [`access`] — how requests are authorized (key, SAS or identity).
//! - [`fuzz_support`] — entity invariants for the fuzzer.

mod access;
mod batch;
mod client;
pub mod digest_state;
mod entity;
pub mod erasure;
pub mod error;
#[doc(hidden)]
pub mod fuzz_support;
pub mod keys;
pub mod outbox;
mod pages;
pub mod quarantine;
pub mod rate;
mod rerating;
pub mod source;
pub mod status;
mod transaction;

pub use digest_state::{Checkpoint, Claim, ClaimState, DigestState, RunRecord, Version};
pub use entity::{rating as rating_of_row, raw_body_fits};
pub use error::{Failure, StoreError};
pub use keys::LeadId;
pub use outbox::{
    Bundle, Bundled, Claimed, Consumer, DeadLetter, Deliveries, DeliveryItem, DeliveryRecord,
    DigestItem, DigestQueue, LeadRef, Lease, PendingDays, PendingPage, Progress, RecordChange,
    RecordKey, RecordState, Settled, Settlement,
};
pub use pages::PAGE_ROWS;
pub use quarantine::RejectedBody;
use transaction::{commit, Op, Partition};

use crate::configuration::StorageSettings;
use crate::domain::{Lead, TimeRange};
use crate::retry::{Decision, RetryPolicy};
use azure_core::error::ErrorKind;
use azure_core::StatusCode;
use azure_data_tables::prelude::*;
use futures::TryStreamExt;
use outbox::OutboxRow;
use serde_json::{Map, Value};
use std::future::Future;
use std::time::Duration;
use time::OffsetDateTime;

/// Ingest answers within seconds, so retries of one operation stop here.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(6);
/// One request is given the whole deadline: abandoning a slow attempt to
/// send it again only queues the same work twice on a busy service (and
/// the first may still commit). Fast failures (5xx, 429, a refused
/// connection) are what retries are for.
const ATTEMPT_TIMEOUT: Duration = WRITE_DEADLINE;
const STORAGE_RETRY: RetryPolicy = RetryPolicy {
    first_backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(1),
    deadline: WRITE_DEADLINE,
    max_attempts: u32::MAX,
};

/// What happened to a lead handed to [`LeadStore::save`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    Created(LeadId),
    /// The same content was already stored today.
    Duplicate(LeadId),
}

/// A record written with a new lead: whose, and — for a destination the
/// caller is about to try at once — claimed by that attempt, so no sweep
/// takes it meanwhile and nothing has to be written before the attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRecord {
    pub consumer: Consumer,
    pub claim: Option<Lease>,
}

impl NewRecord {
    pub fn unclaimed(consumer: Consumer) -> Self {
        Self {
            consumer,
            claim: None,
        }
    }
}

/// A lead handed to [`LeadStore::save_lead`], as stored.
#[derive(Debug, Clone)]
pub struct Saved {
    /// Whether it is new; a duplicate adds nothing.
    pub created: bool,
    pub lead: StoredLead,
    /// For a new lead, the deliveries it was written with claimed (with
    /// their versions), for the first attempts to settle; empty for a
    /// duplicate, or when the write's answer was lost and the versions are
    /// not known (the sweep delivers them, as those written unclaimed).
    pub deliveries: Vec<Claimed>,
}

/// A lead read back from the table.
#[derive(Debug, Clone)]
pub struct StoredLead {
    pub id: LeadId,
    pub received_at: OffsetDateTime,
    pub lead: Lead,
}

/// Leads as stored, for unit tests.
#[cfg(test)]
pub(crate) mod testing {
    use super::{LeadId, StoredLead};
    use crate::domain::Lead;
    use time::OffsetDateTime;

    /// `body` (a lead's JSON) as stored at 2026-11-22 10:15 UTC.
    pub fn stored(body: &str) -> StoredLead {
        stored_at(body, time::macros::datetime!(2026-11-22 10:15 UTC))
    }

    /// `body` as stored at `at`.
    pub fn stored_at(body: &str, at: OffsetDateTime) -> StoredLead {
        StoredLead {
            id: LeadId::parse("20261122-0011223344556677").expect("a lead id"),
            received_at: at,
            // Rated, as LeadIngest stores it.
            lead: Lead::parse(body.as_bytes()).expect("a lead").rated(),
        }
    }

    /// An outbox record's lead: 2026-11-22 10:15:00.123456, not a test
    /// lead, no offer, no action, unrated (tests set what they need with
    /// `..lead_ref()`).
    pub fn lead_ref() -> super::LeadRef {
        super::LeadRef {
            partition: "2026-11-22".into(),
            row_key: "L20261122T101500.123456Z-0011223344556677".into(),
            id: LeadId::parse("20261122-0011223344556677").expect("a lead id"),
            is_test: false,
            offer: None,
            action: None,
            rating: None,
        }
    }
}

/// A lead row read back whole, for exports.
#[derive(Debug, Clone)]
pub struct ExportRow {
    /// Every stored column, OData metadata (`odata.etag`, `…@odata.type`)
    /// left out and the raw body joined into one `RawBody` column.
    pub columns: Map<String, Value>,
    /// The lead parsed again from its raw body; `None` only if that is
    /// missing or no longer parses (never for rows this service wrote).
    pub lead: Option<Lead>,
    pub received_at: Option<OffsetDateTime>,
    /// Partner Center's validation lead.
    pub is_test: bool,
}

/// The marker column naming the save that wrote it.
const SAVE_ID: &str = "SaveId";

#[derive(Clone)]
pub struct LeadStore {
    leads: TableClient,
    digest: TableClient,
    batches: batch::Batches,
}

impl std::fmt::Debug for LeadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeadStore")
            .field("leads", &self.leads.table_name())
            .field("digest", &self.digest.table_name())
            .finish()
    }
}

impl LeadStore {
    /// Builds the clients; no I/O.
    pub fn from_settings(settings: &StorageSettings) -> anyhow::Result<Self> {
        let (service, batches) = client::service_clients(&settings.account)?;
        Ok(Self {
            leads: service.table_client(&settings.leads_table),
            digest: service.table_client(settings.digest_table()),
            batches,
        })
    }

    /// Where a transaction on `partition` of the leads table is written.
    pub(crate) fn leads_partition<'a>(&'a self, partition: &'a str) -> Partition<'a> {
        Partition {
            batches: &self.batches,
            table: self.leads.table_name(),
            key: partition,
        }
    }

    /// Creates both tables if missing. An identity allowed to write only
    /// inside existing tables (the Bicep template scopes its role to them)
    /// gets 403 here: the tables exist, so that is fine too.
    pub async fn ensure_tables(&self) -> Result<(), StoreError> {
        for table in [&self.leads, &self.digest] {
            retrying("create a table", || async {
                match table.create().await {
                    Ok(_) => Ok(()),
                    Err(e)
                        if matches!(
                            status_of(&e),
                            Some(StatusCode::Conflict | StatusCode::Forbidden)
                        ) =>
                    {
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        }
        Ok(())
    }

    /// Stores a lead durably, once per content and UTC day, with a pending
    /// record for each of `consumers`. Returns only after the service has
    /// committed them all (or found the lead already there, in which case
    /// nothing is added).
    pub async fn save(
        &self,
        lead: &Lead,
        received_at: OffsetDateTime,
        consumers: &[Consumer],
    ) -> Result<SaveOutcome, StoreError> {
        let saved = self
            .save_lead(lead, received_at, |_| {
                consumers
                    .iter()
                    .cloned()
                    .map(NewRecord::unclaimed)
                    .collect()
            })
            .await?;
        let id = saved.lead.id;
        Ok(if saved.created {
            SaveOutcome::Created(id)
        } else {
            SaveOutcome::Duplicate(id)
        })
    }

    /// [`save`](Self::save) with the records `records` asks for, given
    /// where the lead will be stored (claimed ones included); gives back
    /// the stored lead and its deliveries as written, with their versions,
    /// so a new lead's first attempts need nothing read back.
    #[tracing::instrument(level = "debug", skip_all, fields(fingerprint = %lead.fingerprint.short_hex(8)))]
    pub async fn save_lead(
        &self,
        lead: &Lead,
        received_at: OffsetDateTime,
        records: impl FnOnce(&LeadRef) -> Vec<NewRecord>,
    ) -> Result<Saved, StoreError> {
        let received_at = keys::truncate_to_micros(received_at);
        let place = outbox::lead_ref_of(lead, received_at);
        let (row, marker) = entity::lead_entities(
            lead,
            &place.partition,
            &place.row_key,
            place.id.as_str(),
            received_at,
        );
        let (pending, bundle) = pending_rows(records(&place), &place, received_at);
        // Which save wrote the marker: a conflict on our own (a timed-out
        // attempt that committed) means new; on another's — an earlier
        // import of the same row, with the very same key — a duplicate.
        let save_id = uuid::Uuid::new_v4().to_string();
        let mut marker = marker;
        marker.insert(SAVE_ID.into(), Value::String(save_id.clone()));

        // Marker, row and pending records in one entity-group transaction:
        // all or none, so a failure mid-way never leaves half a lead, a lead
        // never lacks its pending work, and a concurrent duplicate loses on
        // the marker (the marker goes first). Inserts (create-only, so a
        // duplicate is refused), each asking the service to echo nothing.
        let mut ops = vec![Op::Insert(marker), Op::Insert(row)];
        ops.extend(pending.iter().map(|row| Op::Insert(row.to_entity())));
        let bundle = bundle.map(|(bundle, entity)| {
            ops.push(Op::Insert(entity));
            bundle
        });
        // The table is created in the background at start-up; a lead that
        // arrives first (or after someone deleted it) creates it. The
        // service says so on the request or, as a transaction is answered,
        // inside it.
        let partition = self.leads_partition(&place.partition);
        let mut answer = commit(partition, "save a lead", &ops).await;
        if matches!(&answer, Err(e) if e.is_status(StatusCode::NotFound)) {
            self.ensure_tables().await?;
            answer = commit(partition, "save a lead", &ops).await;
        }
        let stored = |created: bool, deliveries: Vec<Claimed>| Saved {
            created,
            lead: StoredLead {
                id: place.id.clone(),
                received_at,
                lead: lead.clone(),
            },
            deliveries,
        };
        match answer {
            Ok(versions) => {
                // The versions come in the order of the operations: marker,
                // row, the pending records, the bundle.
                // The deliveries as written, from the rows themselves (nothing
                // to parse back); the digest's record is no delivery.
                let mut versions = versions.into_iter().skip(2);
                let mut deliveries: Vec<DeliveryItem> = pending
                    .into_iter()
                    .zip(versions.by_ref())
                    .filter_map(|(row, version)| {
                        DeliveryItem::from_row(OutboxRow {
                            version: Some(version?),
                            ..row
                        })
                    })
                    .collect();
                if let (Some(mut bundle), Some(Some(version))) = (bundle, versions.next()) {
                    bundle.version = Some(version);
                    deliveries.extend(DeliveryItem::bundled(bundle));
                }
                let held = deliveries.into_iter().filter_map(Claimed::held).collect();
                Ok(stored(true, held))
            }
            Err(e) if e.is_status(StatusCode::Conflict) => {
                // An attempt that timed out may have committed after all, and
                // a retry then finds its own marker: that lead is new (its
                // records' versions unknown: the sweep delivers it).
                let created = self
                    .marker_is_ours(
                        &place.partition,
                        &lead.fingerprint,
                        &place.row_key,
                        &save_id,
                    )
                    .await?;
                Ok(stored(created, Vec::new()))
            }
            Err(e) => Err(e),
        }
    }

    /// One lead, read back by its keys; `None` if it is gone.
    pub async fn lead(&self, place: &LeadRef) -> Result<Option<StoredLead>, StoreError> {
        let client = self
            .leads
            .partition_key_client(&place.partition)
            .entity_client(&place.row_key);
        let row = retrying("read a lead", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => Ok(Some(found.entity)),
                Err(e) if status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(row.as_ref().and_then(read_lead))
    }

    /// Whether the de-duplication marker of `fingerprint` names `row_key`.
    async fn marker_is_ours(
        &self,
        partition: &str,
        fingerprint: &crate::domain::Fingerprint,
        row_key: &str,
        save_id: &str,
    ) -> Result<bool, StoreError> {
        let client = self
            .leads
            .partition_key_client(partition)
            .entity_client(keys::marker_row_key(fingerprint));
        let marker = retrying("read a lead's marker", || async {
            client.get::<Map<String, Value>>().await
        })
        .await?;
        let text = |name: &str| marker.entity.get(name).and_then(Value::as_str);
        Ok(text("LeadRowKey") == Some(row_key)
            // Markers written before saves had ids: the row key decides.
            && text(SAVE_ID).is_none_or(|id| id == save_id))
    }

    /// Streams the leads received in `range`, oldest first, one page at a
    /// time, reading only that key range.
    pub fn leads_in(
        &self,
        range: TimeRange,
    ) -> impl futures::Stream<Item = Result<Vec<StoredLead>, StoreError>> + Send + 'static {
        pages::pages(self.leads.clone(), keys::range_filter(range))
            .map_ok(|rows| rows.iter().filter_map(read_lead).collect())
    }

    /// Streams every lead row received in `range`, whole, for exports:
    /// oldest first, one page (≤ [`PAGE_ROWS`]) at a time.
    pub fn rows_in(
        &self,
        range: TimeRange,
    ) -> impl futures::Stream<Item = Result<Vec<ExportRow>, StoreError>> + Send + 'static {
        pages::pages(self.leads.clone(), keys::range_filter(range))
            .map_ok(|rows| rows.into_iter().map(export_row).collect())
    }
}

/// Runs one storage operation with [`STORAGE_RETRY`]: transient failures
/// are retried until [`WRITE_DEADLINE`], each attempt bounded.
pub(crate) async fn retrying<T, F, Fut>(
    operation: &'static str,
    attempt: F,
) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = azure_core::Result<T>>,
{
    STORAGE_RETRY
        .run(
            |a| {
                let request = attempt();
                async move {
                    match tokio::time::timeout(a.remaining, request).await {
                        Ok(Ok(value)) => Ok(value),
                        Ok(Err(e)) => Err(Failure::of(&e)),
                        Err(_) => Err(Failure::timed_out()),
                    }
                }
            },
            |failure: &Failure| {
                if failure.is_transient() {
                    Decision::Retry { after: None }
                } else {
                    Decision::Stop
                }
            },
        )
        .await
        .map_err(|gave_up| {
            if gave_up.exhausted {
                tracing::debug!(
                    operation,
                    attempts = gave_up.attempts,
                    "storage kept failing"
                );
                StoreError::Unavailable {
                    operation,
                    failure: gave_up.error,
                }
            } else {
                StoreError::Rejected {
                    operation,
                    failure: gave_up.error,
                }
            }
        })
}

pub(super) fn status_of(error: &azure_core::Error) -> Option<StatusCode> {
    match error.kind() {
        ErrorKind::HttpResponse { status, .. } => Some(*status),
        _ => None,
    }
}

/// Rebuilds a lead from its row: the raw body is the source of truth, the
/// columns are views of it. A row we cannot read (written by someone else,
/// or edited by hand) is logged, never silently dropped.
type Entity = Map<String, Value>;

/// The entities of a new lead's pending records: one each for the digest
/// and a lone destination; several destinations' deliveries as one
/// bundle (`outbox::bundle`), so a lead costs the service one entity more
/// however many destinations get it.
fn pending_rows(
    records: Vec<NewRecord>,
    place: &LeadRef,
    received_at: OffsetDateTime,
) -> (Vec<OutboxRow>, Option<(Bundle, Entity)>) {
    let (destinations, mut own): (Vec<NewRecord>, Vec<NewRecord>) = records
        .into_iter()
        .partition(|record| matches!(record.consumer, Consumer::Destination(_)));
    let bundle = if (2..=outbox::bundle::MAX_BUNDLED).contains(&destinations.len()) {
        let deliveries = destinations
            .into_iter()
            .filter_map(|record| match record.consumer {
                Consumer::Destination(destination) => Some(Bundled {
                    destination,
                    claim: record.claim,
                }),
                Consumer::Digest => None,
            })
            .collect();
        let bundle = Bundle {
            lead: place.clone(),
            enqueued_at: received_at,
            deliveries,
            version: None,
        };
        let entity = bundle.to_entity();
        Some((bundle, entity))
    } else {
        own.extend(destinations);
        None
    };
    let own = own
        .into_iter()
        .map(|record| {
            let key = RecordKey::pending(&place.partition, record.consumer, place);
            let (claimed_until, claim_batch) = Lease::columns(record.claim);
            OutboxRow {
                claimed_until,
                claim_batch,
                ..OutboxRow::pending(key, place.clone(), received_at)
            }
        })
        .collect();
    (own, bundle)
}

fn read_lead(row: &Map<String, Value>) -> Option<StoredLead> {
    let parsed = (|| {
        Some(StoredLead {
            id: LeadId::parse(row.get("LeadId")?.as_str()?).ok()?,
            received_at: entity::received_at(row)?,
            lead: entity::lead(row)?,
        })
    })();
    if parsed.is_none() {
        tracing::warn!(
            partition_key = ?row.get(keys::PARTITION_KEY),
            row_key = ?row.get(keys::ROW_KEY),
            "a row in the leads range is not a lead this handler wrote; skipped"
        );
    }
    parsed
}

fn export_row(row: Map<String, Value>) -> ExportRow {
    let lead = entity::lead(&row);
    let is_test = row
        .get("IsTestLead")
        .and_then(Value::as_bool)
        .or(lead.as_ref().map(|lead| lead.is_test))
        .unwrap_or(false);
    ExportRow {
        received_at: entity::received_at(&row),
        columns: entity::export_columns(row),
        lead,
        is_test,
    }
}
