//! Unpacking a new lead's bundle of deliveries ([`super::bundle`]): one
//! transaction removes the bundle on its version and writes each delivery
//! as a record of its own — settled by the outcome its first attempt
//! already had, or pending as it was.

use super::super::transaction::{commit, Op};
use super::super::{retrying, StoreError};
use super::bundle::Bundle;
use super::change::{Place, RecordChange};
use super::delivery::{Deliveries, DeliveryItem};
use super::record::Consumer;
use super::row::OutboxRow;
use super::settle::Settled;
use crate::domain::DestinationName;
use azure_core::StatusCode;
use std::collections::{BTreeMap, BTreeSet};

impl Deliveries<'_> {
    /// Unpacks `bundle` untouched: each of its deliveries becomes a
    /// pending record of its own (see [`super::bundle`]), given back at
    /// its version. Fails with [`StoreError::Conflict`] when another
    /// writer unpacked it first.
    pub async fn unpack(&self, bundle: &Bundle) -> Result<Vec<DeliveryItem>, StoreError> {
        self.unpack_with(bundle, &[]).await.map(|(_, rest)| rest)
    }

    /// One transaction: `bundle` removed (on its version) and each of its
    /// deliveries written as `changes` says, or as it was when no change
    /// names it. Gives back how each change went and the untouched
    /// deliveries as pending items.
    ///
    /// A delivery that already has a pending record of its own (written by
    /// a version that did not see bundles when it backfilled) is left to
    /// that record: its insert would fail the whole transaction, holding
    /// every other destination of the lead back.
    pub(super) async fn unpack_with(
        &self,
        bundle: &Bundle,
        changes: &[(DeliveryItem, RecordChange)],
    ) -> Result<(Vec<Settled>, Vec<DeliveryItem>), StoreError> {
        let mut kept_apart = BTreeSet::new();
        loop {
            match self.unpack_once(bundle, changes, &kept_apart).await {
                Err(StoreError::Rejected { failure, .. })
                    if failure.status == Some(StatusCode::Conflict) =>
                {
                    let own = self.own_pending_records(bundle).await?;
                    let new: Vec<_> = own.difference(&kept_apart).cloned().collect();
                    if new.is_empty() {
                        return Err(StoreError::Rejected {
                            operation: "unpack a lead's deliveries",
                            failure,
                        });
                    }
                    tracing::warn!(
                        lead_id = %bundle.lead.id, destinations = ?new,
                        "a bundled delivery already has a record of its own; that record keeps it"
                    );
                    kept_apart.extend(new);
                }
                other => return other,
            }
        }
    }

    /// The destinations of `bundle` that have a pending record of their
    /// own beside it.
    async fn own_pending_records(
        &self,
        bundle: &Bundle,
    ) -> Result<BTreeSet<DestinationName>, StoreError> {
        let partition = self
            .store
            .leads
            .partition_key_client(&bundle.lead.partition);
        let mut found = BTreeSet::new();
        for bundled in &bundle.deliveries {
            let key = bundle.record_key(&bundled.destination).row_key();
            let client = partition.entity_client(key);
            let exists = retrying("read a delivery's record", || async {
                match client
                    .get::<serde_json::Map<String, serde_json::Value>>()
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(e) if super::super::status_of(&e) == Some(StatusCode::NotFound) => {
                        Ok(false)
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
            if exists {
                found.insert(bundled.destination.clone());
            }
        }
        Ok(found)
    }

    async fn unpack_once(
        &self,
        bundle: &Bundle,
        changes: &[(DeliveryItem, RecordChange)],
        kept_apart: &BTreeSet<DestinationName>,
    ) -> Result<(Vec<Settled>, Vec<DeliveryItem>), StoreError> {
        let version = bundle
            .version
            .as_ref()
            .ok_or(StoreError::Malformed("a bundle without its version"))?;
        let change_of = |destination: &DestinationName| {
            changes
                .iter()
                .find(|(item, _)| &item.destination == destination)
                .map(|(_, change)| change)
        };
        // What each bundled delivery becomes, in the transaction's order,
        // after the bundle's delete.
        let mut ops = vec![Op::Delete {
            row_key: bundle.row_key(),
            if_match: Some(version.clone()),
        }];
        // Each delivery written: its record as unpacked, where its
        // operations start (the first is its record's), and its change.
        let mut written: Vec<(OutboxRow, usize, Option<&RecordChange>)> = Vec::new();
        for bundled in &bundle.deliveries {
            if kept_apart.contains(&bundled.destination) {
                continue;
            }
            let row = bundle.unpacked_row(bundled);
            let change = change_of(&bundled.destination);
            let writes = match change {
                Some(change) => change.writes(Place::Bundled(&row)),
                None => vec![Op::Insert(row.to_entity())],
            };
            written.push((row, ops.len(), change));
            ops.extend(writes);
        }
        let partition = self.store.leads_partition(&bundle.lead.partition);
        let versions = commit(partition, "unpack a lead's deliveries", &ops)
            .await
            // Unpacked by another writer (gone, or changed).
            .map_err(|e| e.conflict_on(&[StatusCode::PreconditionFailed, StatusCode::NotFound]))?;
        let mut pending_now = BTreeMap::new();
        let mut untouched = Vec::new();
        for (row, at, change) in written {
            // The item each still-pending record now is, from the row
            // written (nothing to read back).
            let version = versions.get(at).cloned().flatten();
            let destination = row.key.consumer.clone();
            match change {
                Some(change) => {
                    let item = version.and_then(|v| change.pending_from(&row, v));
                    if let Consumer::Destination(destination) = destination {
                        pending_now.insert(destination, item);
                    }
                }
                None => untouched.extend(version.and_then(|version| {
                    DeliveryItem::from_row(OutboxRow {
                        version: Some(version),
                        ..row
                    })
                })),
            }
        }
        let settled = changes
            .iter()
            .map(|(item, change)| Settled {
                item: item.clone(),
                change: change.clone(),
                result: match pending_now.get(&item.destination) {
                    Some(after) => Ok(after.clone()),
                    // Its own record has it (and the sweep delivers it).
                    None if kept_apart.contains(&item.destination) => Err(StoreError::Conflict),
                    None => Err(StoreError::Malformed(
                        "an outcome for a delivery not bundled",
                    )),
                },
            })
            .collect();
        Ok((settled, untouched))
    }
}
