//! An outbox record as a row of the leads table: [`OutboxRow`] to and from
//! an entity, and the partial writes (a claim, a retry) — the one place
//! that names its columns.

use super::super::digest_state::Version;
use super::super::entity::{datetime, put_datetime};
use super::super::keys::LeadId;
use super::record::{Consumer, LeadRef, RecordKey, RecordState};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// Service error text kept with a record, at most this many characters.
const MAX_EXCERPT_CHARS: usize = 300;

pub(super) use super::super::keys::{PARTITION_KEY, ROW_KEY};
pub(super) const ETAG: &str = "odata.etag";
const CONSUMER: &str = "Consumer";
const LEAD_PARTITION: &str = "LeadPartition";
const LEAD_ROW_KEY: &str = "LeadRowKey";
pub(super) const LEAD_ID: &str = "LeadId";
pub(super) const IS_TEST: &str = "IsTestLead";
pub(super) const OFFER: &str = "LeadOffer";
pub(super) const ACTION: &str = "LeadAction";
pub(super) const RATING: &str = "LeadRating";
pub(super) const ENQUEUED_AT: &str = "EnqueuedAt";
const ATTEMPTS: &str = "Attempts";
const LAST_STATUS: &str = "LastStatus";
const LAST_ERROR: &str = "LastError";
const NEXT_ATTEMPT_AT: &str = "NextAttemptAt";
const CLAIMED_UNTIL: &str = "ClaimedUntil";
const CLAIM_BATCH: &str = "ClaimBatch";
const DIGEST_RUN: &str = "DigestRun";
const SETTLED_AT: &str = "SettledAt";
const DEAD_DESTINATION: &str = "DeadDestination";
const DEAD_STATUS: &str = "DeadStatus";
const DEAD_EXCERPT: &str = "DeadExcerpt";
const DIED_AT: &str = "DiedAt";

/// Why a destination gave up on a lead, as the digest reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub destination: String,
    pub last_status: String,
    pub excerpt: String,
    pub died_at: OffsetDateTime,
}

/// Every column an outbox record may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub key: RecordKey,
    pub lead: LeadRef,
    pub enqueued_at: OffsetDateTime,
    /// Delivery attempts that failed so far (or made, once settled).
    pub attempts: u32,
    pub last_status: Option<String>,
    pub last_error: Option<String>,
    /// Not to be tried before this.
    pub next_attempt_at: Option<OffsetDateTime>,
    /// A delivery holds the record until then...
    pub claimed_until: Option<OffsetDateTime>,
    /// ...sending it in this batch, whose id is the idempotency key of
    /// what it sends.
    pub claim_batch: Option<uuid::Uuid>,
    /// The digest run that holds this record.
    pub digest_run: Option<uuid::Uuid>,
    /// A digest record reporting a destination that gave up on the lead.
    pub dead_letter: Option<DeadLetter>,
    /// Delivered or given up at.
    pub settled_at: Option<OffsetDateTime>,
    /// The row's ETag, when read or written.
    pub version: Option<Version>,
}

impl OutboxRow {
    /// A new pending record.
    pub fn pending(key: RecordKey, lead: LeadRef, enqueued_at: OffsetDateTime) -> Self {
        Self {
            key,
            lead,
            enqueued_at,
            attempts: 0,
            last_status: None,
            last_error: None,
            next_attempt_at: None,
            claimed_until: None,
            claim_batch: None,
            digest_run: None,
            dead_letter: None,
            settled_at: None,
            version: None,
        }
    }

    /// This row in another state, same partition, with its history.
    pub fn settled(&self, state: RecordState, at: OffsetDateTime) -> Self {
        Self {
            key: self.key.in_state(state),
            next_attempt_at: None,
            claimed_until: None,
            claim_batch: None,
            settled_at: Some(at),
            version: None,
            ..self.clone()
        }
    }

    /// The digest's dead letter about this (delivery) record, beside it.
    pub fn dead_letter(&self, status: &str, error: &str, at: OffsetDateTime) -> Self {
        Self {
            dead_letter: Some(DeadLetter {
                destination: self.key.consumer.to_string(),
                last_status: status.to_owned(),
                excerpt: excerpt(error),
                died_at: at,
            }),
            ..Self::pending(
                RecordKey {
                    partition: self.key.partition.clone(),
                    state: RecordState::Pending,
                    consumer: Consumer::Digest,
                    lead_row_key: self.key.lead_row_key.clone(),
                },
                self.lead.clone(),
                at,
            )
        }
    }

    /// The row key this row is written under (a dead letter has its own).
    pub fn row_key(&self) -> String {
        match &self.dead_letter {
            Some(letter) => RecordKey {
                consumer: Consumer::parse(&letter.destination).unwrap_or(Consumer::Digest),
                ..self.key.clone()
            }
            .dead_letter_row_key(),
            None => self.key.row_key(),
        }
    }

