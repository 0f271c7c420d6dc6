//! A new lead's deliveries to several destinations, written as **one**
//! pending record, `P.*.<lead row key>`, in the lead's transaction.
//!
//! Azure bills a transaction per request, but the storage service's work
//! (and Azurite's, which serves one request at a time) grows with every
//! entity it holds: a lead with three destinations would otherwise write
//! six entities instead of four, and ingest would slow by as much. A
//! bundle is never claimed or retried in place. Whoever acts on it first
//! *unpacks* it: one transaction deletes it (on its ETag, so only one
//! instance ever does) and writes what each destination's record now is —
//! delivered, dead, or pending as `P.<destination>.<lead row key>`, as if
//! it had been written that way at ingest. A new lead's first attempts
//! unpack it with their outcomes ([`Deliveries::settle`]); the sweep
//! unpacks the bundles no first attempt holds — those of a burst, and those
//! of an instance that died before settling, once their claims expire.
//!
//! [`Deliveries::settle`]: super::Deliveries::settle

use super::super::digest_state::Version;
use super::super::entity::{datetime, put_datetime};
use super::super::keys::LeadId;
use super::record::{key_range, Consumer, LeadRef, Lease, RecordKey, RecordState};
use super::row::{self, OutboxRow};
use crate::domain::DestinationName;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The bundle's place in a row key, where a destination's name would be:
/// never a destination name, and inside the destinations' pending range
/// (`*` sorts before any letter).
const BUNDLE: &str = "*";
/// The column listing the bundled deliveries, as JSON.
const DELIVERIES: &str = "Deliveries";

/// Bundle only up to this many destinations: a bundle is unpacked in one
/// transaction (at most 100 operations: its delete, and two for each dead
/// destination).
pub const MAX_BUNDLED: usize = 32;

/// One destination's delivery inside a bundle: whether a first attempt
/// holds it, until when, and under which idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundled {
    pub destination: DestinationName,
    pub claim: Option<Lease>,
}

/// A lead's pending deliveries as one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub lead: LeadRef,
    pub enqueued_at: OffsetDateTime,
    pub deliveries: Vec<Bundled>,
    /// The row's ETag, once written or read.
    pub version: Option<Version>,
}

/// How a bundled delivery is kept in the `Deliveries` column.
#[derive(Serialize, Deserialize)]
struct Column {
    #[serde(rename = "d")]
    destination: String,
    #[serde(rename = "until", default, skip_serializing_if = "Option::is_none")]
    claimed_until: Option<String>,
    #[serde(rename = "key", default, skip_serializing_if = "Option::is_none")]
    claim_batch: Option<uuid::Uuid>,
}

impl Bundle {
    /// The row key of `lead`'s bundle.
    pub fn row_key_of(lead: &LeadRef) -> String {
        format!(
            "{}.{BUNDLE}.{}",
            RecordState::Pending.prefix(),
            lead.row_key
        )
    }

    pub fn row_key(&self) -> String {
        Self::row_key_of(&self.lead)
    }

    /// When every claim on it has run out (now, for one never claimed):
    /// until then a first attempt may still settle it.
    pub fn held_until(&self) -> Option<OffsetDateTime> {
        self.deliveries
            .iter()
            .filter_map(|d| d.claim.map(|lease| lease.until))
            .max()
    }

    /// The record `destination`'s delivery becomes once unpacked.
    pub fn record_key(&self, destination: &DestinationName) -> RecordKey {
        RecordKey::pending(
            &self.lead.partition,
            Consumer::Destination(destination.clone()),
            &self.lead,
        )
    }

    /// `bundled`'s record as unpacked untouched: pending, claimed as it
    /// was (an expired claim keeps its key for the retry).
    pub fn unpacked_row(&self, bundled: &Bundled) -> OutboxRow {
        let (claimed_until, claim_batch) = Lease::columns(bundled.claim);
        OutboxRow {
            claimed_until,
            claim_batch,
            ..OutboxRow::pending(
                self.record_key(&bundled.destination),
                self.lead.clone(),
                self.enqueued_at,
            )
        }
    }

    pub fn to_entity(&self) -> Map<String, Value> {
        let deliveries: Vec<Column> = self
            .deliveries
            .iter()
            .map(|d| Column {
                destination: d.destination.to_string(),
                claimed_until: d.claim.and_then(|lease| lease.until.format(&Rfc3339).ok()),
                claim_batch: d.claim.map(|lease| lease.batch),
            })
            .collect();
        let mut entity = Map::from_iter([
            (row::PARTITION_KEY.to_owned(), json!(self.lead.partition)),
            (row::ROW_KEY.to_owned(), json!(self.row_key())),
            (row::LEAD_ID.to_owned(), json!(self.lead.id.as_str())),
            (row::IS_TEST.to_owned(), json!(self.lead.is_test)),
            (
                DELIVERIES.to_owned(),
                json!(serde_json::to_string(&deliveries).unwrap_or_default()),
            ),
        ]);
        if let Some(offer) = &self.lead.offer {
            entity.insert(row::OFFER.into(), json!(offer));
        }
        if let Some(action) = &self.lead.action {
            entity.insert(row::ACTION.into(), json!(action));
        }
        if let Some(rating) = self.lead.rating {
            entity.insert(row::RATING.into(), json!(rating.as_str()));
        }
        put_datetime(&mut entity, row::ENQUEUED_AT, self.enqueued_at);
        entity
    }

