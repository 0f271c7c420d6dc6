//! Enqueueing leads after the fact: for a destination configured later
//! (`deliveries backfill`), or the digest taking over from the time-window
//! digest of older versions. And reading back the leads records name.

use super::super::keys::ROW_KEY;
use super::super::{pages, read_lead, retrying, LeadStore, StoreError, StoredLead};
use super::bundle::bundle_range;
use super::reading::records_in;
use super::record::{day_range, state_range};
use super::row::OutboxRow;
use super::{lead_ref, Consumer, LeadRef, PendingDays, RecordKey, RecordState};
use azure_core::StatusCode;
use futures::TryStreamExt;
use std::collections::{BTreeMap, HashSet};
use time::OffsetDateTime;

impl LeadStore {
    /// Enqueues `consumer`'s pending record in today's partition for each
    /// of `leads` that has none there yet. The records go into today's
    /// partition so that no cursor has passed them. Returns how many were
    /// enqueued.
    pub async fn enqueue_today(
        &self,
        consumer: &Consumer,
        leads: &[LeadRef],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let partition = super::keys::partition_key(now);
        let mut enqueued = 0;
        for lead in leads {
            let row = OutboxRow::pending(
                RecordKey::pending(&partition, consumer.clone(), lead),
                lead.clone(),
                now,
            )
            .to_entity();
            // One at a time: a record already there is fine, and in a batch
            // its conflict would fail the whole batch.
            match retrying("enqueue a lead", || async {
                self.leads.insert::<_, serde_json::Value>(&row)?.await
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

    /// The leads `leads` name, read back (lead rows of one partition in
    /// one key range); a lead that is gone is left out, and logged.
    pub async fn leads_of(&self, leads: &[&LeadRef]) -> Result<Vec<StoredLead>, StoreError> {
        let mut by_partition: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for lead in leads {
            by_partition
                .entry(&lead.partition)
                .or_default()
                .push(&lead.row_key);
        }
        let mut found = Vec::with_capacity(leads.len());
        for (partition, mut row_keys) in by_partition {
            row_keys.sort_unstable();
            let (Some(first), Some(last)) = (row_keys.first(), row_keys.last()) else {
                continue;
            };
            let filter = format!(
                "PartitionKey eq {} and RowKey ge {} and RowKey le {}",
                super::keys::odata_string(partition),
                super::keys::odata_string(first),
                super::keys::odata_string(last)
            );
            let mut pages = std::pin::pin!(pages::pages(self.leads.clone(), filter));
            while let Some(rows) = pages.try_next().await? {
                found.extend(rows.iter().filter_map(|row| {
                    let key = row.get(ROW_KEY)?.as_str()?;
                    row_keys.binary_search(&key).ok()?;
                    read_lead(row)
                }));
            }
        }
        if found.len() < leads.len() {
            tracing::warn!(
                missing = leads.len() - found.len(),
                "records name leads that are no longer in the table"
            );
        }
        Ok(found)
    }

    /// Enqueues `consumer`'s pending record for every lead received in
    /// `range` that `keep` accepts and that `consumer` has no record of
    /// (pending, delivered or dead). Running it twice enqueues nothing the
    /// second time. Returns how many leads were enqueued.
    pub async fn backfill(
        &self,
        consumer: &Consumer,
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
        let days = PendingDays::new(range.start.date(), now.date());
        let recorded = self.recorded_leads(consumer, days).await?;
        leads.retain(|lead| !recorded.contains(&lead.row_key));
        self.enqueue_today(consumer, &leads, now).await
    }

    /// The lead row keys that `consumer` has any record of (pending —
    /// still bundled with a new lead's other deliveries, or its own —
    /// delivered or dead) in `days`.
    pub async fn recorded_leads(
        &self,
        consumer: &Consumer,
        days: PendingDays,
    ) -> Result<HashSet<String>, StoreError> {
        let mut found = HashSet::new();
        let mut ranges: Vec<String> = [
            RecordState::Pending,
            RecordState::Delivered,
            RecordState::Dead,
        ]
        .into_iter()
        .map(|state| state_range(state, Some(consumer)))
        .collect();
        if matches!(consumer, Consumer::Destination(_)) {
            ranges.push(bundle_range());
        }
        for range in ranges {
            let filter = format!("{} and {range}", day_range(days.first, days.last));
            let mut pages = std::pin::pin!(pages::pages(self.leads.clone(), filter));
            while let Some(rows) = pages.try_next().await? {
                found.extend(
                    records_in(&rows)
                        .filter(|record| &record.key.consumer == consumer)
                        .map(|record| record.key.lead_row_key),
                );
            }
        }
        Ok(found)
    }
}