    pub fn to_entity(&self) -> Map<String, Value> {
        let mut row = Map::from_iter([
            (PARTITION_KEY.to_owned(), json!(self.key.partition)),
            (ROW_KEY.to_owned(), json!(self.row_key())),
            (CONSUMER.to_owned(), json!(self.key.consumer.as_str())),
            (LEAD_PARTITION.to_owned(), json!(self.lead.partition)),
            (LEAD_ROW_KEY.to_owned(), json!(self.lead.row_key)),
            (LEAD_ID.to_owned(), json!(self.lead.id.as_str())),
            (IS_TEST.to_owned(), json!(self.lead.is_test)),
        ]);
        if let Some(offer) = &self.lead.offer {
            row.insert(OFFER.into(), json!(offer));
        }
        if let Some(action) = &self.lead.action {
            row.insert(ACTION.into(), json!(action));
        }
        if let Some(rating) = self.lead.rating {
            row.insert(RATING.into(), json!(rating.as_str()));
        }
        put_datetime(&mut row, ENQUEUED_AT, self.enqueued_at);
        if self.attempts > 0 {
            row.insert(ATTEMPTS.into(), json!(self.attempts));
        }
        if let Some(status) = &self.last_status {
            row.insert(LAST_STATUS.into(), json!(status));
        }
        if let Some(error) = &self.last_error {
            row.insert(LAST_ERROR.into(), json!(excerpt(error)));
        }
        if let Some(at) = self.next_attempt_at {
            put_datetime(&mut row, NEXT_ATTEMPT_AT, at);
        }
        if let Some(until) = self.claimed_until {
            put_datetime(&mut row, CLAIMED_UNTIL, until);
        }
        if let Some(batch) = self.claim_batch {
            row.insert(CLAIM_BATCH.into(), json!(batch.to_string()));
        }
        if let Some(run) = self.digest_run {
            row.insert(DIGEST_RUN.into(), json!(run.to_string()));
        }
        if let Some(at) = self.settled_at {
            put_datetime(&mut row, SETTLED_AT, at);
        }
        if let Some(letter) = &self.dead_letter {
            row.insert(DEAD_DESTINATION.into(), json!(letter.destination));
            row.insert(DEAD_STATUS.into(), json!(letter.last_status));
            row.insert(DEAD_EXCERPT.into(), json!(letter.excerpt));
            put_datetime(&mut row, DIED_AT, letter.died_at);
        }
        row
    }

    /// Reads a row back; `None` for one that is not an outbox record.
    /// Whether `row` is meant as an outbox record (it names a consumer),
    /// readable or not.
    pub fn is_outbox_entity(row: &Map<String, Value>) -> bool {
        row.contains_key(CONSUMER)
    }

    pub fn from_entity(row: &Map<String, Value>) -> Option<Self> {
        let text = |name: &str| row.get(name)?.as_str().map(str::to_owned);
        let consumer = Consumer::parse(&text(CONSUMER)?)?;
        let row_key = text(ROW_KEY)?;
        let state = match row_key.get(..2)? {
            "P." => RecordState::Pending,
            "S." => RecordState::Delivered,
            "X." => RecordState::Dead,
            _ => return None,
        };
        let dead_letter = match text(DEAD_DESTINATION) {
            Some(destination) => Some(DeadLetter {
                destination,
                last_status: text(DEAD_STATUS).unwrap_or_default(),
                excerpt: text(DEAD_EXCERPT).unwrap_or_default(),
                died_at: datetime(row, DIED_AT)?,
            }),
            None => None,
        };
        Some(Self {
            key: RecordKey {
                partition: text(PARTITION_KEY)?,
                state,
                consumer,
                lead_row_key: text(LEAD_ROW_KEY)?,
            },
            lead: LeadRef {
                partition: text(LEAD_PARTITION)?,
                row_key: text(LEAD_ROW_KEY)?,
                id: LeadId::parse(&text(LEAD_ID)?).ok()?,
                is_test: row.get(IS_TEST).and_then(Value::as_bool).unwrap_or(false),
                // Not on records written before the digest summarised.
                offer: text(OFFER),
                action: text(ACTION),
                rating: text(RATING)
                    .as_deref()
                    .and_then(crate::domain::Level::parse),
            },
            enqueued_at: datetime(row, ENQUEUED_AT)?,
            attempts: row
                .get(ATTEMPTS)
                .and_then(Value::as_u64)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(0),
            last_status: text(LAST_STATUS),
            last_error: text(LAST_ERROR),
            next_attempt_at: datetime(row, NEXT_ATTEMPT_AT),
            claimed_until: datetime(row, CLAIMED_UNTIL),
            // Cleared by writing it empty: a merge cannot remove a property.
            claim_batch: text(CLAIM_BATCH).and_then(|b| b.parse().ok()),
            digest_run: text(DIGEST_RUN).and_then(|r| r.parse().ok()),
            dead_letter,
            settled_at: datetime(row, SETTLED_AT),
            version: text(ETAG).map(Version::from_etag),
        })
    }
}

