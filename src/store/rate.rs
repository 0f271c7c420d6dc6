//! Sends per rolling window, shared by every instance: the per-lead email's
//! cap (ACS's Azure-managed domains send 10 emails an hour). One row per
//! limit in the digest-state table holds the times of the sends in the
//! window; taking a send is a conditional write, so two instances never
//! both take the last one.

use super::entity::put_datetime;
use super::{retrying, LeadStore, StoreError};
use azure_core::{Etag, StatusCode};
use azure_data_tables::prelude::*;
use serde_json::{json, Map, Value};
use std::time::Duration;
use time::OffsetDateTime;

const PARTITION: &str = "rate";
const TRIES: usize = 5;

/// Sends left in the window, and when the oldest send in it expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub left: usize,
    pub next_free_at: Option<OffsetDateTime>,
}

impl LeadStore {
    /// The sends of `name` left at `now`.
    pub async fn send_budget(
        &self,
        name: &str,
        limit: usize,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<Budget, StoreError> {
        let (sends, _) = self.sends(name, window, now).await?;
        Ok(budget(&sends, limit, window))
    }

    /// Takes one send of `name` at `now`: `false` when none is left.
    pub async fn take_send(
        &self,
        name: &str,
        limit: usize,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        for _ in 0..TRIES {
            let (mut sends, etag) = self.sends(name, window, now).await?;
            if sends.len() >= limit {
                return Ok(false);
            }
            sends.push(now.unix_timestamp());
            let mut row = Map::from_iter([
                ("PartitionKey".to_owned(), json!(PARTITION)),
                ("RowKey".to_owned(), json!(name)),
                (
                    "Sends".to_owned(),
                    json!(serde_json::to_string(&sends).unwrap_or_default()),
                ),
            ]);
            put_datetime(&mut row, "UpdatedAt", now);
            let written = match &etag {
                None => {
                    retrying("take a send", || async {
                        self.digest.insert::<_, Value>(&row)?.await.map(|_| ())
                    })
                    .await
                }
                Some(etag) => {
                    let client = self
                        .digest
                        .partition_key_client(PARTITION)
                        .entity_client(name);
                    let condition = IfMatchCondition::Etag(Etag::from(etag.clone()));
                    retrying("take a send", || async {
                        client.update(&row, condition.clone())?.await.map(|_| ())
                    })
                    .await
                }
            };
            match written {
                Ok(()) => return Ok(true),
                // Another instance took one meanwhile: read again.
                Err(e)
                    if e.is_status(StatusCode::Conflict)
                        || e.is_status(StatusCode::PreconditionFailed) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }

    /// The send times within the window, and the row's version.
    async fn sends(
        &self,
        name: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<(Vec<i64>, Option<String>), StoreError> {
        let client = self
            .digest
            .partition_key_client(PARTITION)
            .entity_client(name);
        let found = retrying("read a send budget", || async {
            match client.get::<Map<String, Value>>().await {
                Ok(found) => Ok(Some(found)),
                Err(e) if super::status_of(&e) == Some(StatusCode::NotFound) => Ok(None),
                Err(e) => Err(e),
            }
        })
        .await?;
        let Some(found) = found else {
            return Ok((Vec::new(), None));
        };
        let since = now.unix_timestamp() - window.as_secs() as i64;
        let sends: Vec<i64> = found
            .entity
            .get("Sends")
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Vec<i64>>(s).ok())
            .unwrap_or_default()
            .into_iter()
            .filter(|&at| at > since)
            .collect();
        Ok((sends, Some(found.etag.to_string())))
    }
}

fn budget(sends: &[i64], limit: usize, window: Duration) -> Budget {
    Budget {
        left: limit.saturating_sub(sends.len()),
        next_free_at: sends.iter().min().and_then(|&oldest| {
            OffsetDateTime::from_unix_timestamp(oldest + window.as_secs() as i64).ok()
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_frees_when_the_oldest_send_leaves_the_window() {
        let hour = Duration::from_secs(3600);
        let b = budget(&[1_000, 1_500], 10, hour);
        assert_eq!(b.left, 8);
        assert_eq!(b.next_free_at.map(|t| t.unix_timestamp()), Some(4_600));
        assert_eq!(budget(&[], 10, hour).left, 10);
        assert_eq!(budget(&[1; 12], 10, hour).left, 0);
    }
}
