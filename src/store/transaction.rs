//! An entity-group transaction as data: the operations on one partition
//! ([`Op`]), sent together by [`commit`], whose answers — one per
//! operation, inside a `202 Accepted` — come back as one result: the new
//! versions in the operations' order, or the first refusal as a
//! [`StoreError`] with its status (so a caller says what a 404 or a 412
//! means for it, and nothing else decodes a batch response).

use super::batch::{Answer, Batches, Request};
use super::digest_state::Version;
use super::keys::ROW_KEY;
use super::{retrying, Failure, StoreError};
use azure_core::StatusCode;
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
    fn request(&self) -> Request<'_> {
        match self {
            Self::Insert(entity) => Request::Insert(entity),
            Self::Upsert(entity) => Request::Upsert {
                row_key: row_key_of(entity),
                entity,
            },
            Self::Merge {
                row_key,
                columns,
                if_match,
            } => Request::Merge {
                row_key,
                columns,
                if_match: if_match.as_ref().map(Version::as_str),
            },
            Self::Delete { row_key, if_match } => Request::Delete {
                row_key,
                if_match: if_match.as_ref().map(Version::as_str),
            },
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

fn row_key_of(entity: &Entity) -> &str {
    entity
        .get(ROW_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Where a transaction is written: one partition of one table.
#[derive(Clone, Copy)]
pub struct Partition<'a> {
    pub(super) batches: &'a Batches,
    pub(super) table: &'a str,
    pub(super) key: &'a str,
}

/// Sends `ops` (owned or borrowed) as one transaction on `partition`
/// (retried as one while storage is unavailable): each operation's new
/// version, in order (`None` for a delete), or the first operation
/// refused, as [`StoreError::Rejected`] naming `operation` and its status
/// and code — none of the operations then took effect.
pub async fn commit<O: Borrow<Op>>(
    partition: Partition<'_>,
    operation: &'static str,
    ops: &[O],
) -> Result<Vec<Option<Version>>, StoreError> {
    let answers = retrying(operation, || {
        partition.batches.send(
            partition.table,
            partition.key,
            ops.iter().map(|op| op.borrow().request()),
        )
    })
    .await?;
    versions(operation, ops.len(), answers)
}

/// A transaction's answers as [`commit`] gives them: success only when
/// every one of the `sent` operations answered it.
fn versions(
    operation: &'static str,
    sent: usize,
    answers: Vec<Answer>,
) -> Result<Vec<Option<Version>>, StoreError> {
    if let Some(refused) = answers.iter().find(|a| !a.status.is_success()) {
        return Err(StoreError::Rejected {
            operation,
            failure: Failure::answered(refused.status, refused.code.clone()),
        });
    }
    if answers.len() != sent {
        // Not what the service documents: say so rather than guess.
        return Err(StoreError::Rejected {
            operation,
            failure: Failure::unreadable(),
        });
    }
    Ok(answers
        .into_iter()
        .map(|answer| answer.etag.map(Version::from_etag))
        .collect())
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

    fn answer(status: StatusCode, etag: Option<&str>) -> Answer {
        Answer {
            status,
            etag: etag.map(str::to_owned),
            code: None,
        }
    }

    #[test]
    fn answers_are_versions_in_the_operations_order() {
        let got = versions(
            "test",
            3,
            vec![
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
    fn the_refusal_is_the_error_and_says_its_status_and_code() {
        let mut refused = answer(StatusCode::PreconditionFailed, None);
        refused.code = Some("UpdateConditionNotSatisfied".into());
        let error = versions("record deliveries", 2, vec![refused]).expect_err("refused");
        assert!(error.is_status(StatusCode::PreconditionFailed));
        let text = error.to_string();
        assert!(text.contains("record deliveries"), "{text}");
        assert!(
            text.contains("HTTP 412 UpdateConditionNotSatisfied"),
            "{text}"
        );
        let conflict = error.conflict_on(&[StatusCode::PreconditionFailed]);
        assert!(matches!(conflict, StoreError::Conflict));
    }

    #[test]
    fn fewer_answers_than_operations_is_no_success() {
        let error = versions(
            "save a lead",
            3,
            vec![answer(StatusCode::NoContent, Some("1"))],
        )
        .expect_err("two operations unanswered");
        assert!(error.to_string().contains("could not be read"), "{error}");
        assert_eq!(error.status(), None);
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
