//! An entity-group transaction as data: the operations on one partition
//! ([`Op`]), sent together by [`commit`], whose answers — one per
//! operation, inside a `202 Accepted` — come back as one result: the new
//! versions in the operations' order, or the first refusal as a
//! [`StoreError`] with its status (so a caller says what a 404 or a 412
//! means for it, and nothing else decodes a batch response).

use super::digest_state::Version;
use super::keys::ROW_KEY;
use super::{retrying, Failure, StoreError};
use azure_core::{Etag, StatusCode};
use azure_data_tables::operations::TransactionBuilder;
use azure_data_tables::prelude::*;
use serde_json::{Map, Value};
use std::borrow::Borrow;

type Entity = Map<String, Value>;

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Fails (409) if the row exists.
    Insert(Entity),
    /// Insert or replace, by the entity's own row key.
    Upsert(Entity),
    /// These columns set, the others kept; on `if_match` when given.
    Merge {
        row_key: String,
        columns: Entity,
        if_match: Option<Version>,
    },
    /// Removed; at any version when `if_match` is `None`.
    Delete {
        row_key: String,
        if_match: Option<Version>,
    },
}

impl Op {
    fn add_to(&self, batch: TransactionBuilder) -> azure_core::Result<TransactionBuilder> {
        match self {
            Self::Insert(entity) => batch.insert(entity),
            Self::Upsert(entity) => batch.insert_or_replace(row_key_of(entity), entity),
            Self::Merge {
                row_key,
                columns,
                if_match,
            } => batch.merge(row_key.clone(), columns, if_match.as_ref().map(condition)),
            Self::Delete { row_key, if_match } => {
                batch.delete(row_key.clone(), if_match.as_ref().map(condition))
            }
        }
    }

    /// The entity it writes whole, if it writes one (what tests look at).
    #[cfg(test)]
    pub fn entity(&self) -> Option<&Entity> {
        match self {
            Self::Insert(entity) | Self::Upsert(entity) => Some(entity),
            Self::Merge { .. } | Self::Delete { .. } => None,
        }
    }
}

/// The condition that makes a write fail (412) if the row changed since
/// `version` was read or written.
pub fn condition(version: &Version) -> IfMatchCondition {
    IfMatchCondition::Etag(Etag::from(version.as_str()))
}

fn row_key_of(entity: &Entity) -> String {
    entity
        .get(ROW_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Sends `ops` (owned or borrowed) as one transaction on `partition` (retried as one while
/// storage is unavailable): each operation's new version, in order
/// (`None` for a delete), or the first operation refused, as
/// [`StoreError::Rejected`] naming `operation` and its status — none of
/// the operations then took effect.
pub async fn commit<O: Borrow<Op>>(
    partition: &PartitionKeyClient,
    operation: &'static str,
    ops: &[O],
) -> Result<Vec<Option<Version>>, StoreError> {
    let response = retrying(operation, || async {
        let mut batch = partition.transaction();
        for op in ops {
            batch = op.borrow().add_to(batch)?;
        }
        batch.await
    })
    .await?;
    versions(
        operation,
        response
            .operation_responses
            .iter()
            .map(|answer| (answer.status_code, answer.etag.as_ref())),
    )
}

/// A transaction's answers as [`commit`] gives them.
/// (The SDK does not name the type of an operation's answer: its status
/// and ETag are what matter.)
fn versions<'a>(
    operation: &'static str,
    answers: impl IntoIterator<Item = (StatusCode, Option<&'a Etag>)>,
) -> Result<Vec<Option<Version>>, StoreError> {
    answers
        .into_iter()
        .map(|(status, etag)| {
            if !status.is_success() {
                return Err(StoreError::Rejected {
                    operation,
                    failure: Failure::answered(status),
                });
            }
            Ok(etag.map(|etag| Version::from_etag(etag.to_string())))
        })
        .collect()
}

impl StoreError {
    /// This error as [`StoreError::Conflict`] when storage answered one of
    /// `statuses` (another writer changed or removed the row first).
    pub fn conflict_on(self, statuses: &[StatusCode]) -> Self {
        match self.status() {
            Some(status) if statuses.contains(&status) => Self::Conflict,
            _ => self,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(status: StatusCode, etag: Option<&str>) -> (StatusCode, Option<Etag>) {
        (status, etag.map(|e| Etag::from(e.to_owned())))
    }

    fn read(
        operation: &'static str,
        answers: &[(StatusCode, Option<Etag>)],
    ) -> Result<Vec<Option<Version>>, StoreError> {
        versions(operation, answers.iter().map(|(s, e)| (*s, e.as_ref())))
    }

    #[test]
    fn answers_are_versions_in_the_operations_order() {
        let got = read(
            "test",
            &[
                answer(StatusCode::NoContent, None),
                answer(StatusCode::Created, Some("W/\"1\"")),
                answer(StatusCode::NoContent, Some("W/\"2\"")),
            ],
        )
        .expect("all succeeded");
        assert_eq!(
            got,
            vec![
                None,
                Some(Version::from_etag("W/\"1\"")),
                Some(Version::from_etag("W/\"2\"")),
            ]
        );
    }

    #[test]
    fn the_first_refusal_is_the_error_and_says_its_status() {
        let error = read(
            "record deliveries",
            &[
                answer(StatusCode::PreconditionFailed, None),
                answer(StatusCode::Created, Some("W/\"1\"")),
            ],
        )
        .expect_err("refused");
        assert!(error.is_status(StatusCode::PreconditionFailed));
        assert!(error.to_string().contains("record deliveries"), "{error}");
        let conflict = error.conflict_on(&[StatusCode::PreconditionFailed]);
        assert!(matches!(conflict, StoreError::Conflict));
    }

    #[test]
    fn an_upsert_writes_under_its_own_row_key() {
        let entity = Map::from_iter([("RowKey".to_owned(), json!("P.teams.x"))]);
        assert_eq!(row_key_of(&entity), "P.teams.x");
        assert_eq!(Op::Upsert(entity.clone()).entity(), Some(&entity));
        let delete = Op::Delete {
            row_key: "P.teams.x".into(),
            if_match: None,
        };
        assert_eq!(delete.entity(), None);
    }
}
