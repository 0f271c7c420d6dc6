//! The digest's side of the outbox: stamping the records a digest run
//! holds, and removing them once its email went out.

use super::super::{LeadStore, StoreError};
use super::PendingItem;
use azure_core::Etag;
use azure_data_tables::prelude::*;
use serde_json::json;

impl LeadStore {
    /// Stamps each of `items` with `run_id` (the digest run that holds
    /// them), provided none changed since it was read.
    pub async fn stamp_digest_run(
        &self,
        items: &[PendingItem],
        run_id: uuid::Uuid,
    ) -> Result<(), StoreError> {
        let stamp = json!({ "DigestRun": run_id.to_string() });
        self.batched(items, "stamp pending records", |batch, item| {
            batch.merge(
                item.row_key.clone(),
                &stamp,
                Some(IfMatchCondition::Etag(Etag::from(item.version.as_str()))),
            )
        })
        .await
    }

    /// Removes pending records (the digest reported them).
    pub async fn remove_pending(&self, items: &[PendingItem]) -> Result<(), StoreError> {
        self.batched(items, "remove reported records", |batch, item| {
            batch.delete(item.row_key.clone(), Some(IfMatchCondition::Any))
        })
        .await
    }
}
