//! Erasing a person, and keeping leads no longer than the publisher decides.
//!
//! **Forgetting** ([`LeadStore::find_person`], [`LeadStore::erase`]): every
//! row this service keeps about a person's leads carries the lead's id —
//! the lead row (its raw body with it), its de-duplication marker, its
//! digest record, every delivery record (pending, bundled, delivered,
//! dead) and dead letter — and lives in the lead's day partition or a later
//! one; a body LeadIngest refused is found by the address in it. Rows are
//! deleted a partition at a time, at most 100 to a transaction, the later
//! partitions first and the lead row last: a run stopped by a storage
//! failure leaves the lead findable, and running it again finishes it.
//!
//! **Retention** ([`LeadStore::apply_retention`]): whole day partitions
//! older than the publisher's retention are deleted — never one at or after
//! a pending-work cursor, so nothing the digest or a delivery still owes is
//! touched — with bounded work per run, and refused bodies older than it.

use super::keys::{PARTITION_KEY, ROW_KEY};
use super::pages::{query_pages, Query};
use super::quarantine::QUARANTINE_PARTITION;
use super::transaction::{commit, Op};
use super::{keys, retrying, LeadId, LeadStore, StoreError};
use crate::domain::EmailAddress;
use azure_core::StatusCode;
use futures::TryStreamExt;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, OffsetDateTime};

/// Deletes per transaction: the service's limit.
const MAX_BATCH: usize = 100;
/// Lead ids per query when collecting a person's rows.
const IDS_PER_QUERY: usize = 15;

/// One row to delete, and what it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kept {
    pub partition: String,
    pub row_key: String,
    pub kind: Kind,
}

/// What a kept row is, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Lead,
    Marker,
    DigestRecord,
    PendingDelivery,
    DeliveredRecord,
    DeadRecord,
    DeadLetter,
    RefusedBody,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Self::Lead => "lead rows (raw body included)",
            Self::Marker => "de-duplication markers",
            Self::DigestRecord => "digest records",
            Self::PendingDelivery => "pending deliveries (cancelled)",
            Self::DeliveredRecord => "delivered records",
            Self::DeadRecord => "dead deliveries",
            Self::DeadLetter => "dead letters",
            Self::RefusedBody => "refused bodies",
        }
    }

    fn of(row_key: &str) -> Option<Self> {
        let kind = if row_key.starts_with(keys::LEAD_PREFIX) {
            Self::Lead
        } else if row_key.starts_with(keys::MARKER_PREFIX) {
            Self::Marker
        } else if row_key.starts_with("P.digest.X.") {
            Self::DeadLetter
        } else if row_key.starts_with("P.digest.") {
            Self::DigestRecord
        } else if row_key.starts_with("P.") {
            Self::PendingDelivery
        } else if row_key.starts_with("S.") {
            Self::DeliveredRecord
        } else if row_key.starts_with("X.") {
            Self::DeadRecord
        } else {
            return None;
        };
        Some(kind)
    }
}

/// Everything kept about one person (or one lead), found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Person {
    /// Their leads' ids, oldest first.
    pub leads: Vec<LeadId>,
    /// Every row to delete.
    pub rows: Vec<Kept>,
    /// Where each lead was delivered already (and so cannot be erased
    /// from here): lead id → destination names.
    pub delivered: BTreeMap<String, BTreeSet<String>>,
}

impl Person {
    /// Rows found, by kind.
    pub fn counts(&self) -> BTreeMap<Kind, usize> {
        let mut counts = BTreeMap::new();
        for row in &self.rows {
            *counts.entry(row.kind).or_default() += 1;
        }
        counts
    }
}

/// What a deletion did, and what it left (a rerun finishes it).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Erased {
    pub deleted: BTreeMap<Kind, usize>,
    pub left: usize,
    /// Why it stopped early.
    pub error: Option<String>,
}

/// Who to forget.
#[derive(Debug, Clone)]
pub enum Whom {
    Email(EmailAddress),
    Lead(LeadId),
}

impl LeadStore {
    /// Finds every row kept about `whom`, as of `now`.
    pub async fn find_person(
        &self,
        whom: &Whom,
        now: OffsetDateTime,
    ) -> Result<Person, StoreError> {
        let (leads, address) = match whom {
            Whom::Lead(id) => (vec![id.clone()], None),
            Whom::Email(address) => (self.leads_of_email(address).await?, Some(address)),
        };
        let mut person = Person {
            leads: leads.clone(),
            ..Person::default()
        };
        if let Some(first) = leads.iter().map(LeadId::day).min() {
            for chunk in leads.chunks(IDS_PER_QUERY) {
                let ids = chunk
                    .iter()
                    .map(|id| format!("LeadId eq {}", keys::odata_string(id.as_str())))
                    .collect::<Vec<_>>()
                    .join(" or ");
                let filter = format!(
                    "PartitionKey ge {} and PartitionKey le {} and ({ids})",
                    keys::odata_string(&keys::day_key(first)),
                    keys::odata_string(&keys::day_key(now.date())),
                );
                let query = Query {
                    select: Some("PartitionKey,RowKey,LeadId,Consumer"),
                    ..Query::default()
                };
                let mut pages = std::pin::pin!(query_pages(self.leads.clone(), filter, query));
                while let Some(rows) = pages.try_next().await? {
                    for row in &rows {
                        person.note(row);
                    }
                }
            }
        }
        if let Some(address) = address {
            person
                .rows
                .extend(self.refused_bodies_naming(address.as_str()).await?);
        }
        person.rows.sort();
        person.rows.dedup();
        Ok(person)
    }

