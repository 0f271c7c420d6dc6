//! Reading tables with a plain `azure_data_tables` client (not ours): what
//! is really stored.

use azure_core::error::ErrorKind;
use azure_core::StatusCode;
use azure_data_tables::prelude::*;
use futures::StreamExt;
use serde_json::{Map, Value};

pub async fn read_table(table: &TableClient) -> Vec<Map<String, Value>> {
    let mut stream = table.query().into_stream::<Map<String, Value>>();
    let mut rows = Vec::new();
    while let Some(page) = stream.next().await {
        match page {
            Ok(page) => rows.extend(page.entities),
            // A table that does not exist holds nothing; any other error fails.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::HttpResponse {
                        status: StatusCode::NotFound,
                        ..
                    }
                ) =>
            {
                break
            }
            Err(e) => panic!("query {}: {e}", table.table_name()),
        }
    }
    rows
}

/// Whether `row` is a lead's bundle of pending deliveries (read as the
/// service reads it) holding one for `destination`.
pub fn bundles(row: &Map<String, Value>, destination: &str) -> bool {
    marketplace_leads::store::Bundle::from_entity(row).is_some_and(|bundle| {
        bundle
            .deliveries
            .iter()
            .any(|d| d.destination.as_str() == destination)
    })
}

/// How many of `rows` are bundles holding a delivery for `destination`.
pub fn bundled(rows: &[Map<String, Value>], destination: &str) -> usize {
    rows.iter().filter(|r| bundles(r, destination)).count()
}
