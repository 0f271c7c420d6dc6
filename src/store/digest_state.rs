//! The digest's own state, in the digest-state table
//! (`<LEADS_TABLE>Digest`): the checkpoint (how far digests have reported,
//! and the run currently sending) and the run history, one row per run.

use super::entity::{datetime, put_datetime};
use super::keys::{PARTITION_KEY, ROW_KEY};
use super::{retrying, LeadStore, StoreError};
use azure_core::{Etag, StatusCode};
use azure_data_tables::prelude::*;
use serde_json::{json, Map, Value};
use std::time::Duration;
use time::OffsetDateTime;

const CHECKPOINT_PARTITION: &str = "checkpoint";
const CHECKPOINT_ROW: &str = "LeadDigest";
pub(super) const RUN_PARTITION: &str = "run";

/// Opaque version of a row (its ETag), for optimistic concurrency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

impl Version {
    pub fn from_etag(etag: impl Into<String>) -> Self {
        Self(etag.into())
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    /// The condition that makes a write fail (412) if the row changed
    /// since this version was read or written.
    pub(super) fn condition(&self) -> IfMatchCondition {
        IfMatchCondition::Etag(Etag::from(self.0.as_str()))
    }
}

/// The digest's checkpoint: the run currently holding pending records, if
/// any, and what the digest has counted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    pub claim: Option<Claim>,
    /// Set by versions before 0.2, which reported leads by receive time:
    /// every lead received before this instant was reported. `None` once the
    /// outbox has taken over.
    pub legacy_reported_before: Option<OffsetDateTime>,
    /// Whether pending records drive the digest (versions 0.2 and later).
    pub outbox: bool,
    /// Rejected bodies received before this instant have been counted.
    pub rejected_counted_before: Option<OffsetDateTime>,
}

/// A run that holds pending records (stamped with its id) and is sending,
/// or has sent, their digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub run_id: uuid::Uuid,
    /// When the claim was taken, or last taken over: it is stale once
    /// older than the digest's lease.
    pub claimed_at: OffsetDateTime,
    /// Refused bodies received before this instant are counted in this
    /// claim's digest (fixed when the claim is first taken).
    pub counted_until: OffsetDateTime,
    pub state: ClaimState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimState {
    /// Stamping records or sending.
    Sending,
    /// The send's outcome is unknown (the connection broke after the
    /// message was handed over): send the same email again.
    Ambiguous,
    /// The provider accepted the email; only the records remain to remove.
    Sent { message_id: String },
}

/// One digest run, as recorded in the run history.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run_id: uuid::Uuid,
    pub started_at: OffsetDateTime,
    /// Receive times of the first and last lead reported.
    pub window_start: Option<OffsetDateTime>,
    pub window_end: Option<OffsetDateTime>,
    pub lead_count: usize,
    pub outcome: String,
    pub message_id: Option<String>,
    pub error: Option<String>,
    pub duration: Duration,
}

/// The digest's state: its checkpoint (the claim on its records, and
/// what it has counted) and its run history.
#[derive(Clone, Copy)]
pub struct DigestState<'a> {
    store: &'a LeadStore,
}

impl LeadStore {
    /// The digest's checkpoint and run history.
    pub fn digest_state(&self) -> DigestState<'_> {
        DigestState { store: self }
    }
}

impl DigestState<'_> {
    fn checkpoint_client(&self) -> EntityClient {
        self.store
            .digest
            .partition_key_client(CHECKPOINT_PARTITION)
            .entity_client(CHECKPOINT_ROW)
    }

    /// The digest checkpoint, if a digest ever ran.
    pub async fn checkpoint(&self) -> Result<Option<(Checkpoint, Version)>, StoreError> {
        let client = self.checkpoint_client();
        let response = retrying("read the checkpoint", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => Ok(Some(found)),
                Err(e) if super::status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        let Some(response) = response else {
            return Ok(None);
        };
        let checkpoint = checkpoint_from_row(&response.entity)
            .ok_or(StoreError::Malformed("the digest checkpoint row"))?;
        Ok(Some((checkpoint, Version(response.etag.to_string()))))
    }

    /// Writes the checkpoint if it is still at `expected` (`None`: if there
    /// is none yet). [`StoreError::Conflict`] when another run got there first.
    pub async fn write(
        &self,
        checkpoint: &Checkpoint,
        expected: Option<&Version>,
    ) -> Result<Version, StoreError> {
        let row = checkpoint_row(checkpoint);
        let etag: Etag = match expected {
            None => {
                retrying("create the checkpoint", || async {
                    self.store.digest.insert::<_, Value>(&row)?.await
                })
                .await
                .map_err(|e| e.conflict_on(&[StatusCode::Conflict]))?
                .etag
            }
            Some(version) => {
                let client = self.checkpoint_client();
                let condition = version.condition();
                retrying("update the checkpoint", || async {
                    client.update(&row, condition.clone())?.await
                })
                .await
                .map_err(|e| e.conflict_on(&[StatusCode::PreconditionFailed]))?
                .etag
            }
        };
        Ok(Version(etag.to_string()))
    }

    /// Appends a run to the run history.
    pub async fn record(&self, run: &RunRecord) -> Result<(), StoreError> {
        let row = run_row(run);
        retrying("record the run", || async {
            self.store.digest.insert::<_, Value>(&row)?.await
        })
        .await
        .map(|_| ())
    }
}

