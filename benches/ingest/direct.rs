//! The baseline: the handler's storage work without the handler. A plain
//! `azure_data_tables` client writes the same three entities `LeadStore::save`
//! writes — de-duplication marker, lead row, and the digest's pending record
//! `P.digest.<lead row key>` — in one entity-group transaction, with the
//! handler's columns and sizes (copied from entities the handler wrote).

use azure_data_tables::prelude::*;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use std::sync::Arc;
use testkit::{DEV_ACCOUNT, DEV_KEY};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

type Row = Map<String, Value>;

/// A plain client on a pooled HTTP client. (The SDK's default transport
/// opens a new connection per request — it sets `pool_max_idle_per_host(0)`
/// — which the handler's store avoids with a pooled client of its own; the
/// baseline does the same, or it would measure connection set-up.)
pub fn table_service(port: u16) -> TableServiceClient {
    azure_data_tables::clients::TableServiceClientBuilder::with_location(
        azure_storage::CloudLocation::Custom {
            account: DEV_ACCOUNT.into(),
            uri: format!("http://127.0.0.1:{port}/{DEV_ACCOUNT}"),
        },
        azure_storage::StorageCredentials::access_key(DEV_ACCOUNT, DEV_KEY),
    )
    .retry(azure_core::RetryOptions::none())
    .transport(azure_core::TransportOptions::new(Arc::new(
        reqwest::Client::new(),
    )))
    .build()
}

/// Every entity of `table` matching `filter` (only the `select`ed columns
/// when given), and the number of requests.
pub async fn query_all(
    table: &TableClient,
    filter: Option<String>,
    select: Option<&str>,
) -> (Vec<Row>, usize) {
    let mut query = table.query();
    if let Some(filter) = filter {
        query = query.filter(filter);
    }
    if let Some(select) = select {
        query = query.select(select.to_owned());
    }
    let mut pages = query.into_stream::<Row>();
    let (mut rows, mut requests) = (Vec::new(), 0);
    while let Some(page) = pages.next().await {
        requests += 1;
        rows.extend(page.expect("query Azurite").entities);
    }
    (rows, requests)
}

/// An entity as written, without what the service adds (`odata.*`,
/// `Timestamp`); `…@odata.type` annotations stay, so types are kept.
fn as_written(mut row: Row) -> Row {
    row.retain(|k, _| !k.starts_with("odata.") && !k.starts_with("Timestamp"));
    row
}

/// One lead's entities: its partition, marker, row and pending record.
pub struct LeadEntities {
    pub partition: String,
    pub marker: Row,
    pub row: Row,
    pub pending: Row,
}

/// The three entities of a lead the handler stored, as a template for
/// more leads of the same shape.
pub struct EntityTemplate {
    marker: Row,
    row: Row,
    pending: Row,
}

impl EntityTemplate {
    /// From the entities of exactly one stored lead (`rows` holds them,
    /// and may hold others).
    pub fn from_stored(rows: &[Row]) -> Self {
        let key = |r: &Row| r["RowKey"].as_str().unwrap_or_default().to_owned();
        let row = rows
            .iter()
            .find(|r| key(r).starts_with('L'))
            .cloned()
            .expect("a lead row");
        let marker = rows
            .iter()
            .find(|r| key(r).starts_with('D') && r["LeadRowKey"] == row["RowKey"])
            .cloned()
            .expect("its marker");
        let pending = rows
            .iter()
            .find(|r| key(r) == format!("P.digest.{}", key(&row)))
            .cloned()
            .expect("its pending digest record");
        Self {
            marker: as_written(marker),
            row: as_written(row),
            pending: as_written(pending),
        }
    }

