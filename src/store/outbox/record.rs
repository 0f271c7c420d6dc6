//! What an outbox record is about and where it lives: its consumer, its
//! state, its key, and the lead it names. Keys are built and read here only.

use super::super::keys::{self, LeadId};
use crate::domain::DestinationName;
use std::fmt;

/// Who a record is for: the digest, or a delivery destination.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Consumer {
    Digest,
    Destination(DestinationName),
}

impl Consumer {
    pub const DIGEST: &'static str = "digest";

    /// As written in keys and the `Consumer` column.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Digest => Self::DIGEST,
            Self::Destination(name) => name.as_str(),
        }
    }

    /// Reads the `Consumer` column back.
    pub fn parse(text: &str) -> Option<Self> {
        if text == Self::DIGEST {
            Some(Self::Digest)
        } else {
            DestinationName::parse(text).ok().map(Self::Destination)
        }
    }
}

impl fmt::Display for Consumer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<DestinationName> for Consumer {
    fn from(name: DestinationName) -> Self {
        Self::Destination(name)
    }
}

/// A record's state, the first part of its row key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordState {
    /// `P.`: to do. Consumers read only this range.
    Pending,
    /// `S.`: delivered (destinations only).
    Delivered,
    /// `X.`: dead, could not be delivered.
    Dead,
}

impl RecordState {
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Self::Pending => "P",
            Self::Delivered => "S",
            Self::Dead => "X",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// A pending delivery held by an attempt until `until`, sending in
/// `batch` — whose id is the idempotency key of what it sends. How a new
/// lead's records are written claimed ([`super::super::NewRecord`]) and how
/// a bundle keeps each delivery's claim ([`super::Bundled`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    pub until: time::OffsetDateTime,
    pub batch: uuid::Uuid,
}

impl Lease {
    /// As a record's two columns (`ClaimedUntil`, `ClaimBatch`).
    pub fn columns(lease: Option<Self>) -> (Option<time::OffsetDateTime>, Option<uuid::Uuid>) {
        lease.map(|l| (l.until, l.batch)).unzip()
    }
}

/// Which lead a record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadRef {
    pub partition: String,
    pub row_key: String,
    pub id: LeadId,
    /// Partner Center's test lead: the digest counts these apart.
    pub is_test: bool,
    /// The offer (its title, or its id) and the action, kept with each
    /// record so that the digest's summary counts leads it does not read.
    pub offer: Option<String>,
    pub action: Option<String>,
    /// Its rating's level, kept for the digest's counts too.
    pub rating: Option<crate::domain::Level>,
}

impl LeadRef {
    /// `offer` and `action` as records keep them: bounded, one line.
    pub fn labelled(mut self, lead: &crate::domain::Lead) -> Self {
        use crate::domain::text;
        let offer = lead
            .offer_title
            .as_deref()
            .or(lead.offer_id())
            .map(|o| text::truncated(&text::single_line(o), MAX_LABEL_CHARS).into_owned());
        self.offer = offer.filter(|o| !o.is_empty());
        self.action = lead
            .action()
            .map(|a| text::truncated(&text::single_line(a), MAX_LABEL_CHARS).into_owned());
        self.rating = lead.level();
        self
    }
}

/// The most characters of an offer or action label a record keeps.
const MAX_LABEL_CHARS: usize = 120;

/// Where a record lives: `(day partition, <state>.<consumer>.<lead row key>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordKey {
    pub partition: String,
    pub state: RecordState,
    pub consumer: Consumer,
    pub lead_row_key: String,
}

impl RecordKey {
    pub fn pending(partition: &str, consumer: Consumer, lead: &LeadRef) -> Self {
        Self {
            partition: partition.to_owned(),
            state: RecordState::Pending,
            consumer,
            lead_row_key: lead.row_key.clone(),
        }
    }

    /// The same record in another state, in the same partition.
    pub fn in_state(&self, state: RecordState) -> Self {
        Self {
            state,
            ..self.clone()
        }
    }

    pub fn row_key(&self) -> String {
        format!(
            "{}.{}.{}",
            self.state.prefix(),
            self.consumer,
            self.lead_row_key
        )
    }

    /// The digest's dead letter about this (delivery) record: pending for
    /// the digest, beside the record, `P.digest.X.<destination>.<lead>`.
    pub fn dead_letter_row_key(&self) -> String {
        format!(
            "{}.{}.{}.{}.{}",
            RecordState::Pending.prefix(),
            Consumer::DIGEST,
            RecordState::Dead.prefix(),
            self.consumer,
            self.lead_row_key
        )
    }
}