    /// The ids of the leads whose customer email is `address` (any case):
    /// every lead row is read, its key and email only.
    async fn leads_of_email(&self, address: &EmailAddress) -> Result<Vec<LeadId>, StoreError> {
        let wanted = address.as_str().to_lowercase();
        let filter = format!(
            "PartitionKey ge '0' and PartitionKey lt ':' and RowKey ge {} and RowKey lt {}",
            keys::odata_string(&keys::LEAD_PREFIX.to_string()),
            keys::odata_string(&char::from(keys::LEAD_PREFIX as u8 + 1).to_string()),
        );
        let query = Query {
            select: Some("PartitionKey,RowKey,LeadId,Email,CustomerInfo"),
            ..Query::default()
        };
        let mut found = Vec::new();
        let mut pages = std::pin::pin!(query_pages(self.leads.clone(), filter, query));
        while let Some(rows) = pages.try_next().await? {
            for row in &rows {
                let email = row
                    .get("Email")
                    .and_then(Value::as_str)
                    .map(str::to_lowercase);
                let in_info = row
                    .get("CustomerInfo")
                    .and_then(Value::as_str)
                    .and_then(|info| serde_json::from_str::<Map<String, Value>>(info).ok())
                    .and_then(|info| {
                        info.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("Email"))
                            .and_then(|(_, v)| v.as_str().map(|e| e.trim().to_lowercase()))
                    });
                if email.as_deref().map(str::trim) == Some(wanted.as_str())
                    || in_info.as_deref() == Some(wanted.as_str())
                {
                    if let Some(id) = row.get("LeadId").and_then(Value::as_str) {
                        if let Ok(id) = LeadId::parse(id) {
                            found.push(id);
                        }
                    }
                }
            }
        }
        found.sort();
        found.dedup();
        Ok(found)
    }

    /// Refused bodies that hold `needle` (any case).
    async fn refused_bodies_naming(&self, needle: &str) -> Result<Vec<Kept>, StoreError> {
        let needle = needle.to_lowercase();
        let filter = format!(
            "PartitionKey eq {}",
            keys::odata_string(QUARANTINE_PARTITION)
        );
        let mut found = Vec::new();
        let mut pages = std::pin::pin!(query_pages(self.leads.clone(), filter, Query::default()));
        while let Some(rows) = pages.try_next().await? {
            for row in &rows {
                let body = super::quarantine::body_of(row).unwrap_or_default();
                if String::from_utf8_lossy(&body)
                    .to_lowercase()
                    .contains(&needle)
                {
                    if let Some(row_key) = row.get(ROW_KEY).and_then(Value::as_str) {
                        found.push(Kept {
                            partition: QUARANTINE_PARTITION.to_owned(),
                            row_key: row_key.to_owned(),
                            kind: Kind::RefusedBody,
                        });
                    }
                }
            }
        }
        Ok(found)
    }

    /// Deletes `person`'s rows: the later partitions first, each lead's own
    /// partition last and its lead row in the last transaction. Stops at
    /// the first failure that retrying did not fix, saying what is left.
    pub async fn erase(&self, person: &Person) -> Erased {
        let mut by_partition: BTreeMap<&str, Vec<&Kept>> = BTreeMap::new();
        for row in &person.rows {
            by_partition.entry(&row.partition).or_default().push(row);
        }
        // Latest partition first ("quarantine" sorts after every day).
        let mut partitions: Vec<(&str, Vec<&Kept>)> = by_partition.into_iter().collect();
        partitions.reverse();
        let mut erased = Erased::default();
        let mut left = person.rows.len();
        for (partition, mut rows) in partitions {
            // Lead rows last within their partition.
            rows.sort_by_key(|row| row.kind == Kind::Lead);
            for chunk in rows.chunks(MAX_BATCH) {
                match self.delete_rows(partition, chunk).await {
                    Ok(()) => {
                        left -= chunk.len();
                        for row in chunk {
                            *erased.deleted.entry(row.kind).or_default() += 1;
                        }
                    }
                    Err(e) => {
                        erased.left = left;
                        erased.error = Some(e.to_string());
                        return erased;
                    }
                }
            }
        }
        erased
    }

    /// One transaction deleting `rows` of `partition`. A row already gone
    /// (deleted meanwhile) fails a transaction whole: those are then
    /// deleted one by one, a missing one counting as deleted.
    async fn delete_rows(&self, partition: &str, rows: &[&Kept]) -> Result<(), StoreError> {
        let ops: Vec<Op> = rows
            .iter()
            .map(|row| Op::Delete {
                row_key: row.row_key.clone(),
                if_match: None,
            })
            .collect();
        match commit(self.leads_partition(partition), "erase rows", &ops).await {
            Err(e) if e.is_status(StatusCode::NotFound) => {
                let client = self.leads.partition_key_client(partition);
                for row in rows {
                    let entity = client.entity_client(row.row_key.clone());
                    match retrying("erase a row", || async { entity.delete().await }).await {
                        Ok(_) => {}
                        Err(e) if e.is_status(StatusCode::NotFound) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            other => other.map(drop),
        }
    }

    /// Deletes what is older than `keep_from` (a day): whole day
    /// partitions before it, and refused bodies received before it — but
    /// no partition at or after `protect_from` (where pending work may
    /// be). At most `budget` rows a run; a later run goes on. Returns how
    /// many rows were deleted and whether more are left.
    pub async fn apply_retention(
        &self,
        keep_from: Date,
        protect_from: Date,
        budget: usize,
    ) -> Result<(usize, bool), StoreError> {
        let cutoff = keep_from.min(protect_from);
        let day_filter = format!(
            "PartitionKey ge '0' and PartitionKey lt {}",
            keys::odata_string(&keys::day_key(cutoff))
        );
        let refused_filter = format!(
            "PartitionKey eq {} and RowKey lt {}",
            keys::odata_string(QUARANTINE_PARTITION),
            keys::odata_string(&format!(
                "{}{}",
                super::quarantine::ROW_PREFIX,
                keys::instant_key(keep_from.midnight().assume_utc())
            ))
        );
        let mut deleted = 0;
        for filter in [day_filter, refused_filter] {
            let query = Query {
                select: Some("PartitionKey,RowKey"),
                page_rows: (budget - deleted).clamp(1, super::PAGE_ROWS as usize) as u32,
            };
            let mut pages = std::pin::pin!(query_pages(self.leads.clone(), filter, query));
            while let Some(rows) = pages.try_next().await? {
                let mut by_partition: BTreeMap<String, Vec<Kept>> = BTreeMap::new();
                for row in &rows {
                    let text = |c: &str| row.get(c).and_then(Value::as_str).map(str::to_owned);
                    if let (Some(partition), Some(row_key)) = (text(PARTITION_KEY), text(ROW_KEY)) {
                        let kind = Kind::of(&row_key).unwrap_or(Kind::RefusedBody);
                        by_partition
                            .entry(partition.clone())
                            .or_default()
                            .push(Kept {
                                partition,
                                row_key,
                                kind,
                            });
                    }
                }
                for (partition, rows) in &by_partition {
                    for chunk in rows.chunks(MAX_BATCH) {
                        let refs: Vec<&Kept> = chunk.iter().collect();
                        self.delete_rows(partition, &refs).await?;
                        deleted += chunk.len();
                    }
                }
                if deleted >= budget {
                    return Ok((deleted, true));
                }
            }
        }
        Ok((deleted, false))
    }
}

impl Person {
    fn note(&mut self, row: &Map<String, Value>) {
        let text = |c: &str| row.get(c).and_then(Value::as_str);
        let (Some(partition), Some(row_key)) = (text(PARTITION_KEY), text(ROW_KEY)) else {
            return;
        };
        let Some(kind) = Kind::of(row_key) else {
            return;
        };
        if kind == Kind::DeliveredRecord {
            if let (Some(lead), Some(consumer)) = (text("LeadId"), text("Consumer")) {
                self.delivered
                    .entry(lead.to_owned())
                    .or_default()
                    .insert(consumer.to_owned());
            }
        }
        self.rows.push(Kept {
            partition: partition.to_owned(),
            row_key: row_key.to_owned(),
            kind,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_row_is_named_by_its_key() {
        for (key, kind) in [
            ("L20261122T101500.123456Z-00112233", Kind::Lead),
            ("D0011223344556677", Kind::Marker),
            ("P.digest.L2026", Kind::DigestRecord),
            ("P.digest.X.webhook.L2026", Kind::DeadLetter),
            ("P.webhook.L2026", Kind::PendingDelivery),
            ("P.*.L2026", Kind::PendingDelivery),
            ("S.teams:sales.L2026", Kind::DeliveredRecord),
            ("X.hubspot.L2026", Kind::DeadRecord),
        ] {
            assert_eq!(Kind::of(key), Some(kind), "{key}");
        }
        assert_eq!(Kind::of("cursor"), None);
    }
}
