//! Sends per rolling hour, shared by every instance: the budget of a
//! sending domain (ACS's Azure-managed domains send 10 emails an hour,
//! whoever sends them). One row per budget in the digest-state table
//! counts the sends of each minute of the window, in all and per sender
//! (each per-lead email destination, the digest) — at most 61 numbers
//! each whatever the rate, so the row fits Table storage's 64 KiB property
//! limit at the highest cap the settings allow. Taking a send is a write
//! conditional on the row's version, so two instances never both take the
//! last one.

use super::digest_state::Version;
use super::entity::put_datetime;
use super::keys::{PARTITION_KEY, ROW_KEY};
use super::{retrying, LeadStore, StoreError};
use azure_core::StatusCode;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use time::OffsetDateTime;

const PARTITION: &str = "rate";
const PER_MINUTE: &str = "SendsPerMinute";
const PER_SENDER: &str = "SendsPerSender";
/// Written by versions before 0.3: every send's Unix time, as JSON.
const LEGACY_SENDS: &str = "Sends";

/// The digest's name as a sender in its domain's budget (no destination
/// is named that: theirs are `email`, `email:<label>`).
pub const DIGEST_SENDER: &str = "digest";

/// The row key of the send budget of emails from `domain`.
pub fn sending_domain_budget(domain: &str) -> String {
    // Keys may not hold `/ \ # ?` or control characters; a domain holds none.
    format!("domain-{}", domain.to_ascii_lowercase())
}

/// Unix minute → sends in it.
type PerMinute = BTreeMap<i64, u32>;

/// A budget's sends in the window, by minute, in all and per sender, at a
/// version of its row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendLog {
    per_minute: PerMinute,
    per_sender: BTreeMap<String, PerMinute>,
    version: Option<Version>,
}

impl SendLog {
    /// Sends still counting at `now`. A send counts until the minute it
    /// was made in has wholly left the window: never less than the window.
    pub fn used(&self, window: Duration, now: OffsetDateTime) -> usize {
        self.live(window, now).map(|(_, n)| *n as usize).sum()
    }

    /// `sender`'s sends still counting at `now`.
    pub fn used_by(&self, sender: &str, window: Duration, now: OffsetDateTime) -> usize {
        self.per_sender.get(sender).map_or(0, |minutes| {
            live(minutes, window, now).map(|(_, n)| *n as usize).sum()
        })
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

    /// One more send by `sender` at `now`; minutes out of the window are
    /// dropped.
    pub fn record(&mut self, sender: &str, window: Duration, now: OffsetDateTime) {
        let minute = now.unix_timestamp().div_euclid(60);
        let keep = |minutes: &PerMinute| -> PerMinute {
            live(minutes, window, now).map(|(m, n)| (*m, *n)).collect()
        };
        self.per_minute = keep(&self.per_minute);
        *self.per_minute.entry(minute).or_default() += 1;
        self.per_sender = std::mem::take(&mut self.per_sender)
            .into_iter()
            .map(|(name, minutes)| (name, keep(&minutes)))
            .filter(|(_, minutes)| !minutes.is_empty())
            .collect();
        *self
            .per_sender
            .entry(sender.to_owned())
            .or_default()
            .entry(minute)
            .or_default() += 1;
    }

    fn live(&self, window: Duration, now: OffsetDateTime) -> impl Iterator<Item = (&i64, &u32)> {
        live(&self.per_minute, window, now)
    }

    fn from_row(row: &Map<String, Value>, version: Version) -> Self {
        let minutes = |text: &str| -> PerMinute {
            serde_json::from_str::<BTreeMap<String, u32>>(text)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(minute, n)| Some((minute.parse().ok()?, n)))
                .collect()
        };
        let mut per_minute = row
            .get(PER_MINUTE)
            .and_then(Value::as_str)
            .map(minutes)
            .unwrap_or_default();
        let per_sender = row
            .get(PER_SENDER)
            .and_then(Value::as_str)
            .and_then(|s| serde_json::from_str::<BTreeMap<String, Value>>(s).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, minutes_json)| (name, minutes(&minutes_json.to_string())))
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
            per_sender,
            version: Some(version),
        }
    }

    fn to_row(&self, name: &str, now: OffsetDateTime) -> Map<String, Value> {
        let text = |minutes: &PerMinute| -> BTreeMap<String, u32> {
            minutes.iter().map(|(m, n)| (m.to_string(), *n)).collect()
        };
        let per_sender: BTreeMap<&str, BTreeMap<String, u32>> = self
            .per_sender
            .iter()
            .map(|(name, minutes)| (name.as_str(), text(minutes)))
            .collect();
        let mut row = Map::from_iter([
            (PARTITION_KEY.to_owned(), json!(PARTITION)),
            (ROW_KEY.to_owned(), json!(name)),
            (
                PER_MINUTE.to_owned(),
                json!(serde_json::to_string(&text(&self.per_minute)).unwrap_or_default()),
            ),
            (
                PER_SENDER.to_owned(),
                json!(serde_json::to_string(&per_sender).unwrap_or_default()),
            ),
        ]);
        put_datetime(&mut row, "UpdatedAt", now);
        row
    }
}

