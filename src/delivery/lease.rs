//! How long things may take, and so how long a claim is held. A claim is
//! taken within [`SWEEP_BUDGET`] of a sweep's time (or at ingest, for a
//! first attempt), its attempt ends within the destination's bound (which
//! the engine enforces), and its outcome is recorded within
//! [`BOOKKEEPING`]: a claim held for the sum is never seen expired while
//! its attempt is still going, and a crashed instance's deliveries go out
//! again within a minute or two.

use std::time::Duration;

/// A sweep starts no delivery after this; what is left stays due for the
/// next sweep. So a sweep ends within this plus one attempt, whatever its
/// receivers do.
pub const SWEEP_BUDGET: Duration = Duration::from_secs(20);
/// One HTTP exchange with a destination.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// Connecting to a destination.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// One attempt at an HTTP destination, a token fetch (or a second try
/// with a fresh token) included.
pub const HTTP_ATTEMPT_BOUND: Duration = Duration::from_secs(2 * REQUEST_TIMEOUT.as_secs());
/// Claiming before an attempt and recording its outcome after.
pub const BOOKKEEPING: Duration = Duration::from_secs(10);
/// The claim on a delivery to an HTTP destination.
pub const HTTP_LEASE: Duration = lease(HTTP_ATTEMPT_BOUND);

/// The claim on a delivery whose attempt ends within `attempt_bound`.
pub const fn lease(attempt_bound: Duration) -> Duration {
    Duration::from_secs(SWEEP_BUDGET.as_secs() + attempt_bound.as_secs() + BOOKKEEPING.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_outlasts_a_sweep_an_attempt_and_its_bookkeeping() {
        assert_eq!(HTTP_LEASE, Duration::from_secs(60));
        assert!(lease(Duration::from_secs(120)) > SWEEP_BUDGET + Duration::from_secs(120));
    }
}