    /// A lead received at `received_at`, identified by `tag`, with `body`.
    pub fn build(&self, received_at: OffsetDateTime, tag: u64, body: &str) -> LeadEntities {
        let received_at = received_at
            .replace_nanosecond(received_at.nanosecond() / 1_000 * 1_000)
            .unwrap_or(received_at);
        let partition = marketplace_leads::store::keys::partition_key(received_at);
        let instant = marketplace_leads::store::keys::instant_key(received_at);
        let hex = format!("{tag:016x}");
        let row_key = format!("L{instant}-{hex}");
        let lead_id = format!("{}-{hex}", &instant[..8]);
        let received = received_at.format(&Rfc3339).unwrap_or_default();
        let set = |entity: &Row, values: &[(&str, &str)]| {
            let mut entity = entity.clone();
            for (column, value) in values {
                entity.insert((*column).into(), json!(value));
            }
            entity
        };
        let row = set(
            &self.row,
            &[
                ("PartitionKey", &partition),
                ("RowKey", &row_key),
                ("LeadId", &lead_id),
                ("ReceivedAt", &received),
                ("CreatedTime", &received),
                ("Fingerprint", &hex.repeat(4)),
                ("RawBody", body),
            ],
        );
        let marker = set(
            &self.marker,
            &[
                ("PartitionKey", &partition),
                ("RowKey", &format!("D{hex}")),
                ("LeadId", &lead_id),
                ("LeadRowKey", &row_key),
                ("ReceivedAt", &received),
            ],
        );
        let pending = set(
            &self.pending,
            &[
                ("PartitionKey", &partition),
                ("RowKey", &format!("P.digest.{row_key}")),
                ("LeadPartition", &partition),
                ("LeadRowKey", &row_key),
                ("LeadId", &lead_id),
                ("EnqueuedAt", &received),
            ],
        );
        LeadEntities {
            partition,
            marker,
            row,
            pending,
        }
    }
}

/// The handler's storage work without the handler: marker, row and
/// pending record in one entity-group transaction, as `LeadStore::save`
/// sends it.
pub async fn insert_lead(table: &TableClient, lead: LeadEntities) -> Result<(), String> {
    let transaction = table.partition_key_client(lead.partition).transaction();
    let sent = async {
        transaction
            .insert(&lead.marker)?
            .insert(&lead.row)?
            .insert(&lead.pending)?
            .await
    };
    let response = sent.await.map_err(|e| format!("{:?}", e.kind()))?;
    match response
        .operation_responses
        .iter()
        .find(|op| !op.status_code.is_success())
    {
        None => Ok(()),
        Some(op) => Err(format!("operation {}", op.status_code)),
    }
}

/// Older leads, already reported: marker and row only (no pending record),
/// up to 50 leads (100 operations, the service's limit) per transaction,
/// all of one partition. True when every one was stored.
pub async fn seed_reported(table: &TableClient, leads: Vec<LeadEntities>) -> bool {
    const LEADS_PER_BATCH: usize = 50;
    let mut batches: Vec<Vec<LeadEntities>> = Vec::new();
    for lead in leads {
        match batches.last_mut() {
            Some(batch)
                if batch.len() < LEADS_PER_BATCH && batch[0].partition == lead.partition =>
            {
                batch.push(lead)
            }
            _ => batches.push(vec![lead]),
        }
    }
    let stored: Vec<bool> = futures::stream::iter(batches)
        .map(|batch| {
            let table = table.clone();
            async move {
                // Azurite holding 200,000 entities in memory sometimes
                // drops a request: try a batch again, and take a conflict on
                // a retry as the earlier attempt having committed.
                for attempt in 0..3 {
                    let mut transaction = table
                        .partition_key_client(batch[0].partition.clone())
                        .transaction();
                    for lead in &batch {
                        transaction = transaction.insert(&lead.marker)?.insert(&lead.row)?;
                    }
                    match transaction.await {
                        Ok(response) => {
                            return azure_core::Result::Ok(
                                response.operation_responses.iter().all(|op| {
                                    op.status_code.is_success()
                                        || (attempt > 0
                                            && op.status_code == azure_core::StatusCode::Conflict)
                                }),
                            );
                        }
                        Err(e) if attempt == 2 => return Err(e),
                        Err(_) => tokio::time::sleep(std::time::Duration::from_millis(500)).await,
                    }
                }
                azure_core::Result::Ok(false)
            }
        })
        .buffer_unordered(8)
        .map(|r| r.unwrap_or(false))
        .collect()
        .await;
    stored.iter().all(|ok| *ok)
}
