//! Sends per rolling hour, shared by every instance: the per-lead email's
//! cap (ACS's Azure-managed domains send 10 emails an hour). One row per
//! destination in the digest-state table counts the sends of each minute
//! of the window — at most 61 numbers whatever the rate, so the row fits
//! Table storage's 64 KiB property limit at the highest cap the settings
//! allow (a list of every send's time passed it at about 2,978 sends).
//! Taking a send is a write conditional on the row's version, so two
//! instances never both take the last one.

use super::digest_state::Version;
use super::entity::put_datetime;
use super::{retrying, LeadStore, StoreError};
use azure_core::{Etag, StatusCode};
use azure_data_tables::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

const PARTITION: &str = "rate";
const PER_MINUTE: &str = "SendsPerMinute";
/// Written by versions before 0.3: every send's Unix time, as JSON.
const LEGACY_SENDS: &str = "Sends";

/// A destination's sends in the window, by minute, at a version of its row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendLog {
    /// Unix minute → sends in it.
    per_minute: BTreeMap<i64, u32>,
    version: Option<Version>,
}

impl SendLog {
    /// Sends still counting at `now`. A send counts until the minute it
    /// was made in has wholly left the window: never less than the window.
    pub fn used(&self, window: Duration, now: OffsetDateTime) -> usize {
        self.live(window, now).map(|(_, n)| *n as usize).sum()
    }

    /// Sends of `limit` left at `now`.
    pub fn left(&self, limit: usize, window: Duration, now: OffsetDateTime) -> usize {
        limit.saturating_sub(self.used(window, now))
    }

    /// When the oldest send counting at `now` stops counting.
    pub fn next_free_at(&self, window: Duration, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let (minute, _) = self.live(window, now).next()?;
        OffsetDateTime::from_unix_timestamp((minute + 1) * 60 + window.as_secs() as i64).ok()
    }

    /// One more send at `now`; minutes out of the window are dropped.
    pub fn record(&mut self, window: Duration, now: OffsetDateTime) {
        let live: BTreeMap<i64, u32> = self.live(window, now).map(|(m, n)| (*m, *n)).collect();
        self.per_minute = live;
        *self
            .per_minute
            .entry(now.unix_timestamp().div_euclid(60))
            .or_default() += 1;
    }

    fn live(
        &self,
        window: Duration,
        now: OffsetDateTime,
    ) -> impl Iterator<Item = (&i64, &u32)> + '_ {
        let now = now.unix_timestamp();
        let window = window.as_secs() as i64;
        self.per_minute
            .iter()
            .filter(move |(minute, _)| (*minute + 1) * 60 + window > now)
    }

    fn from_row(row: &Map<String, Value>, version: Version) -> Self {
        let mut per_minute: BTreeMap<i64, u32> = row
            .get(PER_MINUTE)
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<BTreeMap<String, u32>>(s).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(minute, n)| Some((minute.parse().ok()?, n)))
            .collect();
        let legacy = row
            .get(LEGACY_SENDS)
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<Vec<i64>>(s).ok())
            .unwrap_or_default();
        for at in legacy {
            *per_minute.entry(at.div_euclid(60)).or_default() += 1;
        }
        Self {
            per_minute,
            version: Some(version),
        }
    }

    fn to_row(&self, name: &str, now: OffsetDateTime) -> Map<String, Value> {
        let per_minute: BTreeMap<String, u32> = self
            .per_minute
            .iter()
            .map(|(m, n)| (m.to_string(), *n))
            .collect();
        let mut row = Map::from_iter([
            ("PartitionKey".to_owned(), json!(PARTITION)),
            ("RowKey".to_owned(), json!(name)),
            (
                PER_MINUTE.to_owned(),
                json!(serde_json::to_string(&per_minute).unwrap_or_default()),
            ),
        ]);
        put_datetime(&mut row, "UpdatedAt", now);
        row
    }
}

impl LeadStore {
    /// `name`'s send log as stored now.
    pub async fn send_log(&self, name: &str) -> Result<SendLog, StoreError> {
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
        Ok(match found {
            Some(found) => {
                SendLog::from_row(&found.entity, Version::from_etag(found.etag.to_string()))
            }
            None => SendLog::default(),
        })
    }

    /// Writes `log` (with a send just recorded) if the row is still at the
    /// version `log` was read at: [`StoreError::Conflict`] if another
    /// instance wrote first. Returns the log at its new version.
    pub async fn write_send_log(
        &self,
        name: &str,
        log: &SendLog,
        now: OffsetDateTime,
    ) -> Result<SendLog, StoreError> {
        let row = log.to_row(name, now);
        let version = match &log.version {
            None => {
                let response = retrying("take a send", || async {
                    self.digest.insert::<_, Value>(&row)?.await
                })
                .await;
                match response {
                    Ok(written) => Some(written.etag.to_string()),
                    Err(e) if e.is_status(StatusCode::Conflict) => {
                        return Err(StoreError::Conflict)
                    }
                    Err(e) => return Err(e),
                }
            }
            Some(version) => {
                let client = self
                    .digest
                    .partition_key_client(PARTITION)
                    .entity_client(name);
                let condition = IfMatchCondition::Etag(Etag::from(version.as_str()));
                match retrying("take a send", || async {
                    client.update(&row, condition.clone())?.await
                })
                .await
                {
                    Ok(written) => Some(written.etag.to_string()),
                    Err(e) if e.is_status(StatusCode::PreconditionFailed) => {
                        return Err(StoreError::Conflict)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        Ok(SendLog {
            per_minute: log.per_minute.clone(),
            version: version.map(Version::from_etag),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_send_counts_until_its_minute_has_left_the_window() {
        let at = datetime!(2026-11-22 10:00:30 UTC);
        let mut log = SendLog::default();
        log.record(HOUR, at);
        log.record(HOUR, at + Duration::from_secs(10));
        assert_eq!(log.used(HOUR, at), 2);
        assert_eq!(log.left(10, HOUR, at), 8);
        let free = log.next_free_at(HOUR, at).unwrap();
        assert_eq!(free, datetime!(2026-11-22 11:01:00 UTC));
        assert_eq!(log.used(HOUR, free - Duration::from_secs(1)), 2);
        assert_eq!(log.used(HOUR, free), 0);
        assert_eq!(log.left(10, HOUR, free), 10);
    }

    /// At the highest cap (10,000 an hour) the row stays small: one number
    /// per minute, not per send.
    #[test]
    fn the_row_fits_at_the_highest_rate() {
        let start = datetime!(2026-11-22 10:00 UTC);
        let mut log = SendLog::default();
        for i in 0..10_000u64 {
            log.record(HOUR, start + Duration::from_millis(i * 360));
        }
        assert_eq!(log.used(HOUR, start + Duration::from_secs(3599)), 10_000);
        let row = log.to_row("email", start);
        let stored = row[PER_MINUTE].as_str().unwrap();
        assert!(
            stored.encode_utf16().count() < 2_000,
            "{} units",
            stored.len()
        );
        let back = SendLog::from_row(&row, Version::from_etag("x"));
        assert_eq!(back.used(HOUR, start + Duration::from_secs(3599)), 10_000);
    }

    #[test]
    fn the_old_list_of_send_times_is_read() {
        let mut row = Map::new();
        row.insert(LEGACY_SENDS.into(), json!("[1000, 1010, 4000]"));
        let log = SendLog::from_row(&row, Version::from_etag("x"));
        let now = OffsetDateTime::from_unix_timestamp(4100).unwrap();
        assert_eq!(log.used(HOUR, now), 3);
    }
}
