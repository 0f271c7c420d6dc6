//! The store: the only code that knows `azure_data_tables`.
//!
//! Two tables: the leads table (`LEADS_TABLE`, one row per lead plus a
//! de-duplication marker, see [`keys`]) and the digest-state table
//! (`<LEADS_TABLE>Digest`: the checkpoint and the run history). Everything
//! else speaks in our own types: [`Lead`], [`StoredLead`], [`Checkpoint`].

mod entity;
use entity::{datetime, put_datetime};
pub mod keys;

use crate::configuration::{StorageAccount, StorageCredentials, StorageSettings};
use crate::lead::Lead;
use anyhow::Context as _;
use azure_core::error::ErrorKind;
use azure_core::{Continuable, Etag, StatusCode};
use azure_data_tables::prelude::*;
use futures::{StreamExt, TryStreamExt};
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

pub use keys::LeadId;

/// Ingest answers within seconds, so retries of one operation stop here.
/// The digest's settle margin (30 s) relies on this being much shorter.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(6);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_millis(1_000);

/// Rows per page of [`LeadStore::rows_between`]: the service's maximum, and
/// all an export holds in memory at once.
pub const EXPORT_PAGE_ROWS: u32 = 1_000;

const CHECKPOINT_PARTITION: &str = "checkpoint";
const CHECKPOINT_ROW: &str = "LeadDigest";
const RUN_PARTITION: &str = "run";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Storage could not be reached or kept failing within the deadline.
    #[error("storage is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Someone else changed the row first (optimistic concurrency).
    #[error("the row was changed by another writer")]
    Conflict,
    /// Storage refused the request; retrying will not help.
    #[error("storage rejected the request: {0:#}")]
    Rejected(anyhow::Error),
}

/// What happened to a lead handed to [`LeadStore::save`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    Created(LeadId),
    /// The same content was already stored today.
    Duplicate(LeadId),
}

/// A lead read back from the table.
#[derive(Debug, Clone)]
pub struct StoredLead {
    pub id: String,
    pub received_at: OffsetDateTime,
    pub lead: Lead,
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

/// Opaque version of a row, for optimistic concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

/// How far the digest has reported, and the run currently sending, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every lead received at or before this instant has been reported.
    pub reported_through: OffsetDateTime,
    pub claim: Option<Claim>,
}

/// A run that is sending the digest of `(reported_through, window_end]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub run_id: uuid::Uuid,
    pub window_end: OffsetDateTime,
    pub claimed_at: OffsetDateTime,
}

/// One digest run, as recorded in the run history.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: uuid::Uuid,
    pub started_at: OffsetDateTime,
    pub window_start: Option<OffsetDateTime>,
    pub window_end: Option<OffsetDateTime>,
    pub lead_count: usize,
    pub outcome: String,
    pub message_id: Option<String>,
    pub error: Option<String>,
    pub duration: Duration,
}

#[derive(Clone)]
pub struct LeadStore {
    leads: TableClient,
    digest: TableClient,
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
    pub fn new(settings: &StorageSettings) -> anyhow::Result<Self> {
        let service = service_client(&settings.account)?;
        Ok(Self {
            leads: service.table_client(&settings.leads_table),
            digest: service.table_client(settings.digest_table()),
        })
    }

