//! Bodies LeadIngest refused, kept so that no lead is lost without trace:
//! Partner Center cannot re-send a lead, and its own FAQ's sample lead is
//! invalid JSON. One row per refusal in the leads table's `quarantine`
//! partition (after every day's partition, so lead reads never meet it),
//! keyed by receive time; the body as bytes, at most [`MAX_KEPT_BYTES`].

use super::entity::{datetime, put_datetime};
use super::keys::{PARTITION_KEY, ROW_KEY};
use super::{keys, pages, retrying, LeadStore, StoreError};
use crate::domain::TimeRange;
use base64::Engine as _;
use futures::{Stream, TryStreamExt};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

const PARTITION: &str = "quarantine";
const PREFIX: &str = "R";
/// The partition refused bodies are kept in (after every day's).
pub const QUARANTINE_PARTITION: &str = PARTITION;
/// Their row keys: this, then the receive time.
pub const ROW_PREFIX: &str = PREFIX;
/// Names the source row of an import's unreadable row (a hash).
const SOURCE: &str = "ImportSource";
/// A binary property holds at most 64 KiB.
pub const MAX_KEPT_BYTES: usize = 64 * 1024;

/// A refused body, as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedBody {
    pub id: String,
    pub received_at: OffsetDateTime,
    pub status: u16,
    /// Our reason, as the sender was told.
    pub reason: String,
    /// The body's length as received (or declared, when it was refused
    /// unread for its size).
    pub length: u64,
    /// The body, or its first [`MAX_KEPT_BYTES`] bytes.
    pub body: Vec<u8>,
}

impl LeadStore {
    /// Keeps a refused body. The caller answers the refusal either way.
    pub async fn quarantine(
        &self,
        received_at: OffsetDateTime,
        status: u16,
        reason: &str,
        length: u64,
        body: &[u8],
    ) -> Result<String, StoreError> {
        self.keep(received_at, status, reason, length, body, None)
            .await
    }

    async fn keep(
        &self,
        received_at: OffsetDateTime,
        status: u16,
        reason: &str,
        length: u64,
        body: &[u8],
        source: Option<&str>,
    ) -> Result<String, StoreError> {
        let received_at = keys::truncate_to_micros(received_at);
        let id = format!(
            "{}-{}",
            keys::instant_key(received_at),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let kept = &body[..body.len().min(MAX_KEPT_BYTES)];
        let mut row = Map::from_iter([
            (PARTITION_KEY.to_owned(), json!(PARTITION)),
            (ROW_KEY.to_owned(), json!(format!("{PREFIX}{id}"))),
            ("Status".to_owned(), json!(status)),
            ("Reason".to_owned(), json!(reason)),
            // Edm.Int64 travels as a string in JSON.
            ("Length".to_owned(), json!(length.to_string())),
            ("Length@odata.type".to_owned(), json!("Edm.Int64")),
            (
                "Body".to_owned(),
                json!(base64::engine::general_purpose::STANDARD.encode(kept)),
            ),
            ("Body@odata.type".to_owned(), json!("Edm.Binary")),
        ]);
        put_datetime(&mut row, "ReceivedAt", received_at);
        if let Some(source) = source {
            row.insert(SOURCE.into(), json!(source));
        }
        retrying("keep a refused body", || async {
            self.leads.insert::<_, Value>(&row)?.await
        })
        .await?;
        Ok(id)
    }

    /// Keeps a row an import could not read, marked with `source`, a hash
    /// naming the source row: a second run that meets the same row finds
    /// it in [`LeadStore::kept_import_rows`] and keeps it only once.
    pub async fn quarantine_import_row(
        &self,
        at: OffsetDateTime,
        reason: &str,
        body: &[u8],
        source: &str,
    ) -> Result<String, StoreError> {
        self.keep(at, 422, reason, body.len() as u64, body, Some(source))
            .await
    }

    /// The source hashes of the import rows kept so far.
    pub async fn kept_import_rows(&self) -> Result<std::collections::HashSet<String>, StoreError> {
        let filter = format!("PartitionKey eq '{PARTITION}' and {SOURCE} ne ''");
        let mut found = std::collections::HashSet::new();
        let mut pages = std::pin::pin!(pages::pages(self.leads.clone(), filter));
        while let Some(rows) = pages.try_next().await? {
            found.extend(
                rows.iter()
                    .filter_map(|r| r.get(SOURCE)?.as_str().map(str::to_owned)),
            );
        }
        Ok(found)
    }

    /// The bodies refused in `range`, oldest first, a page at a time.
    pub fn rejected_in(
        &self,
        range: TimeRange,
    ) -> impl Stream<Item = Result<Vec<RejectedBody>, StoreError>> + Send + 'static {
        let filter = format!(
            "PartitionKey eq '{PARTITION}' and RowKey ge {} and RowKey lt {}",
            keys::odata_string(&format!("{PREFIX}{}", keys::instant_key(range.start))),
            keys::odata_string(&format!("{PREFIX}{}", keys::instant_key(range.end))),
        );
        pages::pages(self.leads.clone(), filter)
            .map_ok(|rows| rows.iter().filter_map(rejected_body).collect())
    }

    /// How many bodies were refused in `range`.
    pub async fn count_rejected(&self, range: TimeRange) -> Result<usize, StoreError> {
        self.rejected_in(range)
            .try_fold(0, |n, page| async move { Ok(n + page.len()) })
            .await
    }
}

/// The body a refused-body row keeps.
pub fn body_of(row: &Map<String, Value>) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(row.get("Body")?.as_str()?)
        .ok()
}

fn rejected_body(row: &Map<String, Value>) -> Option<RejectedBody> {
    Some(RejectedBody {
        id: row.get(ROW_KEY)?.as_str()?.strip_prefix(PREFIX)?.to_owned(),
        received_at: datetime(row, "ReceivedAt")?,
        status: u16::try_from(row.get("Status")?.as_u64()?).ok()?,
        reason: row.get("Reason")?.as_str()?.to_owned(),
        length: row.get("Length")?.as_str()?.parse().ok()?,
        body: base64::engine::general_purpose::STANDARD
            .decode(row.get("Body")?.as_str()?)
            .ok()?,
    })
}
