//! Reading a table this service did not write: the one Partner Center's own
//! "Azure Table" destination fills, for `handler leads import`. Every row,
//! a page at a time (the table's keys are Partner Center's, so there is no
//! key range to narrow it by).

use super::{client, pages, StoreError};
use crate::configuration::StorageAccount;
use azure_data_tables::prelude::TableClient;
use serde_json::{Map, Value};

/// A table to read leads from.
#[derive(Clone)]
pub struct SourceTable {
    table: TableClient,
}

impl std::fmt::Debug for SourceTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceTable")
            .field("table", &self.table.table_name())
            .finish()
    }
}

impl SourceTable {
    /// Builds the client; no I/O.
    pub fn open(account: &StorageAccount, table: &str) -> anyhow::Result<Self> {
        Ok(Self {
            table: client::service_client(account)?.table_client(table),
        })
    }

    pub fn name(&self) -> &str {
        self.table.table_name()
    }

    /// Whether `row` was written by this handler (a lead row, its marker,
    /// an outbox record): a table holding such rows is a leads table of
    /// ours, not Partner Center's, and importing it would store our own
    /// bookkeeping as leads.
    pub fn written_by_us(row: &Map<String, Value>) -> bool {
        ["Fingerprint", "LeadRowKey", "Consumer", "SaveId", "RawBody"]
            .iter()
            .any(|column| row.contains_key(*column))
    }

    /// Every row, a page at a time, as the service returns them.
    pub fn rows(
        &self,
    ) -> impl futures::Stream<Item = Result<Vec<Map<String, Value>>, StoreError>> + Send + 'static
    {
        // `PartitionKey ge ''` holds for every row: a query needs a filter.
        pages::pages(self.table.clone(), "PartitionKey ge ''".to_owned())
    }
}
