//! Writing a new rating over a stored lead's, when the publisher asks
//! (`handler leads rate --apply`): the only change ever made to a lead row
//! after it is stored, and only to its rating columns.

use super::keys::{PARTITION_KEY, ROW_KEY};
use super::{entity, retrying, ExportRow, LeadStore, StoreError};
use crate::domain::Rating;
use azure_data_tables::IfMatchCondition;
use serde_json::{Map, Value};

impl LeadStore {
    /// Replaces the rating of the lead row `row` was read from (merge: its
    /// other columns stay as they are).
    pub async fn rerate(&self, row: &ExportRow, rating: &Rating) -> Result<(), StoreError> {
        let key = |name: &str| {
            row.columns
                .get(name)
                .and_then(Value::as_str)
                .ok_or(StoreError::Malformed("a lead row without its keys"))
        };
        let (partition, row_key) = (key(PARTITION_KEY)?, key(ROW_KEY)?);
        let mut change = Map::new();
        entity::put_rating(&mut change, rating);
        let client = self
            .leads
            .partition_key_client(partition)
            .entity_client(row_key);
        retrying("re-rate a lead", || async {
            client.merge(&change, IfMatchCondition::Any)?.await
        })
        .await?;
        Ok(())
    }
}
