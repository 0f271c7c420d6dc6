//! The delivery records as the command line lists and requeues them:
//! every state, a bundle's deliveries shown as the records they become.

use super::super::{pages, retrying, LeadStore, StoreError};
use super::bundle::bundle_range;
use super::reading::records_in;
use super::record::{day_range, state_range};
use super::row::OutboxRow;
use super::{Consumer, LeadRef, PendingDays, RecordKey, RecordState};
use crate::domain::DestinationName;
use azure_core::StatusCode;
use futures::{Stream, TryStreamExt};
use time::OffsetDateTime;

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

impl DeliveryRecord {
    fn from_row(row: OutboxRow) -> Option<Self> {
        if row.key.consumer == Consumer::Digest {
            return None;
        }
        Some(Self {
            state: row.key.state,
            destination: row.key.consumer.to_string(),
            partition: row.key.partition.clone(),
            lead: row.lead,
            enqueued_at: row.enqueued_at,
            attempts: row.attempts,
            last_status: row.last_status,
            last_error: row.last_error,
            at: row.settled_at.or(row.next_attempt_at),
        })
    }
}

impl LeadStore {
    /// Delivery records in `state` (of `destination`, or every
    /// destination's) in the partitions of `days`, a page at a time.
    pub fn delivery_records(
        &self,
        state: RecordState,
        destination: Option<&DestinationName>,
        days: PendingDays,
    ) -> impl Stream<Item = Result<Vec<DeliveryRecord>, StoreError>> + Send + 'static {
        let consumer = destination.map(|d| Consumer::Destination(d.clone()));
        let mut keys = state_range(state, consumer.as_ref());
        if state == RecordState::Pending && consumer.is_some() {
            // One destination's pending deliveries may still be bundled.
            keys = format!("(({keys}) or ({}))", bundle_range());
        }
        let filter = format!("{} and {keys}", day_range(days.first, days.last));
        let destination = destination.cloned();
        pages::pages(self.leads.clone(), filter)
            .map_ok(move |rows| delivery_records_in(&rows, destination.as_ref()))
    }

    /// Every delivery record (any state) of one lead: the partitions from
    /// its receive day through `days.last`, filtered on its id.
    pub async fn delivery_records_of(
        &self,
        lead: &super::super::LeadId,
        days: PendingDays,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let filter = format!(
            "{} and LeadId eq {}",
            day_range(days.first, days.last),
            super::super::keys::odata_string(lead.as_str())
        );
        let mut found = Vec::new();
        let mut pages = std::pin::pin!(pages::pages(self.leads.clone(), filter));
        while let Some(rows) = pages.try_next().await? {
            found.extend(delivery_records_in(&rows, None));
        }
        Ok(found)
    }

    /// Puts a dead delivery back in the queue: a pending record in today's
    /// partition (attempts counted afresh), then the dead one removed, and
    /// its dead letter too if no digest has reported it yet — the
    /// delivery is no longer a failure to report.
    pub async fn requeue(
        &self,
        record: &DeliveryRecord,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let consumer = Consumer::parse(&record.destination).ok_or(StoreError::Malformed(
            "a delivery record names no destination",
        ))?;
        self.enqueue_again(record, now, None).await?;
        let dead = RecordKey {
            partition: record.partition.clone(),
            state: RecordState::Dead,
            consumer,
            lead_row_key: record.lead.row_key.clone(),
        };
        let partition_client = self.leads.partition_key_client(&record.partition);
        for (what, row_key) in [
            ("remove a dead delivery", dead.row_key()),
            ("remove a dead letter", dead.dead_letter_row_key()),
        ] {
            let client = partition_client.entity_client(row_key);
            match retrying(what, || async { client.delete().await }).await {
                Ok(_) => {}
                Err(e) if e.is_status(StatusCode::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl LeadStore {
    /// Sends a delivered (or dead) delivery again, on purpose: a new
    /// pending record in today's partition under a fresh idempotency key
    /// (a receiver that de-duplicates must not drop it as a repeat). The
    /// delivered record stays, as history.
    pub async fn send_again(
        &self,
        record: &DeliveryRecord,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.enqueue_again(record, now, Some(uuid::Uuid::new_v4()))
            .await
    }

    /// A pending record for `record`'s delivery in today's partition; with
    /// `key`, under that idempotency key (as an expired claim's).
    async fn enqueue_again(
        &self,
        record: &DeliveryRecord,
        now: OffsetDateTime,
        key: Option<uuid::Uuid>,
    ) -> Result<(), StoreError> {
        let consumer = Consumer::parse(&record.destination).ok_or(StoreError::Malformed(
            "a delivery record names no destination",
        ))?;
        let partition = super::keys::partition_key(now);
        let pending = OutboxRow {
            claim_batch: key,
            claimed_until: key.map(|_| OffsetDateTime::UNIX_EPOCH),
            ..OutboxRow::pending(
                RecordKey::pending(&partition, consumer, &record.lead),
                record.lead.clone(),
                now,
            )
        }
        .to_entity();
        match retrying("requeue a delivery", || async {
            self.leads.insert::<_, serde_json::Value>(&pending)?.await
        })
        .await
        {
            Ok(_) => Ok(()),
            // Already requeued today.
            Err(e) if e.is_status(StatusCode::Conflict) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The delivery records `rows` hold, a bundle's deliveries each as the
/// pending record it will become; only those of `destination` if given.
fn delivery_records_in(
    rows: &[serde_json::Map<String, serde_json::Value>],
    destination: Option<&DestinationName>,
) -> Vec<DeliveryRecord> {
    records_in(rows)
        .filter(|row| {
            destination.is_none_or(|name| row.key.consumer == Consumer::Destination(name.clone()))
        })
        .filter_map(DeliveryRecord::from_row)
        .collect()
}
