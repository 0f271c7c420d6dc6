//! What `handler status` reads from storage alone: the digest's recent
//! runs, the delivery sweep's heartbeat (one row, replaced by every sweep,
//! so a timer that stopped shows as a heartbeat that got old), and how many
//! leads arrived in a range.

use super::digest_state::RUN_PARTITION;
use super::entity::{datetime, put_datetime};
use super::keys::{PARTITION_KEY, ROW_KEY};
use super::pages::{query_pages, Query};
use super::{keys, retrying, LeadStore, StoreError};
use crate::domain::TimeRange;
use azure_core::StatusCode;
use futures::TryStreamExt;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

const HEARTBEAT_PARTITION: &str = "heartbeat";
const SWEEP_ROW: &str = "LeadDeliver";

/// One digest run, as its history row has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub started_at: OffsetDateTime,
    /// `sent`, `no-new-leads`, `another-run-in-progress` or `failed`.
    pub outcome: String,
    pub lead_count: u64,
    pub error: Option<String>,
}

impl RunSummary {
    /// The run did its job: LeadDigest ran and did not fail.
    pub fn succeeded(&self) -> bool {
        self.outcome != "failed"
    }
}

/// The last delivery sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepBeat {
    pub at: OffsetDateTime,
    /// `None` when it finished; the error when it failed.
    pub error: Option<String>,
    /// What it did, as its log line says it.
    pub summary: String,
    /// The destinations the service that swept delivers to.
    pub destinations: Vec<String>,
}

impl LeadStore {
    /// The newest `limit` digest runs, newest first (the run history's key
    /// order).
    pub async fn recent_runs(&self, limit: u32) -> Result<Vec<RunSummary>, StoreError> {
        let filter = format!("PartitionKey eq {}", keys::odata_string(RUN_PARTITION));
        let query = Query {
            select: None,
            page_rows: limit.max(1),
        };
        let mut pages = std::pin::pin!(query_pages(self.digest.clone(), filter, query));
        let rows = pages.try_next().await?.unwrap_or_default();
        Ok(rows.iter().filter_map(run_summary).collect())
    }

    /// Replaces the sweep's heartbeat with `beat`.
    pub async fn record_sweep(&self, beat: &SweepBeat) -> Result<(), StoreError> {
        let mut row = Map::from_iter([
            (PARTITION_KEY.to_owned(), json!(HEARTBEAT_PARTITION)),
            (ROW_KEY.to_owned(), json!(SWEEP_ROW)),
            ("Summary".to_owned(), json!(beat.summary)),
            (
                "Destinations".to_owned(),
                json!(beat.destinations.join(",")),
            ),
        ]);
        put_datetime(&mut row, "At", beat.at);
        if let Some(error) = &beat.error {
            row.insert("Error".into(), json!(error));
        }
        let client = self
            .digest
            .partition_key_client(HEARTBEAT_PARTITION)
            .entity_client(SWEEP_ROW);
        retrying("record the sweep", || async {
            client.insert_or_replace(&row)?.await
        })
        .await
        .map(drop)
    }

    /// The last sweep's heartbeat, if any sweep ever ran.
    pub async fn last_sweep(&self) -> Result<Option<SweepBeat>, StoreError> {
        let client = self
            .digest
            .partition_key_client(HEARTBEAT_PARTITION)
            .entity_client(SWEEP_ROW);
        let found = retrying("read the sweep's heartbeat", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => Ok(Some(found.entity)),
                Err(e) if super::status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(found.and_then(|row| {
            Some(SweepBeat {
                at: datetime(&row, "At")?,
                error: row.get("Error").and_then(Value::as_str).map(str::to_owned),
                summary: row
                    .get("Summary")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                destinations: row
                    .get("Destinations")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        }))
    }

    /// Whether storage answers now: one point read of the digest state, the
    /// cheapest request that needs both the account and our credentials.
    pub async fn probe(&self) -> Result<(), StoreError> {
        self.digest_state().checkpoint().await.map(drop)
    }

    /// How many leads were received in `range`, reading only their keys.
    pub async fn count_leads(&self, range: TimeRange) -> Result<usize, StoreError> {
        let query = Query {
            select: Some(ROW_KEY),
            ..Query::default()
        };
        query_pages(self.leads.clone(), keys::range_filter(range), query)
            .try_fold(0, |count, rows| async move { Ok(count + rows.len()) })
            .await
    }
}

fn run_summary(row: &Map<String, Value>) -> Option<RunSummary> {
    Some(RunSummary {
        started_at: datetime(row, "StartedAt")?,
        outcome: row.get("Outcome")?.as_str()?.to_owned(),
        lead_count: row.get("LeadCount").and_then(Value::as_u64).unwrap_or(0),
        error: row.get("Error").and_then(Value::as_str).map(str::to_owned),
    })
}
