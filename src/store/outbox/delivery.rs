//! The delivery destinations' side of the outbox: claiming a pending
//! record, and recording how its delivery went — delivered (`S.`), to be
//! tried again later, or dead (`X.`, with a dead letter for the digest) —
//! each a single conditional write, so two instances never both act on one
//! record. Also the records as the command line lists and requeues them.

use super::super::entity::{datetime, put_datetime};
use super::super::{keys, pages, retrying, Failure, LeadStore, StoreError, StoredLead};
use super::{
    day_range, pending_entity, state_range, state_row_key, LeadRef, PendingDays, PendingItem, DEAD,
    DELIVERED, DIGEST, PENDING,
};
use azure_core::{Etag, StatusCode};
use azure_data_tables::prelude::*;
use futures::{Stream, TryStreamExt};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Service error text kept with a record, at most this many characters.
const MAX_EXCERPT_CHARS: usize = 300;

/// Which records to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RecordState {
    Pending,
    Delivered,
    Dead,
}

impl RecordState {
    fn prefix(self) -> &'static str {
        match self {
            Self::Pending => PENDING,
            Self::Delivered => DELIVERED,
            Self::Dead => DEAD,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// A delivery record of any state, as the command line shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub state: RecordState,
    pub destination: String,
    pub partition: String,
    pub lead: LeadRef,
    pub enqueued_at: OffsetDateTime,
    pub attempts: u32,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    /// Delivered or given up at; for a pending one, its next attempt.
    pub at: Option<OffsetDateTime>,
}

fn excerpt(text: &str) -> String {
    crate::domain::text::truncated(&crate::domain::text::single_line(text), MAX_EXCERPT_CHARS)
        .into_owned()
}

fn if_match(item: &PendingItem) -> Option<IfMatchCondition> {
    Some(IfMatchCondition::Etag(Etag::from(item.version.as_str())))
}

/// `item`'s record in another state, with its history.
fn settled_record(
    item: &PendingItem,
    state: &str,
    status: &str,
    error: Option<&str>,
    at: OffsetDateTime,
) -> Map<String, Value> {
    let mut row = Map::from_iter([
        ("PartitionKey".to_owned(), json!(item.partition)),
        (
            "RowKey".to_owned(),
            json!(state_row_key(state, &item.consumer, &item.lead_row_key)),
        ),
        ("Consumer".to_owned(), json!(item.consumer)),
        ("LeadPartition".to_owned(), json!(item.lead_partition)),
        ("LeadRowKey".to_owned(), json!(item.lead_row_key)),
        ("LeadId".to_owned(), json!(item.lead_id)),
        ("IsTestLead".to_owned(), json!(item.is_test)),
        ("Attempts".to_owned(), json!(item.attempts + 1)),
        ("LastStatus".to_owned(), json!(status)),
    ]);
    if let Some(error) = error {
        row.insert("LastError".into(), json!(excerpt(error)));
    }
    put_datetime(&mut row, "EnqueuedAt", item.enqueued_at);
    put_datetime(&mut row, "SettledAt", at);
    row
}

impl LeadStore {
    /// Claims `item` for a delivery in `batch` until `until`: fails with
    /// [`StoreError::Conflict`] when another sweep changed it first.
    pub async fn claim(
        &self,
        item: &PendingItem,
        batch: uuid::Uuid,
        until: OffsetDateTime,
    ) -> Result<PendingItem, StoreError> {
        let mut change = Map::from_iter([("ClaimBatch".to_owned(), json!(batch.to_string()))]);
        put_datetime(&mut change, "ClaimedUntil", until);
        let client = self
            .leads
            .partition_key_client(&item.partition)
            .entity_client(&item.row_key);
        let condition = IfMatchCondition::Etag(Etag::from(item.version.as_str()));
        let response = retrying("claim a delivery", || async {
            client.merge(&change, condition.clone())?.await
        })
        .await
        .map_err(conflict_on_precondition)?;
        Ok(PendingItem {
            claimed_until: Some(until),
            claim_batch: Some(batch),
            version: super::Version::from_etag(response.etag.to_string()),
            ..item.clone()
        })
    }

