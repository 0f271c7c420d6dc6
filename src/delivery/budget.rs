//! The hourly cap of a destination that has one (the per-lead email: ACS's
//! Azure-managed domains send 10 an hour), shared by every instance
//! through a row in storage.
//!
//! A send is taken only by an attempt that holds its records and is about
//! to send — never before a claim that could be lost — and the hour's last
//! send is kept for the sweep, which combines everything still waiting
//! into it: a burst costs the hour's sends, never more, and no lead waits
//! longer than the hour. The row's last known version is kept here, so
//! taking a send is one conditional write while this instance is the only
//! writer (a stale copy can only overstate what is left, so "none left"
//! read from it is true).

use crate::store::rate::SendLog;
use crate::store::{LeadStore, StoreError};
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

/// One destination's hourly cap.
#[derive(Debug)]
pub struct HourlyBudget {
    /// The row's key: the destination's name.
    name: String,
    limit: usize,
    known: Mutex<Option<SendLog>>,
}

impl HourlyBudget {
    pub fn new(name: &str, limit: u32) -> Self {
        Self {
            name: name.to_owned(),
            limit: limit as usize,
            known: Mutex::new(None),
        }
    }

    /// Sends left at `now`, as stored (read afresh).
    pub async fn left(&self, store: &LeadStore, now: OffsetDateTime) -> Result<usize, StoreError> {
        let log = store.send_log(&self.name).await?;
        let left = log.left(self.limit, HOUR, now);
        *self.known.lock().await = Some(log);
        Ok(left)
    }

    /// When a send is next free, as last known.
    pub async fn next_free_at(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.known
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
        let mut known = self.known.lock().await;
        for _ in 0..TRIES {
            let mut log = match known.take() {
                Some(log) => log,
                None => store.send_log(&self.name).await?,
            };
            if log.left(self.limit, HOUR, now) <= keep {
                *known = Some(log);
                return Ok(false);
            }
            log.record(HOUR, now);
            match store.write_send_log(&self.name, &log, now).await {
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
