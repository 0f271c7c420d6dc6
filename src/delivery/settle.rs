//! What an attempt's outcome means for its record: a pure function of the
//! record, the outcome and the time, so every case is a unit test.
//!
//! Delivered → a delivered record. Dead → a dead record and a dead letter.
//! Failed for now → another attempt after the receiver's `Retry-After` or
//! the backoff — unless that attempt would come after the maximum age,
//! when it is dead instead, saying how many attempts were made. An outcome
//! that is unknown (the receiver may have acted) keeps the batch, so the
//! retry carries the same idempotency key.

use super::outcome::{backoff, Outcome};
use super::redact::Redactor;
use crate::store::{DeliveryItem, RecordChange};
use std::time::Duration;
use time::OffsetDateTime;

/// The change to write for `item` after `outcome` at `now`, with every
/// text the receiver sent back cleared of credentials.
pub fn settle(
    item: &DeliveryItem,
    outcome: &Outcome,
    now: OffsetDateTime,
    max_age: Duration,
    redactor: &Redactor,
) -> RecordChange {
    match outcome {
        Outcome::Delivered { status } => RecordChange::Delivered {
            status: status.to_string(),
            at: now,
        },
        Outcome::Dead { status, error } => RecordChange::Dead {
            status: status.to_string(),
            error: redactor.redact(error),
            at: now,
        },
        Outcome::Retry {
            status,
            error,
            after,
            maybe_done,
        } => {
            let failures = item.attempts + 1;
            let next = now + after.unwrap_or_else(|| backoff(failures));
            if next - item.enqueued_at > max_age {
                let hours = max_age.as_secs() / 3_600;
                RecordChange::Dead {
                    status: status.to_string(),
                    error: redactor.redact(&format!(
                        "gave up after {failures} attempts over {hours} h; last: {status} {error}"
                    )),
                    at: now,
                }
            } else {
                RecordChange::Retry {
                    next,
                    status: status.to_string(),
                    error: redactor.redact(error),
                    keep_batch: *maybe_done,
                }
            }
        }
    }
}

/// A record given up on without an attempt (its destination is gone, or
/// its lead).
pub fn give_up(outcome_status: &str, reason: &str, now: OffsetDateTime) -> RecordChange {
    RecordChange::Dead {
        status: outcome_status.to_owned(),
        error: reason.to_owned(),
        at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::super::outcome::Status;
    use super::*;
    use crate::domain::{DestinationName, Secret};
    use crate::store::{Consumer, RecordKey, Version};
    use time::macros::datetime;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn item(attempts: u32, enqueued_at: OffsetDateTime) -> DeliveryItem {
        let lead = crate::store::testing::lead_ref();
        let destination = DestinationName::parse("webhook").unwrap();
        DeliveryItem {
            key: RecordKey::pending(
                "2026-11-22",
                Consumer::Destination(destination.clone()),
                &lead,
            ),
            destination,
            lead,
            enqueued_at,
            attempts,
            next_attempt_at: None,
            claimed_until: None,
            claim_batch: None,
            version: Version::from_etag("W/\"1\""),
            bundle: None,
        }
    }

    fn retry(after: Option<Duration>, maybe_done: bool) -> Outcome {
        Outcome::Retry {
            status: Status::Http(503),
            error: "busy".into(),
            after,
            maybe_done,
        }
    }

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00 UTC);

    fn none() -> Redactor {
        Redactor::default()
    }

    #[test]
    fn delivered_is_a_delivered_record() {
        let change = settle(
            &item(0, NOW),
            &Outcome::Delivered {
                status: Status::Http(204),
            },
            NOW,
            DAY,
            &none(),
        );
        assert_eq!(
            change,
            RecordChange::Delivered {
                status: "HTTP 204".into(),
                at: NOW
            }
        );
    }

    #[test]
    fn dead_is_dead_at_once() {
        let change = settle(
            &item(2, NOW),
            &Outcome::dead(Status::Http(400), "bad field"),
            NOW,
            DAY,
            &none(),
        );
        assert_eq!(
            change,
            RecordChange::Dead {
                status: "HTTP 400".into(),
                error: "bad field".into(),
                at: NOW
            }
        );
    }

    #[test]
    fn a_failure_backs_off_and_a_retry_after_wins() {
        let backed_off = settle(&item(0, NOW), &retry(None, false), NOW, DAY, &none());
        assert_eq!(
            backed_off,
            RecordChange::Retry {
                next: NOW + Duration::from_secs(10),
                status: "HTTP 503".into(),
                error: "busy".into(),
                keep_batch: false
            }
        );
        let third = settle(&item(2, NOW), &retry(None, false), NOW, DAY, &none());
        assert!(
            matches!(third, RecordChange::Retry { next, .. } if next == NOW + Duration::from_secs(40))
        );
        let told = settle(
            &item(0, NOW),
            &retry(Some(Duration::from_secs(120)), false),
            NOW,
            DAY,
            &none(),
        );
        assert!(
            matches!(told, RecordChange::Retry { next, .. } if next == NOW + Duration::from_secs(120))
        );
    }

    #[test]
    fn an_unknown_outcome_keeps_its_batch() {
        let change = settle(&item(0, NOW), &retry(None, true), NOW, DAY, &none());
        assert!(matches!(
            change,
            RecordChange::Retry {
                keep_batch: true,
                ..
            }
        ));
    }

    #[test]
    fn a_retry_past_the_maximum_age_is_dead_with_its_history() {
        let enqueued = NOW - DAY + Duration::from_secs(5);
        let change = settle(&item(6, enqueued), &retry(None, false), NOW, DAY, &none());
        let RecordChange::Dead { status, error, .. } = change else {
            panic!("dead past the maximum age: {change:?}");
        };
        assert_eq!(status, "HTTP 503");
        assert_eq!(
            error,
            "gave up after 7 attempts over 24 h; last: HTTP 503 busy"
        );
        // Just inside the age, it is still retried.
        let young = NOW - DAY + Duration::from_secs(3600);
        assert!(matches!(
            settle(&item(6, young), &retry(None, false), NOW, DAY, &none()),
            RecordChange::Retry { .. }
        ));
    }

    #[test]
    fn what_the_receiver_echoed_is_stored_without_our_secrets() {
        let redactor = Redactor::new([&Secret::new("pat-na1-0123456789")]);
        let echoed = Outcome::dead(
            Status::Http(400),
            r#"{"headers":{"authorization":"Bearer pat-na1-0123456789"},"token":"pat-na1-0123456789"}"#,
        );
        let RecordChange::Dead { error, .. } = settle(&item(0, NOW), &echoed, NOW, DAY, &redactor)
        else {
            panic!("dead");
        };
        assert!(!error.contains("0123456789"), "{error}");
    }
}
