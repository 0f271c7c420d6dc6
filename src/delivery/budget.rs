//! The hourly cap of a destination that has one: the per-lead email's
//! share of its sending domain's budget (ACS's Azure-managed domains send
//! 10 emails an hour, whoever sends them), shared by every instance
//! through one row per domain in storage.
//!
//! A send is taken only by an attempt that holds its records and is about
//! to send — never before a claim that could be lost — and the hour's last
//! send is kept for the sweep, which combines everything still waiting
//! into it: a burst costs the hour's sends, never more, and no lead waits
//! longer than the hour. Every destination of one domain shares the row's
//! last known version, so taking a send is one conditional write while
//! this instance is the only writer (a stale copy can only overstate what
//! is left, so "none left" read from it is true).

use super::destination::HourlyCap;
use crate::store::rate::SendLog;
use crate::store::{LeadStore, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// The cap's window.
pub const HOUR: Duration = Duration::from_secs(3_600);
/// Conditional writes lost to other instances before giving up for now.
const TRIES: usize = 5;

/// How the waiting leads are sent, given the sends left this hour.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// Leads sent one email each.
    pub singles: usize,
    /// Leads combined into one more send after those.
    pub combined: usize,
}

/// One send each while the hour's budget allows; the last send left
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

/// Sends `sender` may make at `now` under `cap`: what the whole budget
/// has left (less one kept for the reserved sender while it has not sent
/// this hour), and no more than the sender's own cap leaves.
pub fn sends_left(cap: &HourlyCap, sender: &str, log: &SendLog, now: OffsetDateTime) -> usize {
    let reserved = cap
        .reserved_for
        .filter(|other| log.used_by(other, HOUR, now) == 0)
        .map_or(0, |_| 1);
    let shared = (cap.budget_limit as usize)
        .saturating_sub(log.used(HOUR, now))
        .saturating_sub(reserved);
    match cap.own_limit {
        Some(own) => shared.min((own as usize).saturating_sub(log.used_by(sender, HOUR, now))),
        None => shared,
    }
}

/// One budget's row as this instance last knew it, shared by every
/// destination that sends under it.
#[derive(Debug)]
struct BudgetRow {
    name: String,
    known: Mutex<Option<SendLog>>,
}

/// One destination's hourly cap, counted in its budget's row.
#[derive(Debug)]
pub struct HourlyBudget {
    row: Arc<BudgetRow>,
    cap: HourlyCap,
    /// The destination's name: its own sends in the row.
    sender: String,
}

/// The hourly budgets of `caps` (destination name, its cap), those of one
/// budget sharing its row.
pub fn budgets<K: Ord + Clone>(
    caps: impl IntoIterator<Item = (K, String, HourlyCap)>,
) -> BTreeMap<K, HourlyBudget> {
    let mut rows: BTreeMap<String, Arc<BudgetRow>> = BTreeMap::new();
    caps.into_iter()
        .map(|(key, sender, cap)| {
            let row = rows
                .entry(cap.budget.clone())
                .or_insert_with(|| {
                    Arc::new(BudgetRow {
                        name: cap.budget.clone(),
                        known: Mutex::new(None),
                    })
                })
                .clone();
            (key, HourlyBudget { row, cap, sender })
        })
        .collect()
}

impl HourlyBudget {
    /// Sends left at `now`, as stored (read afresh).
    pub async fn left(&self, store: &LeadStore, now: OffsetDateTime) -> Result<usize, StoreError> {
        let log = store.send_log(&self.row.name).await?;
        let left = sends_left(&self.cap, &self.sender, &log, now);
        *self.row.known.lock().await = Some(log);
        Ok(left)
    }

    /// When a send is next free, as last known.
    pub async fn next_free_at(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.row
            .known
            .lock()
            .await
            .as_ref()
            .and_then(|log| log.next_free_at(HOUR, now))
    }

    /// Takes one send at `now` if more than `keep` are left: `false` when
    /// not. A first attempt keeps one back (the hour's last send is the
    /// sweep's, to combine what waits); the sweep keeps none.
    pub async fn take(
        &self,
        store: &LeadStore,
        now: OffsetDateTime,
        keep: usize,
    ) -> Result<bool, StoreError> {
        // One taker at a time in this instance: others wait rather than
        // race each other's conditional writes.
        let mut known = self.row.known.lock().await;
        for _ in 0..TRIES {
            let mut log = match known.take() {
                Some(log) => log,
                None => store.send_log(&self.row.name).await?,
            };
            if sends_left(&self.cap, &self.sender, &log, now) <= keep {
                *known = Some(log);
                return Ok(false);
            }
            log.record(&self.sender, HOUR, now);
            match store.write_send_log(&self.row.name, &log, now).await {
                Ok(written) => {
                    *known = Some(written);
                    return Ok(true);
                }
                // Another instance took one meanwhile: read it again.
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn cap(
        budget_limit: u32,
        own_limit: Option<u32>,
        reserved_for: Option<&'static str>,
    ) -> HourlyCap {
        HourlyCap {
            budget: "domain-x.example".into(),
            budget_limit,
            own_limit,
            reserved_for,
        }
    }

    /// Two email destinations of one domain share its 10 an hour; a
    /// labelled cap lowers one's share; the digest's send is kept back.
    #[test]
    fn senders_of_one_domain_share_its_budget() {
        let now = datetime!(2026-11-22 10:30 UTC);
        let mut log = SendLog::default();
        let shared = cap(10, None, None);
        for _ in 0..6 {
            log.record("email", HOUR, now);
        }
        assert_eq!(sends_left(&shared, "email", &log, now), 4);
        assert_eq!(sends_left(&shared, "email:sales", &log, now), 4);
        for _ in 0..4 {
            log.record("email:sales", HOUR, now);
        }
        assert_eq!(sends_left(&shared, "email", &log, now), 0, "10 in all");

        let mut log = SendLog::default();
        log.record("email:sales", HOUR, now);
        log.record("email:sales", HOUR, now);
        let lower = cap(10, Some(2), None);
        assert_eq!(sends_left(&lower, "email:sales", &log, now), 0);
        assert_eq!(sends_left(&shared, "email", &log, now), 8);

        let with_digest = cap(10, None, Some("digest"));
        assert_eq!(sends_left(&with_digest, "email", &log, now), 7, "one kept");
        log.record("digest", HOUR, now);
        assert_eq!(sends_left(&with_digest, "email", &log, now), 7, "now sent");
        assert_eq!(
            sends_left(&with_digest, "email", &log, now + HOUR + HOUR),
            9
        );
    }

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