/// `RowKey ge '<state>.<consumer>.' and RowKey lt '<state>.<consumer>/'`:
/// one consumer's records in `state` (`/` is the character after `.`);
/// every consumer's when `consumer` is `None`.
pub(super) fn state_range(state: RecordState, consumer: Option<&Consumer>) -> String {
    let prefix = match consumer {
        Some(consumer) => format!("{}.{consumer}", state.prefix()),
        None => state.prefix().to_owned(),
    };
    key_range(&format!("{prefix}."), &format!("{prefix}/"))
}

/// `RowKey ge 'from' and RowKey lt 'to'`.
pub(super) fn key_range(from: &str, to: &str) -> String {
    format!(
        "RowKey ge {} and RowKey lt {}",
        keys::odata_string(from),
        keys::odata_string(to),
    )
}

/// The pending records of every destination, as two key ranges around the
/// digest's: `[P., P.digest.)` and `[P.digest/, P/)`.
pub(super) fn pending_destination_ranges() -> [String; 2] {
    let p = RecordState::Pending.prefix();
    let digest = format!("{p}.{}", Consumer::DIGEST);
    [
        key_range(&format!("{p}."), &format!("{digest}.")),
        key_range(&format!("{digest}/"), &format!("{p}/")),
    ]
}

pub(super) fn day_range(first: time::Date, last: time::Date) -> String {
    format!(
        "PartitionKey ge {} and PartitionKey le {}",
        keys::odata_string(&keys::day_key(first)),
        keys::odata_string(&keys::day_key(last)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn lead() -> LeadRef {
        crate::store::testing::lead_ref()
    }

    fn teams() -> Consumer {
        Consumer::Destination(DestinationName::parse("teams").unwrap())
    }

    #[test]
    fn ranges_select_one_consumer_or_all_and_never_a_lead() {
        let digest = state_range(RecordState::Pending, Some(&Consumer::Digest));
        assert_eq!(digest, "RowKey ge 'P.digest.' and RowKey lt 'P.digest/'");
        let range = "P.digest.".."P.digest/";
        let key = RecordKey::pending("2026-11-22", Consumer::Digest, &lead()).row_key();
        assert!(range.contains(&key.as_str()));
        let letter = RecordKey::pending("2026-11-22", teams(), &lead()).dead_letter_row_key();
        assert!(letter.starts_with("P.digest.X.teams.L"));
        assert!(range.contains(&letter.as_str()));
        for other in [
            "P.digests.Lx",
            "P.webhook.Lx",
            "L20261122T101500.123456Z-00",
            "D00",
            "S.digest.Lx",
        ] {
            assert!(!range.contains(&other), "{other}");
        }
        assert_eq!(
            state_range(RecordState::Pending, None),
            "RowKey ge 'P.' and RowKey lt 'P/'"
        );
        assert_eq!(
            day_range(date!(2026 - 11 - 21), date!(2026 - 11 - 22)),
            "PartitionKey ge '2026-11-21' and PartitionKey le '2026-11-22'"
        );
    }

    #[test]
    fn the_destination_ranges_hold_every_destination_and_no_digest_record() {
        let [below, above] = ["P.".."P.digest.", "P.digest/".."P/"];
        let inside = |key: &str| below.contains(&key) || above.contains(&key);
        for key in [
            "P.email.L1",
            "P.dataverse.L1",
            "P.teams.L1",
            "P.teams:a.L1",
            "P.webhook.L1",
            "P.hubspot.L1",
            "P.digestx.L1",
        ] {
            assert!(inside(key), "{key}");
        }
        for key in ["P.digest.L1", "P.digest.X.teams.L1", "S.teams.L1", "L1"] {
            assert!(!inside(key), "{key}");
        }
        assert_eq!(
            pending_destination_ranges(),
            [
                "RowKey ge 'P.' and RowKey lt 'P.digest.'".to_owned(),
                "RowKey ge 'P.digest/' and RowKey lt 'P/'".to_owned()
            ]
        );
    }

    #[test]
    fn consumers_round_trip() {
        for text in ["digest", "teams", "teams:sales", "hubspot"] {
            assert_eq!(Consumer::parse(text).unwrap().as_str(), text);
        }
        assert_eq!(Consumer::parse("bad.name"), None);
        let key = RecordKey::pending("2026-11-22", teams(), &lead());
        assert_eq!(
            key.in_state(RecordState::Dead).row_key(),
            "X.teams.L20261122T101500.123456Z-0011223344556677"
        );
    }
}