    /// Creates both tables if missing. An identity allowed to write only
    /// inside existing tables (the Bicep template scopes its role to them)
    /// gets 403 here: the tables exist, so that is fine too.
    pub async fn ensure_tables(&self) -> Result<(), StoreError> {
        for table in [&self.leads, &self.digest] {
            let created = with_retries("create table", || async {
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
            .await;
            created.map_err(|e| match e {
                StoreError::Rejected(e) => {
                    StoreError::Rejected(e.context(format!("table {}", table.table_name())))
                }
                other => other,
            })?;
        }
        Ok(())
    }

    /// Stores a lead durably, once per content and UTC day. Returns only
    /// after the service has committed the row (or found it already there).
    #[tracing::instrument(skip_all, fields(fingerprint = %lead.fingerprint.short_hex(8)))]
    pub async fn save(
        &self,
        lead: &Lead,
        received_at: OffsetDateTime,
    ) -> Result<SaveOutcome, StoreError> {
        let received_at = keys::truncate_to_micros(received_at);
        let partition = keys::partition_key(received_at);
        let row_key = keys::lead_row_key(received_at, &lead.fingerprint);
        let id = LeadId::new(received_at.date(), &lead.fingerprint);
        let (row, marker) =
            entity::lead_entities(lead, &partition, &row_key, id.as_str(), received_at);
        let partition_client = self.leads.partition_key_client(&partition);

        // Marker and row in one entity-group transaction: both or neither, so
        // a failure mid-way never leaves half a lead, and a concurrent
        // duplicate loses on the marker.
        let insert = || async {
            partition_client
                .transaction()
                .insert(&marker)?
                .insert(&row)?
                .await
        };
        let response = match with_retries("save lead", insert).await {
            // The table is created in the background at start-up; a lead
            // that arrives first (or after someone deleted it) creates it.
            Err(StoreError::Rejected(e)) if is_status(&e, StatusCode::NotFound) => {
                self.ensure_tables().await?;
                with_retries("save lead", insert).await?
            }
            other => other?,
        };

        let failed = response
            .operation_responses
            .iter()
            .find(|op| !op.status_code.is_success());
        match failed.map(|op| op.status_code) {
            None => Ok(SaveOutcome::Created(id)),
            Some(StatusCode::Conflict) => Ok(SaveOutcome::Duplicate(id)),
            Some(status) => Err(StoreError::Rejected(anyhow::anyhow!(
                "batch operation answered {status}"
            ))),
        }
    }

    /// Streams the leads received in `(after, through]`, oldest first, one
    /// page at a time, reading only that key range.
    pub fn leads_between(
        &self,
        after: OffsetDateTime,
        through: OffsetDateTime,
    ) -> impl futures::Stream<Item = Result<Vec<StoredLead>, StoreError>> + Send + 'static {
        self.pages(keys::window_filter(after, through))
            .map_ok(|rows| rows.iter().filter_map(stored_lead).collect())
    }

    /// Streams every lead row received in `(after, through]`, whole, for
    /// exports: oldest first, one page (≤ [`EXPORT_PAGE_ROWS`]) at a time.
    /// `offer_title` keeps only rows whose `OfferTitle` equals it exactly;
    /// the service applies it, so other offers' rows never cross the wire.
    pub fn rows_between(
        &self,
        after: OffsetDateTime,
        through: OffsetDateTime,
        offer_title: Option<&str>,
    ) -> impl futures::Stream<Item = Result<Vec<ExportRow>, StoreError>> + Send + 'static {
        let mut filter = keys::window_filter(after, through);
        if let Some(title) = offer_title {
            filter.push_str(&format!(" and OfferTitle eq {}", keys::odata_string(title)));
        }
        self.pages(filter)
            .map_ok(|rows| rows.into_iter().map(export_row).collect())
    }

    /// The leads table's rows matching `filter`, one page at a time: each
    /// page starts from the continuation token of the one before and is
    /// retried on its own, so a long read survives a transient error.
    fn pages(
        &self,
        filter: String,
    ) -> impl futures::Stream<Item = Result<Vec<Map<String, Value>>, StoreError>> + Send + 'static
    {
        enum Next {
            First,
            After((String, Option<String>)),
            Done,
        }
        let table = self.leads.clone();
        futures::stream::try_unfold(Next::First, move |next| {
            let (table, filter) = (table.clone(), filter.clone());
            async move {
                let continuation = match next {
                    Next::Done => return Ok(None),
                    Next::First => None,
                    Next::After(continuation) => Some(continuation),
                };
                let page = with_retries("read leads", || {
                    let mut query = table.query().filter(filter.clone()).top(EXPORT_PAGE_ROWS);
                    if let Some((partition_key, row_key)) = continuation.clone() {
                        query = query.initial_partition_key(partition_key);
                        if let Some(row_key) = row_key {
                            query = query.initial_row_key(row_key);
                        }
                    }
                    async move {
                        // The first item of a fresh stream is exactly one page.
                        query
                            .into_stream::<Map<String, Value>>()
                            .next()
                            .await
                            .unwrap_or_else(|| {
                                Err(azure_core::Error::message(
                                    ErrorKind::Other,
                                    "the query answered no page",
                                ))
                            })
                    }
                })
                .await
                .map_err(|e| match e {
                    StoreError::Rejected(e) if is_status(&e, StatusCode::NotFound) => {
                        StoreError::Rejected(anyhow::anyhow!(
                            "table {} does not exist (see LEADS_TABLE)",
                            table.table_name()
                        ))
                    }
                    StoreError::Rejected(e) => {
                        StoreError::Rejected(e.context(format!("table {}", table.table_name())))
                    }
                    other => other,
                })?;
                let next = match Continuable::continuation(&page) {
                    Some(continuation) => Next::After(continuation),
                    None => Next::Done,
                };
                Ok(Some((page.entities, next)))
            }
        })
    }