fn checkpoint_row(checkpoint: &Checkpoint) -> Map<String, Value> {
    let mut row = Map::from_iter([
        (PARTITION_KEY.to_owned(), json!(CHECKPOINT_PARTITION)),
        (ROW_KEY.to_owned(), json!(CHECKPOINT_ROW)),
        ("Outbox".to_owned(), json!(checkpoint.outbox)),
    ]);
    if let Some(before) = checkpoint.legacy_reported_before {
        put_datetime(&mut row, "ReportedBefore", before);
    }
    if let Some(before) = checkpoint.rejected_counted_before {
        put_datetime(&mut row, "RejectedCountedBefore", before);
    }
    if let Some(claim) = &checkpoint.claim {
        row.insert("ClaimRunId".into(), json!(claim.run_id.to_string()));
        put_datetime(&mut row, "ClaimedAt", claim.claimed_at);
        put_datetime(&mut row, "ClaimCountedUntil", claim.counted_until);
        let state = match &claim.state {
            ClaimState::Sending => "sending",
            ClaimState::Ambiguous => "ambiguous",
            ClaimState::Sent { message_id } => {
                row.insert("ClaimMessageId".into(), json!(message_id));
                "sent"
            }
        };
        row.insert("ClaimState".into(), json!(state));
    }
    row
}

fn checkpoint_from_row(row: &Map<String, Value>) -> Option<Checkpoint> {
    let outbox = row.get("Outbox").and_then(Value::as_bool).unwrap_or(false);
    let claim = match row.get("ClaimRunId").and_then(Value::as_str) {
        // A claim of the time-window digest (before 0.2) named a window, not
        // records: its leads are still unreported and are adopted below.
        Some(_) if !outbox => None,
        Some(run_id) => Some(Claim {
            run_id: run_id.parse().ok()?,
            claimed_at: datetime(row, "ClaimedAt")?,
            counted_until: datetime(row, "ClaimCountedUntil")?,
            state: match row.get("ClaimState").and_then(Value::as_str)? {
                "sending" => ClaimState::Sending,
                "ambiguous" => ClaimState::Ambiguous,
                "sent" => ClaimState::Sent {
                    message_id: row.get("ClaimMessageId")?.as_str()?.to_owned(),
                },
                _ => return None,
            },
        }),
        None => None,
    };
    // 0.1.x wrote `ReportedThrough`, an inclusive bound.
    let legacy_reported_before = datetime(row, "ReportedBefore").or_else(|| {
        datetime(row, "ReportedThrough").map(|through| through + time::Duration::MICROSECOND)
    });
    Some(Checkpoint {
        claim,
        legacy_reported_before,
        outbox,
        rejected_counted_before: datetime(row, "RejectedCountedBefore"),
    })
}

fn run_row(run: &RunRecord) -> Map<String, Value> {
    // Newest first in key order: the row key counts down from the far future.
    let micros = (run.started_at.unix_timestamp_nanos() / 1_000) as i64;
    let inverted = i64::MAX - micros;
    let mut row = Map::from_iter([
        (PARTITION_KEY.to_owned(), json!(RUN_PARTITION)),
        (
            ROW_KEY.to_owned(),
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
        for state in [
            ClaimState::Sending,
            ClaimState::Ambiguous,
            ClaimState::Sent {
                message_id: "<x@y>".into(),
            },
        ] {
            let checkpoint = Checkpoint {
                claim: Some(Claim {
                    run_id: uuid::Uuid::new_v4(),
                    claimed_at: datetime!(2026-11-22 11:00:30 UTC),
                    counted_until: datetime!(2026-11-22 11:00:00 UTC),
                    state,
                }),
                legacy_reported_before: None,
                outbox: true,
                rejected_counted_before: Some(datetime!(2026-11-22 10:00:00.5 UTC)),
            };
            assert_eq!(
                checkpoint_from_row(&checkpoint_row(&checkpoint)),
                Some(checkpoint)
            );
        }
        let released = Checkpoint {
            outbox: true,
            ..Checkpoint::default()
        };
        assert_eq!(
            checkpoint_from_row(&checkpoint_row(&released)),
            Some(released)
        );
    }

    #[test]
    fn a_time_window_checkpoint_from_an_older_version_is_read_for_adoption() {
        let mut row = Map::new();
        put_datetime(
            &mut row,
            "ReportedThrough",
            datetime!(2026-11-22 10:00:00 UTC),
        );
        row.insert("ClaimRunId".into(), json!(uuid::Uuid::nil().to_string()));
        put_datetime(
            &mut row,
            "ClaimWindowEnd",
            datetime!(2026-11-22 11:00:00 UTC),
        );
        put_datetime(&mut row, "ClaimedAt", datetime!(2026-11-22 11:00:30 UTC));
        let checkpoint = checkpoint_from_row(&row).unwrap();
        assert_eq!(
            checkpoint.legacy_reported_before,
            Some(datetime!(2026-11-22 10:00:00.000001 UTC))
        );
        assert!(!checkpoint.outbox);
        assert_eq!(
            checkpoint.claim, None,
            "its window's leads get adopted instead"
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
}