/// The minutes of `minutes` still in the window at `now`.
fn live(
    minutes: &PerMinute,
    window: Duration,
    now: OffsetDateTime,
) -> impl Iterator<Item = (&i64, &u32)> {
    let now = now.unix_timestamp();
    let window = window.as_secs() as i64;
    minutes
        .iter()
        .filter(move |(minute, _)| (*minute + 1) * 60 + window > now)
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
                let condition = version.condition();
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
            version: version.map(Version::from_etag),
            ..log.clone()
        })
    }

    /// Counts one send by `sender` in budget `name` that was not asked
    /// for beforehand (the digest's: it always goes out, but the hour's
    /// per-lead emails must see it). A few lost races are retried; the
    /// count is best effort after that.
    pub async fn count_send(
        &self,
        name: &str,
        sender: &str,
        window: Duration,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        for _ in 0..5 {
            let mut log = self.send_log(name).await?;
            log.record(sender, window, now);
            match self.write_send_log(name, &log, now).await {
                Err(StoreError::Conflict) => continue,
                other => return other.map(drop),
            }
        }
        Err(StoreError::Conflict)
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
        log.record("email", HOUR, at);
        log.record("digest", HOUR, at + Duration::from_secs(10));
        assert_eq!(log.used(HOUR, at), 2);
        assert_eq!(log.used_by("email", HOUR, at), 1);
        assert_eq!(log.used_by("email:sales", HOUR, at), 0);
        assert_eq!(log.left(10, HOUR, at), 8);
        let free = log.next_free_at(HOUR, at).unwrap();
        assert_eq!(free, datetime!(2026-11-22 11:01:00 UTC));
        assert_eq!(log.used(HOUR, free - Duration::from_secs(1)), 2);
        assert_eq!(log.used(HOUR, free), 0);
        assert_eq!(log.left(10, HOUR, free), 10);
        assert_eq!(log.used_by("digest", HOUR, free), 0);
    }

    #[test]
    fn senders_are_counted_apart_and_read_back() {
        let at = datetime!(2026-11-22 10:00:30 UTC);
        let mut log = SendLog::default();
        for sender in ["email", "email:sales", "email", "digest"] {
            log.record(sender, HOUR, at);
        }
        let back = SendLog::from_row(&log.to_row("domain-x.example", at), Version::from_etag("x"));
        assert_eq!(back.used(HOUR, at), 4);
        assert_eq!(back.used_by("email", HOUR, at), 2);
        assert_eq!(back.used_by("email:sales", HOUR, at), 1);
        assert_eq!(back.used_by("digest", HOUR, at), 1);
        // A sender whose sends have all left the window is forgotten.
        let mut later = back.clone();
        later.record("email", HOUR, at + Duration::from_secs(2 * 3600));
        assert!(!later.per_sender.contains_key("digest"));
        assert_eq!(
            sending_domain_budget("X.AzureComm.net"),
            "domain-x.azurecomm.net"
        );
    }

    /// At the highest cap (10,000 an hour) the row stays small: one number
    /// per minute, not per send.
    #[test]
    fn the_row_fits_at_the_highest_rate() {
        let start = datetime!(2026-11-22 10:00 UTC);
        let mut log = SendLog::default();
        for i in 0..10_000u64 {
            log.record("email", HOUR, start + Duration::from_millis(i * 360));
        }
        assert_eq!(log.used(HOUR, start + Duration::from_secs(3599)), 10_000);
        let row = log.to_row("email", start);
        for column in [PER_MINUTE, PER_SENDER] {
            let stored = row[column].as_str().unwrap();
            assert!(
                stored.encode_utf16().count() < 2_000,
                "{column}: {} units",
                stored.len()
            );
        }
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