    /// The digest checkpoint, if a digest ever ran.
    pub async fn checkpoint(&self) -> Result<Option<(Checkpoint, Version)>, StoreError> {
        let client = self
            .digest
            .partition_key_client(CHECKPOINT_PARTITION)
            .entity_client(CHECKPOINT_ROW);
        let response = with_retries("read checkpoint", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => Ok(Some(found)),
                Err(e) if status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        let Some(response) = response else {
            return Ok(None);
        };
        let checkpoint = checkpoint_from_row(&response.entity).ok_or_else(|| {
            StoreError::Rejected(anyhow::anyhow!("the checkpoint row is malformed"))
        })?;
        Ok(Some((checkpoint, Version(response.etag.to_string()))))
    }

    /// Writes the checkpoint if it is still at `expected` (`None`: if there
    /// is none yet). [`StoreError::Conflict`] when another run got there first.
    pub async fn write_checkpoint(
        &self,
        checkpoint: &Checkpoint,
        expected: Option<&Version>,
    ) -> Result<Version, StoreError> {
        let row = checkpoint_row(checkpoint);
        let etag: Etag = match expected {
            None => {
                let response = with_retries("create checkpoint", || async {
                    self.digest.insert::<_, Value>(&row)?.await
                })
                .await
                .map_err(conflict_on(StatusCode::Conflict))?;
                response.etag
            }
            Some(Version(etag)) => {
                let client = self
                    .digest
                    .partition_key_client(CHECKPOINT_PARTITION)
                    .entity_client(CHECKPOINT_ROW);
                let condition = IfMatchCondition::Etag(Etag::from(etag.clone()));
                let response = with_retries("update checkpoint", || async {
                    client.update(&row, condition.clone())?.await
                })
                .await
                .map_err(conflict_on(StatusCode::PreconditionFailed))?;
                response.etag
            }
        };
        Ok(Version(etag.to_string()))
    }

    /// Appends a run to the run history.
    pub async fn record_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let row = run_row(run);
        with_retries("record run", || async {
            self.digest.insert::<_, Value>(&row)?.await
        })
        .await
        .map(|_| ())
    }
}