/// The merge that claims a record for a batch until `until`.
pub fn claim_change(until: OffsetDateTime, batch: uuid::Uuid) -> Map<String, Value> {
    let mut change = Map::from_iter([(CLAIM_BATCH.to_owned(), json!(batch.to_string()))]);
    put_datetime(&mut change, CLAIMED_UNTIL, until);
    change
}

/// The merge that releases a record to be tried at `next`: after a failed
/// attempt (`failed` says what it answered), or untried (`None`: the
/// hour's email budget was spent). Without `keep_batch` the next attempt
/// goes out in a batch of its own.
pub fn release_change(
    attempts: u32,
    next: OffsetDateTime,
    failed: Option<(&str, &str)>,
    keep_batch: bool,
) -> Map<String, Value> {
    let mut change = Map::new();
    if let Some((status, error)) = failed {
        change.insert(ATTEMPTS.into(), json!(attempts));
        change.insert(LAST_STATUS.into(), json!(status));
        change.insert(LAST_ERROR.into(), json!(excerpt(error)));
    }
    if !keep_batch {
        change.insert(CLAIM_BATCH.into(), json!(""));
    }
    put_datetime(&mut change, NEXT_ATTEMPT_AT, next);
    // Released: the claim ends where it was recorded.
    put_datetime(&mut change, CLAIMED_UNTIL, OffsetDateTime::UNIX_EPOCH);
    change
}

/// The merge that stamps a digest record with the run holding it.
pub fn digest_run_change(run: uuid::Uuid) -> Map<String, Value> {
    Map::from_iter([(DIGEST_RUN.to_owned(), json!(run.to_string()))])
}

/// The filter selecting digest records stamped by `run`.
pub fn stamped_by(run: uuid::Uuid) -> String {
    format!("{DIGEST_RUN} eq '{run}'")
}

/// The row key written in an entity.
pub fn row_key_of(entity: &Map<String, Value>) -> String {
    entity
        .get(ROW_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// `entity` with the version it was written at (as a read gives it).
#[cfg(test)]
pub fn with_etag(mut entity: Map<String, Value>, etag: &str) -> Map<String, Value> {
    entity.insert(ETAG.into(), json!(etag));
    entity
}

fn excerpt(text: &str) -> String {
    crate::domain::text::truncated(&crate::domain::text::single_line(text), MAX_EXCERPT_CHARS)
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DestinationName;
    use time::macros::datetime;

    fn lead() -> LeadRef {
        LeadRef {
            partition: "2026-11-21".into(),
            row_key: "L20261121T235959.123456Z-0011223344556677".into(),
            id: LeadId::parse("20261121-0011223344556677").unwrap(),
            is_test: true,
            offer: Some("Contoso Analytics".into()),
            action: Some("PLT".into()),
            rating: None,
        }
    }

    #[test]
    fn a_pending_record_reads_back() {
        let key = RecordKey::pending("2026-11-22", Consumer::Digest, &lead());
        let row = OutboxRow::pending(key, lead(), datetime!(2026-11-22 00:00:01 UTC));
        let entity = with_etag(row.to_entity(), "W/\"datetime'x'\"");
        let back = OutboxRow::from_entity(&entity).expect("reads back");
        assert_eq!(back.key.partition, "2026-11-22");
        assert_eq!(back.lead, lead());
        assert_eq!(back.version, Some(Version::from_etag("W/\"datetime'x'\"")));
        assert_eq!(
            OutboxRow {
                version: None,
                ..back
            },
            row
        );
    }

    #[test]
    fn every_column_round_trips() {
        let teams = Consumer::Destination(DestinationName::parse("teams:sales").unwrap());
        let at = datetime!(2026-11-22 10:00 UTC);
        let row = OutboxRow {
            attempts: 3,
            last_status: Some("HTTP 500".into()),
            last_error: Some("busy".into()),
            next_attempt_at: Some(at),
            claimed_until: Some(at),
            claim_batch: Some(uuid::Uuid::from_u128(7)),
            ..OutboxRow::pending(RecordKey::pending("2026-11-22", teams, &lead()), lead(), at)
        };
        assert_eq!(OutboxRow::from_entity(&row.to_entity()), Some(row.clone()));
        let letter = row.dead_letter("HTTP 400", "bad\nrequest", at);
        let entity = letter.to_entity();
        assert_eq!(
            row_key_of(&entity),
            "P.digest.X.teams:sales.L20261121T235959.123456Z-0011223344556677"
        );
        let back = OutboxRow::from_entity(&entity).unwrap();
        assert_eq!(back.key.consumer, Consumer::Digest);
        assert_eq!(back.dead_letter.as_ref().unwrap().excerpt, "bad request");
        assert_eq!(back.row_key(), row_key_of(&entity));
    }

    #[test]
    fn a_row_that_is_not_a_record_is_none() {
        let mut entity = Map::new();
        entity.insert("RowKey".into(), json!("L2026"));
        assert_eq!(OutboxRow::from_entity(&entity), None);
    }
}