    /// Reads a bundle back; `None` for a row that is not one.
    pub fn from_entity(entity: &Map<String, Value>) -> Option<Self> {
        let text = |name: &str| entity.get(name)?.as_str().map(str::to_owned);
        let partition = text(row::PARTITION_KEY)?;
        let row_key = text(row::ROW_KEY)?;
        let lead_row_key = row_key
            .strip_prefix(RecordState::Pending.prefix())?
            .strip_prefix(&format!(".{BUNDLE}."))?
            .to_owned();
        let columns: Vec<Column> = serde_json::from_str(&text(DELIVERIES)?).ok()?;
        let deliveries = columns
            .into_iter()
            .map(|c| {
                let claim = match (c.claimed_until, c.claim_batch) {
                    (Some(until), Some(batch)) => Some(Lease {
                        until: OffsetDateTime::parse(&until, &Rfc3339).ok()?,
                        batch,
                    }),
                    _ => None,
                };
                Some(Bundled {
                    destination: DestinationName::parse(&c.destination).ok()?,
                    claim,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            lead: LeadRef {
                partition: partition.clone(),
                row_key: lead_row_key,
                id: LeadId::parse(&text(row::LEAD_ID)?).ok()?,
                is_test: entity
                    .get(row::IS_TEST)
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                offer: text(row::OFFER),
                action: text(row::ACTION),
                rating: text(row::RATING)
                    .as_deref()
                    .and_then(crate::domain::Level::parse),
            },
            enqueued_at: datetime(entity, row::ENQUEUED_AT)?,
            deliveries,
            version: text(row::ETAG).map(Version::from_etag),
        })
    }
}

/// `RowKey ge 'P.*.' and RowKey lt 'P.*/'`: every bundle.
pub(super) fn bundle_range() -> String {
    let prefix = format!("{}.{BUNDLE}", RecordState::Pending.prefix());
    key_range(&format!("{prefix}."), &format!("{prefix}/"))
}

/// Whether `row_key` names a bundle (`P.*.…`); read for every outbox row,
/// so no string is built.
pub(super) fn is_bundle(row_key: &str) -> bool {
    row_key
        .strip_prefix(RecordState::Pending.prefix())
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_prefix(BUNDLE))
        .is_some_and(|rest| rest.starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn lead() -> LeadRef {
        LeadRef {
            offer: Some("Contoso Analytics".into()),
            action: Some("INS".into()),
            ..crate::store::testing::lead_ref()
        }
    }

    fn name(text: &str) -> DestinationName {
        DestinationName::parse(text).unwrap()
    }

    fn bundle() -> Bundle {
        Bundle {
            lead: lead(),
            enqueued_at: datetime!(2026-11-22 10:15:00.123456 UTC),
            deliveries: vec![
                Bundled {
                    destination: name("webhook"),
                    claim: Some(Lease {
                        until: datetime!(2026-11-22 10:16 UTC),
                        batch: uuid::Uuid::from_u128(1),
                    }),
                },
                Bundled {
                    destination: name("teams:sales"),
                    claim: None,
                },
            ],
            version: None,
        }
    }

    #[test]
    fn a_bundle_round_trips_and_sits_in_the_destinations_pending_range() {
        let entity = row::with_etag(bundle().to_entity(), "W/\"x\"");
        let key = row::row_key_of(&entity);
        assert_eq!(key, "P.*.L20261122T101500.123456Z-0011223344556677");
        assert!(is_bundle(&key));
        assert!(("P.".."P.digest.").contains(&key.as_str()));
        assert!(("P.*.".."P.*/").contains(&key.as_str()));
        assert_eq!(
            bundle_range(),
            "RowKey ge 'P.*.' and RowKey lt 'P.*/'".to_owned()
        );
        let back = Bundle::from_entity(&entity).unwrap();
        assert_eq!(back.version, Some(Version::from_etag("W/\"x\"")));
        assert_eq!(
            Bundle {
                version: None,
                ..back
            },
            bundle()
        );
        // Not a record of one consumer.
        assert_eq!(OutboxRow::from_entity(&entity), None);
        for other in ["P.webhook.L1", "P.digest.L1", "S.webhook.L1", "L1"] {
            assert!(!is_bundle(other), "{other}");
        }
    }

    #[test]
    fn unpacked_records_are_the_ones_ingest_would_have_written() {
        let bundle = bundle();
        let webhook = bundle.unpacked_row(&bundle.deliveries[0]);
        assert_eq!(
            webhook.key.row_key(),
            "P.webhook.L20261122T101500.123456Z-0011223344556677"
        );
        assert_eq!(webhook.claim_batch, Some(uuid::Uuid::from_u128(1)));
        assert_eq!(webhook.claimed_until, Some(datetime!(2026-11-22 10:16 UTC)));
        assert_eq!(webhook.lead, lead());
        let teams = bundle.unpacked_row(&bundle.deliveries[1]);
        assert_eq!(teams.claimed_until, None);
        assert_eq!(teams.enqueued_at, bundle.enqueued_at);
        assert_eq!(bundle.held_until(), Some(datetime!(2026-11-22 10:16 UTC)));
    }
}