fn service_client(account: &StorageAccount) -> anyhow::Result<TableServiceClient> {
    use azure_storage::{CloudLocation, StorageCredentials as Azure};
    let credentials = match &account.credentials {
        StorageCredentials::AccountKey(key) => {
            Azure::access_key(account.name.clone(), key.expose().to_owned())
        }
        StorageCredentials::SasToken(sas) => {
            Azure::sas_token(sas.expose()).context("Failed to read the SAS token")?
        }
        StorageCredentials::Identity => Azure::token_credential(
            azure_identity::create_default_credential()
                .context("Failed to set up managed identity credentials")?,
        ),
    };
    // Our own client: connection pooling on, and a bound on every attempt.
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(ATTEMPT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .context("Failed to build the HTTP client")?;
    let location = CloudLocation::Custom {
        account: account.name.clone(),
        uri: account
            .table_endpoint
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
    };
    Ok(
        azure_data_tables::clients::TableServiceClientBuilder::with_location(location, credentials)
            // Retries are ours (`with_retries`): bounded by a deadline.
            .retry(azure_core::RetryOptions::none())
            .transport(azure_core::TransportOptions::new(Arc::new(http)))
            .build(),
    )
}

fn status_of(error: &azure_core::Error) -> Option<StatusCode> {
    match error.kind() {
        ErrorKind::HttpResponse { status, .. } => Some(*status),
        _ => None,
    }
}

/// Transient: worth another attempt.
fn is_transient(error: &azure_core::Error) -> bool {
    match status_of(error) {
        Some(status) => {
            status.is_server_error()
                || matches!(
                    status,
                    StatusCode::RequestTimeout | StatusCode::TooManyRequests
                )
        }
        None => matches!(error.kind(), ErrorKind::Io | ErrorKind::Credential),
    }
}

fn is_status(error: &anyhow::Error, status: StatusCode) -> bool {
    error
        .downcast_ref::<azure_core::Error>()
        .is_some_and(|e| status_of(e) == Some(status))
}

fn conflict_on(status: StatusCode) -> impl Fn(StoreError) -> StoreError {
    move |error| match &error {
        StoreError::Rejected(e) if is_status(e, status) => StoreError::Conflict,
        _ => error,
    }
}

/// Runs `attempt` until it succeeds, fails for good, or [`WRITE_DEADLINE`]
/// passes, backing off exponentially between transient failures.
async fn with_retries<T, F, Fut>(operation: &'static str, attempt: F) -> Result<T, StoreError>
where
    F: Fn() -> Fut,
    Fut: Future<Output = azure_core::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + WRITE_DEADLINE;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let error = match tokio::time::timeout(remaining, attempt()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if !is_transient(&e) => {
                return Err(StoreError::Rejected(
                    anyhow::Error::new(e).context(format!("Failed to {operation}")),
                ))
            }
            Ok(Err(e)) => anyhow::Error::new(e),
            Err(_) => anyhow::anyhow!("timed out"),
        };
        if tokio::time::Instant::now() + backoff >= deadline {
            return Err(StoreError::Unavailable(error.context(format!(
                "Failed to {operation} after {attempts} attempts"
            ))));
        }
        tracing::debug!(operation, attempts, error = %error, "transient storage error; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Rebuilds a lead from its row: the raw body is the source of truth, the
/// columns are views of it. A row we cannot read (written by someone else,
/// or edited by hand) is logged, never silently dropped.
fn stored_lead(row: &Map<String, Value>) -> Option<StoredLead> {
    let parsed = (|| {
        let raw = entity::raw_body(row)?;
        Some(StoredLead {
            id: row.get("LeadId")?.as_str()?.to_owned(),
            received_at: entity::received_at(row)?,
            lead: Lead::parse(raw.as_bytes()).ok()?,
        })
    })();
    if parsed.is_none() {
        tracing::warn!(
            partition_key = ?row.get("PartitionKey"),
            row_key = ?row.get("RowKey"),
            "a row in the leads range is not a lead this handler wrote; skipped"
        );
    }
    parsed
}

/// For the fuzzer (`fuzz/fuzz_targets/lead.rs`), not an API: builds a lead's
/// row and marker exactly as [`LeadStore::save`] does, for a fixed time, and
/// panics if they break a rule Table storage enforces or that reading the
/// lead back relies on. Returns the number of properties built.
#[doc(hidden)]
pub fn fuzz_entity(lead: &Lead) -> usize {
    // Table storage's limits, stated here independently of `entity`.
    const STRING_LIMIT_UTF16: usize = 32_000;
    const MAX_PROPERTIES: usize = 255;
    const MAX_ENTITY_BYTES: usize = 1024 * 1024;

    let received_at = time::macros::datetime!(2026-11-22 10:15:00.123456 UTC);
    let partition = keys::partition_key(received_at);
    let row_key = keys::lead_row_key(received_at, &lead.fingerprint);
    let id = LeadId::new(received_at.date(), &lead.fingerprint);
    let (row, marker) = entity::lead_entities(lead, &partition, &row_key, id.as_str(), received_at);

    for entity in [&row, &marker] {
        for key in ["PartitionKey", "RowKey"] {
            let value = entity[key].as_str().expect("keys are strings");
            assert!(
                !value.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')),
                "{key} {value:?} has a character keys should not carry"
            );
        }
        assert!(
            entity.len() <= MAX_PROPERTIES,
            "{} properties",
            entity.len()
        );
        // The service's own size formula, without the `@odata.type` names.
        let mut size = 4;
        for (name, value) in entity {
            size += 8 + 2 * name.encode_utf16().count();
            size += match value {
                Value::String(text) => {
                    let units = text.encode_utf16().count();
                    assert!(
                        units <= STRING_LIMIT_UTF16,
                        "{name} holds {units} UTF-16 units"
                    );
                    4 + 2 * units
                }
                _ => 8,
            };
        }
        assert!(size <= MAX_ENTITY_BYTES, "entity of {size} bytes");
    }
    assert_eq!(
        entity::raw_body(&row).as_deref(),
        Some(lead.raw.as_str()),
        "the raw body must reassemble exactly"
    );
    let read_back = stored_lead(&row).expect("the row reads back as a lead");
    assert_eq!(read_back.lead, *lead, "the lead read back differs");
    assert_eq!(read_back.id, id.as_str());
    assert_eq!(marker["LeadRowKey"], row["RowKey"]);
    row.len() + marker.len()
}

fn export_row(row: Map<String, Value>) -> ExportRow {
    let lead = entity::raw_body(&row).and_then(|raw| Lead::parse(raw.as_bytes()).ok());
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

fn checkpoint_row(checkpoint: &Checkpoint) -> Map<String, Value> {
    let mut row = Map::from_iter([
        ("PartitionKey".to_owned(), json!(CHECKPOINT_PARTITION)),
        ("RowKey".to_owned(), json!(CHECKPOINT_ROW)),
    ]);
    put_datetime(&mut row, "ReportedThrough", checkpoint.reported_through);
    if let Some(claim) = &checkpoint.claim {
        row.insert("ClaimRunId".into(), json!(claim.run_id.to_string()));
        put_datetime(&mut row, "ClaimWindowEnd", claim.window_end);
        put_datetime(&mut row, "ClaimedAt", claim.claimed_at);
    }
    row
}

fn checkpoint_from_row(row: &Map<String, Value>) -> Option<Checkpoint> {
    let claim = match row.get("ClaimRunId").and_then(Value::as_str) {
        Some(run_id) => Some(Claim {
            run_id: run_id.parse().ok()?,
            window_end: datetime(row, "ClaimWindowEnd")?,
            claimed_at: datetime(row, "ClaimedAt")?,
        }),
        None => None,
    };
    Some(Checkpoint {
        reported_through: datetime(row, "ReportedThrough")?,
        claim,
    })
}

fn run_row(run: &RunRecord) -> Map<String, Value> {
    // Newest first in key order: the row key counts down from the far future.
    let micros = (run.started_at.unix_timestamp_nanos() / 1_000) as i64;
    let inverted = i64::MAX - micros;
    let mut row = Map::from_iter([
        ("PartitionKey".to_owned(), json!(RUN_PARTITION)),
        (
            "RowKey".to_owned(),
            json!(format!("{inverted:019}-{}", run.run_id.simple())),
        ),
        ("RunId".to_owned(), json!(run.run_id.to_string())),
        ("LeadCount".to_owned(), json!(run.lead_count)),
        ("Outcome".to_owned(), json!(run.outcome)),
        (
            "DurationMs".to_owned(),
            json!(run.duration.as_millis() as i64),
        ),
    ]);
    put_datetime(&mut row, "StartedAt", run.started_at);
    for (column, at) in [
        ("WindowStart", run.window_start),
        ("WindowEnd", run.window_end),
    ] {
        if let Some(at) = at {
            put_datetime(&mut row, column, at);
        }
    }
    if let Some(id) = &run.message_id {
        row.insert("MessageId".into(), json!(id));
    }
    if let Some(error) = &run.error {
        row.insert("Error".into(), json!(error));
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn checkpoint_round_trips_through_a_row() {
        let checkpoint = Checkpoint {
            reported_through: datetime!(2026-11-22 10:00:00.123456 UTC),
            claim: Some(Claim {
                run_id: uuid::Uuid::new_v4(),
                window_end: datetime!(2026-11-22 11:00:00 UTC),
                claimed_at: datetime!(2026-11-22 11:00:30 UTC),
            }),
        };
        assert_eq!(
            checkpoint_from_row(&checkpoint_row(&checkpoint)),
            Some(checkpoint.clone())
        );
        let released = Checkpoint {
            claim: None,
            ..checkpoint
        };
        assert_eq!(
            checkpoint_from_row(&checkpoint_row(&released)),
            Some(released)
        );
    }

    #[test]
    fn run_rows_sort_newest_first() {
        let run = |at| RunRecord {
            run_id: uuid::Uuid::nil(),
            started_at: at,
            window_start: None,
            window_end: None,
            lead_count: 0,
            outcome: "no-leads".into(),
            message_id: None,
            error: None,
            duration: Duration::ZERO,
        };
        let older = run_row(&run(datetime!(2026-11-22 10:00:00 UTC)));
        let newer = run_row(&run(datetime!(2026-11-22 11:00:00 UTC)));
        assert!(newer["RowKey"].as_str() < older["RowKey"].as_str());
    }

    /// The fuzzer's invariants hold for the largest leads: a body at the
    /// size limit, surrogate pairs across every column boundary, and a
    /// field whose escapes grow when `CustomerInfo` re-encodes it.
    #[test]
    fn fuzz_entity_invariants_hold_at_the_limits() {
        let frame = r#"{"Description":"","OfferTitle":"O"}"#.len();
        let pad = |unit: &str, n: usize| unit.repeat(n);
        let bodies = [
            format!(
                r#"{{"Description":"{}","OfferTitle":"O"}}"#,
                pad("d", crate::lead::MAX_BODY_BYTES - frame)
            ),
            format!(
                r#"{{"Description":"a{}","OfferTitle":"O"}}"#,
                pad("😀", (crate::lead::MAX_BODY_BYTES - frame - 1) / 4)
            ),
            format!(
                r#"{{"UserDetails":{{"FirstName":"{}"}}}}"#,
                pad(r"\u0000", 10_000)
            ),
        ];
        for body in bodies {
            let lead = Lead::parse(body.as_bytes()).expect("a lead at the limit");
            assert!(fuzz_entity(&lead) > 0);
        }
    }
}
