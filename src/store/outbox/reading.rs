//! One reading of an outbox row: a record of one consumer, or a bundle of
//! a new lead's deliveries ([`super::bundle`]) — which gives the records it
//! becomes once unpacked, so that listing, backfill and `deliveries show`
//! read both alike and never miss a delivery still bundled.

use super::super::keys::ROW_KEY;
use super::bundle::{is_bundle, Bundle};
use super::row::{row_key_of, OutboxRow};
use serde_json::{Map, Value};

/// An outbox row, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// A record of one consumer, in any state.
    Own(Box<OutboxRow>),
    /// Several pending deliveries of one new lead.
    Bundle(Bundle),
}

impl Pending {
    /// The records it is: itself, or each bundled delivery as the pending
    /// record it becomes once unpacked.
    pub fn records(&self) -> Vec<OutboxRow> {
        match self {
            Self::Own(row) => vec![(**row).clone()],
            Self::Bundle(bundle) => bundle
                .deliveries
                .iter()
                .map(|bundled| bundle.unpacked_row(bundled))
                .collect(),
        }
    }
}

/// Reads `entity` as an outbox row; `None` for a row that is none (a lead,
/// a marker), or one that cannot be read (logged).
pub fn read(entity: &Map<String, Value>) -> Option<Pending> {
    let bundle = is_bundle(&row_key_of(entity));
    let read = if bundle {
        Bundle::from_entity(entity).map(Pending::Bundle)
    } else {
        OutboxRow::from_entity(entity).map(|row| Pending::Own(Box::new(row)))
    };
    if read.is_none() && (bundle || OutboxRow::is_outbox_entity(entity)) {
        tracing::warn!(row_key = ?entity.get(ROW_KEY), "an unreadable outbox record; skipped");
    }
    read
}

/// Every record `entities` hold, bundles read as their deliveries.
pub fn records_in(entities: &[Map<String, Value>]) -> impl Iterator<Item = OutboxRow> + '_ {
    entities
        .iter()
        .filter_map(read)
        .flat_map(|read| read.records())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DestinationName;
    use crate::store::outbox::{Bundled, Consumer, LeadRef, RecordKey, RecordState};
    use time::macros::datetime;

    fn lead() -> LeadRef {
        LeadRef {
            action: Some("PLT".into()),
            ..crate::store::testing::lead_ref()
        }
    }

    #[test]
    fn a_bundle_reads_as_the_records_it_becomes_and_a_record_as_itself() {
        let name = |n: &str| DestinationName::parse(n).unwrap();
        let bundle = Bundle {
            lead: lead(),
            enqueued_at: datetime!(2026-11-22 10:15 UTC),
            deliveries: vec![
                Bundled {
                    destination: name("webhook"),
                    claim: None,
                },
                Bundled {
                    destination: name("teams:sales"),
                    claim: None,
                },
            ],
            version: None,
        };
        let delivered = OutboxRow::pending(
            RecordKey {
                state: RecordState::Delivered,
                ..RecordKey::pending("2026-11-22", Consumer::Destination(name("email")), &lead())
            },
            lead(),
            datetime!(2026-11-22 10:15 UTC),
        );
        let entities = vec![
            bundle.to_entity(),
            delivered.to_entity(),
            Map::from_iter([("RowKey".to_owned(), Value::from("L20261122T1015"))]),
        ];
        let records: Vec<(String, RecordState)> = records_in(&entities)
            .map(|r| (r.key.consumer.to_string(), r.key.state))
            .collect();
        assert_eq!(
            records,
            [
                ("webhook".to_owned(), RecordState::Pending),
                ("teams:sales".to_owned(), RecordState::Pending),
                ("email".to_owned(), RecordState::Delivered),
            ]
        );
        assert!(matches!(read(&entities[0]), Some(Pending::Bundle(_))));
        assert!(matches!(read(&entities[1]), Some(Pending::Own(_))));
        assert_eq!(read(&entities[2]), None, "a lead row is no outbox record");
    }
}