    /// The lead was delivered: its pending record becomes a delivered one,
    /// in one transaction.
    pub async fn delivered(
        &self,
        item: &PendingItem,
        status: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let record = settled_record(item, DELIVERED, status, None, at);
        self.settle(item, "record a delivery", vec![record]).await
    }

    /// The destination gave up: the pending record becomes a dead one, and
    /// a dead letter for the digest is written with it, in one transaction.
    pub async fn dead(
        &self,
        item: &PendingItem,
        status: &str,
        error: &str,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let record = settled_record(item, DEAD, status, Some(error), at);
        let mut letter = pending_entity(
            DIGEST,
            &item.partition,
            &LeadRef {
                partition: item.lead_partition.clone(),
                row_key: item.lead_row_key.clone(),
                id: item.lead_id.clone(),
                is_test: item.is_test,
            },
            at,
        );
        letter.insert(
            "RowKey".into(),
            json!(format!(
                "{PENDING}.{DIGEST}.{DEAD}.{}.{}",
                item.consumer, item.lead_row_key
            )),
        );
        letter.insert("DeadDestination".into(), json!(item.consumer));
        letter.insert("DeadStatus".into(), json!(status));
        letter.insert("DeadExcerpt".into(), json!(excerpt(error)));
        put_datetime(&mut letter, "DiedAt", at);
        self.settle(item, "record a dead delivery", vec![record, letter])
            .await
    }

    /// The attempt failed for now: try again at `next`, unclaimed. With
    /// `keep_batch` (the receiver may have acted on it) the retry goes out
    /// in the same batch, under the same idempotency key.
    pub async fn retry_later(
        &self,
        item: &PendingItem,
        next: OffsetDateTime,
        status: &str,
        error: &str,
        keep_batch: bool,
    ) -> Result<(), StoreError> {
        let mut change = Map::from_iter([
            ("Attempts".to_owned(), json!(item.attempts + 1)),
            ("LastStatus".to_owned(), json!(status)),
            ("LastError".to_owned(), json!(excerpt(error))),
        ]);
        if !keep_batch {
            change.insert("ClaimBatch".into(), json!(""));
        }
        put_datetime(&mut change, "NextAttemptAt", next);
        // Released: the claim ends where it was recorded.
        put_datetime(&mut change, "ClaimedUntil", OffsetDateTime::UNIX_EPOCH);
        let client = self
            .leads
            .partition_key_client(&item.partition)
            .entity_client(&item.row_key);
        let condition = IfMatchCondition::Etag(Etag::from(item.version.as_str()));
        retrying("reschedule a delivery", || async {
            client.merge(&change, condition.clone())?.await
        })
        .await
        .map(|_| ())
        .map_err(conflict_on_precondition)
    }

