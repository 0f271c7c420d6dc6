//! Settling deliveries: writing what their attempts meant
//! ([`RecordChange`]), conditional on each record's version. The changes
//! of one lead's records go in one entity-group transaction; a bundle's
//! go in the transaction that unpacks it ([`super::unpack`]).

use super::super::transaction::{commit, Op};
use super::super::StoreError;
use super::bundle::Bundle;
use super::change::{Place, RecordChange};
use super::delivery::{Claimed, Deliveries, DeliveryItem};
use super::MAX_BATCH;
use azure_core::StatusCode;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How writing one record's change went: for a record still pending, the
/// item at its new version (for the next attempt to claim without reading
/// it back). It carries the item and change it is about, so a caller never
/// pairs results with its own list by position.
#[derive(Debug)]
pub struct Settled {
    /// The delivery as it was before the change.
    pub item: DeliveryItem,
    pub change: RecordChange,
    pub result: Result<Option<DeliveryItem>, StoreError>,
}

impl Settled {
    fn failed(item: DeliveryItem, change: RecordChange, error: StoreError) -> Self {
        Self {
            item,
            change,
            result: Err(error),
        }
    }
}

/// What [`Deliveries::settle_some`] wrote: each change's result, and the
/// bundled deliveries no change named that were claimed, now pending
/// records of their own still held (at their new versions) — those whose
/// attempts are still running.
#[derive(Debug, Default)]
pub struct Settlement {
    pub settled: Vec<Settled>,
    pub unpacked: Vec<Claimed>,
}

impl Deliveries<'_> {
    /// Writes what attempts meant: each item's change, conditional on the
    /// item's version. The changes of one partition (one lead's
    /// destinations, after its first attempts) go in one transaction; if
    /// that fails on one record (another instance took it), each record
    /// is written on its own so the others still land.
    pub async fn settle(&self, changes: Vec<(Claimed, RecordChange)>) -> Vec<Settled> {
        self.settle_some(changes).await.settled
    }

    /// As [`Deliveries::settle`], when some deliveries of a bundle are still
    /// being attempted: the bundle is unpacked with the changes known, and
    /// its other deliveries come back as pending records of their own, to
    /// be settled as such once their attempts end.
    pub async fn settle_some(&self, changes: Vec<(Claimed, RecordChange)>) -> Settlement {
        type Changes = Vec<(DeliveryItem, RecordChange)>;
        let mut by_partition: BTreeMap<String, Changes> = BTreeMap::new();
        let mut by_bundle: BTreeMap<(String, String), (Arc<Bundle>, Changes)> = BTreeMap::new();
        for (claimed, change) in changes {
            let item = claimed.release();
            match item.bundle.clone() {
                Some(bundle) => {
                    let key = (bundle.lead.partition.clone(), bundle.row_key());
                    by_bundle
                        .entry(key)
                        .or_insert_with(|| (bundle, Vec::new()))
                        .1
                        .push((item, change));
                }
                None => by_partition
                    .entry(item.key.partition.clone())
                    .or_default()
                    .push((item, change)),
            }
        }
        let mut settlement = Settlement::default();
        // A bundle's outcomes land together or not at all: its delete is
        // conditional, so only one writer ever unpacks it.
        for (bundle, changes) in by_bundle.into_values() {
            match self.unpack_with(&bundle, &changes).await {
                Ok((results, untouched)) => {
                    settlement.settled.extend(results);
                    // Those unclaimed are the sweep's.
                    settlement
                        .unpacked
                        .extend(untouched.into_iter().filter_map(Claimed::held));
                }
                Err(e) => settlement.settled.extend(
                    changes
                        .into_iter()
                        .map(|(item, change)| Settled::failed(item, change, e.clone())),
                ),
            }
        }
        for (partition, changes) in by_partition {
            // Each change's operations, built once: they size the
            // transactions and are what they send.
            let written = changes
                .into_iter()
                .map(|(item, change)| {
                    let ops = change.writes(Place::Record(&item));
                    Written { item, change, ops }
                })
                .collect();
            for chunk in chunks(written) {
                match self.settle_together(&partition, &chunk).await {
                    Ok(results) => settlement.settled.extend(results),
                    Err(_) if chunk.len() > 1 => {
                        for one in chunk {
                            let alone = std::slice::from_ref(&one);
                            match self.settle_together(&partition, alone).await {
                                Ok(results) => settlement.settled.extend(results),
                                Err(e) => settlement
                                    .settled
                                    .push(Settled::failed(one.item, one.change, e)),
                            }
                        }
                    }
                    Err(e) => settlement.settled.extend(
                        chunk
                            .into_iter()
                            .map(|one| Settled::failed(one.item, one.change, e.clone())),
                    ),
                }
            }
        }
        settlement
    }

    /// One transaction for `written`, all in `partition`.
    async fn settle_together(
        &self,
        partition: &str,
        written: &[Written],
    ) -> Result<Vec<Settled>, StoreError> {
        // Where each change's operations start: the first is its record's,
        // whose new version a pending item keeps.
        let mut ops: Vec<&Op> = Vec::new();
        let mut starts = Vec::with_capacity(written.len());
        for one in written {
            starts.push(ops.len());
            ops.extend(&one.ops);
        }
        let versions = commit(
            self.store.leads_partition(partition),
            "record deliveries",
            &ops,
        )
        .await
        .map_err(|e| e.conflict_on(&[StatusCode::PreconditionFailed]))?;
        let settled = written
            .iter()
            .zip(starts)
            .map(|(one, at)| Settled {
                item: one.item.clone(),
                change: one.change.clone(),
                result: Ok(versions
                    .get(at)
                    .cloned()
                    .flatten()
                    .and_then(|version| one.change.pending_after(&one.item, version))),
            })
            .collect();
        Ok(settled)
    }
}

/// A change to a record of its own, with the operations that write it.
struct Written {
    item: DeliveryItem,
    change: RecordChange,
    ops: Vec<Op>,
}

/// Groups changes so no transaction has more than [`MAX_BATCH`] operations.
fn chunks(written: Vec<Written>) -> Vec<Vec<Written>> {
    let mut chunks: Vec<Vec<Written>> = Vec::new();
    let mut operations = 0;
    for one in written {
        let needs = one.ops.len();
        if chunks.is_empty() || operations + needs > MAX_BATCH {
            chunks.push(Vec::new());
            operations = 0;
        }
        operations += needs;
        if let Some(last) = chunks.last_mut() {
            last.push(one);
        }
    }
    chunks
}
