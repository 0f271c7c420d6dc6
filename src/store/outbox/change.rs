//! What an attempt means for a pending delivery ([`RecordChange`]), as the
//! rows it leaves and the operations that write them. Pure: settling a
//! record of its own and unpacking a bundle with its first outcomes write
//! a change the same way, and the tests below say what each change
//! becomes.

use super::super::digest_state::Version;
use super::super::transaction::Op;
use super::delivery::DeliveryItem;
use super::record::RecordState;
use super::row::{release_change, OutboxRow};
use time::OffsetDateTime;

/// What an attempt means for a pending delivery, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordChange {
    /// It becomes a delivered record.
    Delivered { status: String, at: OffsetDateTime },
    /// It becomes a dead record, and a dead letter for the digest.
    Dead {
        status: String,
        error: String,
        at: OffsetDateTime,
    },
    /// Released, to be tried again at `next`. With `keep_batch` (the
    /// receiver may have acted on it) the retry goes out in the same
    /// batch, under the same idempotency key.
    Retry {
        next: OffsetDateTime,
        status: String,
        error: String,
        keep_batch: bool,
    },
    /// Released untried, due at `next` (the hour's email budget was spent).
    Wait { next: OffsetDateTime },
}

/// Where the delivery a change is about is kept when it is written.
pub enum Place<'a> {
    /// A record of its own, at the item's version.
    Record(&'a DeliveryItem),
    /// Still in its lead's bundle: this is the record it becomes, written
    /// new in the transaction that removes the bundle.
    Bundled(&'a OutboxRow),
}

impl RecordChange {
    /// The rows `row` becomes once the change is written: delivered; dead
    /// with the digest's dead letter; or pending again, released for the
    /// next attempt.
    pub fn rows_after(&self, row: &OutboxRow) -> Vec<OutboxRow> {
        let released = |next: OffsetDateTime| OutboxRow {
            next_attempt_at: Some(next),
            // Released: the claim ends where it was recorded.
            claimed_until: Some(OffsetDateTime::UNIX_EPOCH),
            claim_batch: None,
            version: None,
            ..row.clone()
        };
        let attempted = row.attempts + 1;
        match self {
            Self::Delivered { status, at } => vec![OutboxRow {
                attempts: attempted,
                last_status: Some(status.clone()),
                ..row.settled(RecordState::Delivered, *at)
            }],
            Self::Dead { status, error, at } => vec![
                OutboxRow {
                    attempts: attempted,
                    last_status: Some(status.clone()),
                    last_error: Some(error.clone()),
                    ..row.settled(RecordState::Dead, *at)
                },
                row.dead_letter(status, error, *at),
            ],
            Self::Retry {
                next,
                status,
                error,
                keep_batch,
            } => vec![OutboxRow {
                attempts: attempted,
                last_status: Some(status.clone()),
                last_error: Some(error.clone()),
                claim_batch: row.claim_batch.filter(|_| *keep_batch),
                ..released(*next)
            }],
            Self::Wait { next } => vec![released(*next)],
        }
    }

    /// The operations that write the change, in order. The first is the
    /// delivery's own record: when it stays pending, that operation's
    /// answer is its new version.
    pub fn writes(&self, place: Place<'_>) -> Vec<Op> {
        match place {
            Place::Bundled(row) => self
                .rows_after(row)
                .into_iter()
                .map(|row| {
                    // A new pending record must not exist yet; a settled one
                    // (or a dead letter) may be written again by a retry.
                    if row.key.state == RecordState::Pending && row.dead_letter.is_none() {
                        Op::Insert(row.to_entity())
                    } else {
                        Op::Upsert(row.to_entity())
                    }
                })
                .collect(),
            Place::Record(item) => {
                let row_key = item.key.row_key();
                let if_match = Some(item.version.clone());
                // A release is a merge of the columns it changes: what the
                // item does not carry (the last error, before a wait) stays.
                let merge = |columns| {
                    vec![Op::Merge {
                        row_key: row_key.clone(),
                        columns,
                        if_match: if_match.clone(),
                    }]
                };
                match self {
                    Self::Retry {
                        next,
                        status,
                        error,
                        keep_batch,
                    } => merge(release_change(
                        item.attempts + 1,
                        *next,
                        Some((status, error)),
                        *keep_batch,
                    )),
                    Self::Wait { next } => merge(release_change(item.attempts, *next, None, false)),
                    Self::Delivered { .. } | Self::Dead { .. } => {
                        let mut ops = vec![Op::Delete {
                            row_key: row_key.clone(),
                            if_match: if_match.clone(),
                        }];
                        ops.extend(
                            self.rows_after(&item.row())
                                .into_iter()
                                .map(|row| Op::Upsert(row.to_entity())),
                        );
                        ops
                    }
                }
            }
        }
    }

    /// `item` as the change leaves it, when it stays pending, at `version`
    /// (for the next attempt to claim without reading it back).
    pub fn pending_after(&self, item: &DeliveryItem, version: Version) -> Option<DeliveryItem> {
        self.pending_from(&item.row(), version)
    }

    /// As [`RecordChange::pending_after`], from the record `row` was.
    pub fn pending_from(&self, row: &OutboxRow, version: Version) -> Option<DeliveryItem> {
        let row = self.rows_after(row).into_iter().next()?;
        (row.key.state == RecordState::Pending).then_some(())?;
        DeliveryItem::from_row(OutboxRow {
            version: Some(version),
            ..row
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DestinationName;
    use crate::store::outbox::{Consumer, RecordKey};
    use crate::store::testing::lead_ref;
    use time::macros::datetime;

    const AT: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);

    fn item(attempts: u32) -> DeliveryItem {
        let lead = lead_ref();
        let key = RecordKey::pending(
            &lead.partition,
            Consumer::Destination(DestinationName::parse("teams").expect("name")),
            &lead,
        );
        DeliveryItem {
            attempts,
            claimed_until: Some(AT),
            claim_batch: Some(uuid::Uuid::from_u128(7)),
            ..DeliveryItem::from_row(OutboxRow {
                version: Some(Version::from_etag("v1")),
                ..OutboxRow::pending(key, lead, AT)
            })
            .expect("a pending delivery")
        }
    }

    fn retry(keep_batch: bool) -> RecordChange {
        RecordChange::Retry {
            next: AT + time::Duration::seconds(10),
            status: "503".into(),
            error: "busy".into(),
            keep_batch,
        }
    }

    fn dead() -> RecordChange {
        RecordChange::Dead {
            status: "400".into(),
            error: "no".into(),
            at: AT,
        }
    }

    fn row_keys(ops: &[Op]) -> Vec<String> {
        ops.iter()
            .map(|op| match op {
                Op::Insert(e) | Op::Upsert(e) => format!("write {}", e["RowKey"]),
                Op::Merge { row_key, .. } => format!("merge {row_key}"),
                Op::Delete { row_key, .. } => format!("delete {row_key}"),
            })
            .collect()
    }

    #[test]
    fn delivered_and_dead_replace_the_record_on_its_version() {
        let item = item(2);
        let delivered = RecordChange::Delivered {
            status: "200".into(),
            at: AT,
        };
        let ops = delivered.writes(Place::Record(&item));
        let key = item.key.lead_row_key.clone();
        assert_eq!(
            row_keys(&ops),
            [
                format!("delete P.teams.{key}"),
                format!("write \"S.teams.{key}\"")
            ]
        );
        assert!(matches!(&ops[0], Op::Delete { if_match: Some(v), .. } if v.as_str() == "v1"));
        let written = ops[1].entity().expect("an entity");
        assert_eq!(written["Attempts"], 3);
        assert!(
            !written.contains_key("ClaimBatch"),
            "a settled record holds no claim"
        );

        let ops = dead().writes(Place::Record(&item));
        assert_eq!(ops.len(), 3, "the record, and the digest's dead letter");
        assert_eq!(row_keys(&ops)[1], format!("write \"X.teams.{key}\""));
        let letter = ops[2].entity().expect("the dead letter");
        assert_eq!(letter["DeadDestination"], "teams");
        assert_eq!(letter["DeadStatus"], "400");
    }

    #[test]
    fn a_retry_is_a_merge_that_keeps_the_batch_only_when_asked() {
        let item = item(1);
        for keep in [false, true] {
            let ops = retry(keep).writes(Place::Record(&item));
            assert_eq!(ops.len(), 1);
            let Op::Merge {
                columns, if_match, ..
            } = &ops[0]
            else {
                panic!("a merge: {ops:?}");
            };
            assert_eq!(if_match.as_ref().map(Version::as_str), Some("v1"));
            assert_eq!(columns["Attempts"], 2);
            assert_eq!(columns.contains_key("ClaimBatch"), !keep);
            let after = retry(keep)
                .pending_after(&item, Version::from_etag("v2"))
                .expect("still pending");
            assert_eq!(after.attempts, 2);
            assert_eq!(after.claim_batch.is_some(), keep);
            assert_eq!(after.claimed_until, Some(OffsetDateTime::UNIX_EPOCH));
            assert_eq!(after.version, Version::from_etag("v2"));
        }
    }

    #[test]
    fn a_wait_counts_no_attempt_and_a_settled_change_leaves_nothing_pending() {
        let item = item(1);
        let wait = RecordChange::Wait { next: AT };
        let Op::Merge { columns, .. } = &wait.writes(Place::Record(&item))[0] else {
            panic!("a merge");
        };
        assert!(!columns.contains_key("Attempts"), "{columns:?}");
        let after = wait
            .pending_after(&item, Version::from_etag("v2"))
            .expect("pending");
        assert_eq!((after.attempts, after.next_attempt_at), (1, Some(AT)));
        assert_eq!(dead().pending_after(&item, Version::from_etag("v2")), None);
    }

    #[test]
    fn an_unpacked_delivery_is_inserted_new_and_its_settled_rows_upserted() {
        let row = item(0).row();
        let ops = retry(true).writes(Place::Bundled(&row));
        assert!(matches!(&ops[..], [Op::Insert(e)] if e["Attempts"] == 1));
        let ops = dead().writes(Place::Bundled(&row));
        assert!(
            matches!(&ops[..], [Op::Upsert(_), Op::Upsert(_)]),
            "{ops:?}"
        );
        assert_eq!(ops[0].entity().map(|e| &e["Attempts"]), Some(&1.into()));
    }
}