    /// `consumer`'s pending record of one lead, if there is one.
    pub async fn pending_of(
        &self,
        partition: &str,
        consumer: &str,
        lead_row_key: &str,
    ) -> Result<Option<PendingItem>, StoreError> {
        let client = self
            .leads
            .partition_key_client(partition)
            .entity_client(state_row_key(PENDING, consumer, lead_row_key));
        let row = retrying("read a pending delivery", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => {
                    let mut entity = found.entity;
                    entity.insert("odata.etag".into(), json!(found.etag.to_string()));
                    Ok(Some(entity))
                }
                Err(e) if super::super::status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(row.as_ref().and_then(super::pending_item))
    }

    /// Removes `item` (if unchanged) and inserts `records` (replacing any
    /// older one of the same key), all in `item`'s partition at once.
    async fn settle(
        &self,
        item: &PendingItem,
        operation: &'static str,
        records: Vec<Map<String, Value>>,
    ) -> Result<(), StoreError> {
        let client = self.leads.partition_key_client(&item.partition);
        let response = retrying(operation, || async {
            let mut batch = client
                .transaction()
                .delete(item.row_key.clone(), if_match(item))?;
            for record in &records {
                let row_key = record["RowKey"].as_str().unwrap_or_default().to_owned();
                batch = batch.insert_or_replace(row_key, record)?;
            }
            batch.await
        })
        .await?;
        match response
            .operation_responses
            .iter()
            .find(|op| !op.status_code.is_success())
        {
            None => Ok(()),
            Some(op) if op.status_code == StatusCode::PreconditionFailed => {
                Err(StoreError::Conflict)
            }
            Some(op) => Err(StoreError::Rejected {
                operation,
                failure: Failure::answered(op.status_code),
            }),
        }
    }

    /// One lead, read back by its keys; `None` if it is gone.
    pub async fn lead(
        &self,
        partition: &str,
        row_key: &str,
    ) -> Result<Option<StoredLead>, StoreError> {
        let client = self
            .leads
            .partition_key_client(partition)
            .entity_client(row_key);
        let row = retrying("read a lead", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => Ok(Some(found.entity)),
                Err(e) if super::super::status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        Ok(row.as_ref().and_then(super::super::read_lead))
    }

    /// Delivery records in `state` (of `destination`, or every
    /// destination's) in the partitions of `days`, a page at a time.
    pub fn delivery_records(
        &self,
        state: RecordState,
        destination: Option<&str>,
        days: PendingDays,
    ) -> impl Stream<Item = Result<Vec<DeliveryRecord>, StoreError>> + Send + 'static {
        let filter = format!(
            "{} and {}",
            day_range(days.first, days.last),
            state_range(state.prefix(), destination)
        );
        pages::pages(self.leads.clone(), filter).map_ok(move |rows| {
            rows.iter()
                .filter(|row| row.get("Consumer").and_then(Value::as_str) != Some(DIGEST))
                .filter_map(|row| delivery_record(state, row))
                .collect()
        })
    }

    /// Puts a dead delivery back in the queue: a pending record in today's
    /// partition (attempts counted afresh), then the dead one removed.
    pub async fn requeue(
        &self,
        record: &DeliveryRecord,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let partition = keys::partition_key(now);
        let pending = pending_entity(&record.destination, &partition, &record.lead, now);
        match retrying("requeue a delivery", || async {
            self.leads.insert::<_, Value>(&pending)?.await
        })
        .await
        {
            Ok(_) => {}
            // Already requeued today.
            Err(e) if e.is_status(StatusCode::Conflict) => {}
            Err(e) => return Err(e),
        }
        let client = self
            .leads
            .partition_key_client(&record.partition)
            .entity_client(state_row_key(
                DEAD,
                &record.destination,
                &record.lead.row_key,
            ));
        match retrying("remove a dead delivery", || async { client.delete().await }).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_status(StatusCode::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn conflict_on_precondition(error: StoreError) -> StoreError {
    if error.is_status(StatusCode::PreconditionFailed) {
        StoreError::Conflict
    } else {
        error
    }
}

fn delivery_record(state: RecordState, row: &Map<String, Value>) -> Option<DeliveryRecord> {
    let text = |name: &str| row.get(name)?.as_str().map(str::to_owned);
    Some(DeliveryRecord {
        state,
        destination: text("Consumer")?,
        partition: text("PartitionKey")?,
        lead: LeadRef {
            partition: text("LeadPartition")?,
            row_key: text("LeadRowKey")?,
            id: text("LeadId")?,
            is_test: row
                .get("IsTestLead")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        },
        enqueued_at: datetime(row, "EnqueuedAt")?,
        attempts: row
            .get("Attempts")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        last_status: text("LastStatus"),
        last_error: text("LastError"),
        at: datetime(row, "SettledAt").or_else(|| datetime(row, "NextAttemptAt")),
    })
}
