//! Email per lead (`NOTIFY_TO`), through the digest's transport from
//! `DIGEST_FROM`. One email per lead in normal traffic; the rate is capped
//! (`NOTIFY_MAX_PER_HOUR`, ACS's Azure-managed domains allow 10 an hour):
//! once the cap is near, the leads waiting are combined into the next email
//! instead of being dropped or failed. The body is the digest's rendering
//! (auto-escaped HTML and plain text); no customer text reaches a header.

use super::attempt::Attempt;
use crate::digest::render::Digest;
use crate::domain::{EmailAddress, Recipients};
use crate::email::{Email, Mailer, SendError};
use crate::store::StoredLead;

pub const NAME: &str = "email";

#[derive(Debug)]
pub struct NotifyDestination {
    pub(super) mailer: Mailer,
    pub(super) to: Recipients,
    pub(super) from: EmailAddress,
    pub(super) max_per_hour: u32,
}

/// How the waiting leads are sent, given the sends left this hour.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Leads sent one email each.
    pub singles: usize,
    /// Leads combined into one more email after those.
    pub combined: usize,
}

/// One email each while the hour's budget allows; the last send left
/// combines everything still waiting. Nothing is sent with no budget left.
pub fn plan(waiting: usize, sends_left: usize) -> Plan {
    if waiting <= sends_left {
        Plan {
            singles: waiting,
            combined: 0,
        }
    } else if sends_left == 0 {
        Plan {
            singles: 0,
            combined: 0,
        }
    } else {
        Plan {
            singles: sends_left - 1,
            combined: waiting - (sends_left - 1),
        }
    }
}

impl NotifyDestination {
    /// The longest one send takes, whatever the provider does.
    pub fn send_budget(&self) -> std::time::Duration {
        self.mailer.send_budget()
    }

    /// Sends one email of `leads` whose idempotency key (`Message-ID`,
    /// `Operation-Id`) is `batch`.
    pub async fn deliver(&self, leads: &[StoredLead], batch: uuid::Uuid) -> Attempt {
        let digest = Digest::of(leads);
        let email = Email {
            from: self.from.clone(),
            to: self.to.clone(),
            subject: digest.subject(),
            text: digest.text(),
            html: digest.html(),
            idempotency_key: batch,
        };
        match self.mailer.send(&email).await {
            Ok(receipt) => Attempt::Delivered {
                status: format!("accepted {}", receipt.message_id),
            },
            Err(SendError::Rejected(reason)) => Attempt::Dead {
                status: "rejected".into(),
                error: reason,
            },
            Err(error @ SendError::Unavailable(_)) => Attempt::Retry {
                status: "unavailable".into(),
                error: error.to_string(),
                after: None,
                maybe_done: false,
            },
            Err(error @ SendError::Unknown(_)) => Attempt::Retry {
                status: "outcome unknown".into(),
                error: error.to_string(),
                after: None,
                maybe_done: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_email_each_until_the_last_send_of_the_hour_combines_the_rest() {
        assert_eq!(
            plan(3, 10),
            Plan {
                singles: 3,
                combined: 0
            }
        );
        assert_eq!(
            plan(10, 10),
            Plan {
                singles: 10,
                combined: 0
            }
        );
        assert_eq!(
            plan(25, 10),
            Plan {
                singles: 9,
                combined: 16
            }
        );
        assert_eq!(
            plan(25, 1),
            Plan {
                singles: 0,
                combined: 25
            }
        );
        assert_eq!(
            plan(5, 0),
            Plan {
                singles: 0,
                combined: 0
            }
        );
        assert_eq!(
            plan(0, 0),
            Plan {
                singles: 0,
                combined: 0
            }
        );
    }
}
