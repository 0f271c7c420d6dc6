//! One retry loop for every remote call that may fail for a moment (Table
//! storage, ACS): exponential backoff between attempts, a server's
//! `Retry-After` honoured, and a deadline the whole loop respects, so a
//! caller always knows the longest it can wait.

use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How long and how often to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Wait after the first failure; doubled after each further one.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// No attempt starts, and no wait ends, after this much time.
    pub deadline: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

/// What the caller makes of one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Retrying cannot help (a 4xx, a malformed request).
    Stop,
    /// Worth another attempt: after `after` if the server said so, else
    /// after the policy's backoff.
    Retry { after: Option<Duration> },
}

/// One attempt's view of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    /// 1 for the first attempt.
    pub number: u32,
    /// Time left before the deadline: bound the attempt by it.
    pub remaining: Duration,
}

/// Why the loop ended without a success, with the last error.
#[derive(Debug)]
pub struct GaveUp<E> {
    pub error: E,
    pub attempts: u32,
    /// `true` when the error was retryable but time or attempts ran out (or
    /// the server asked for a wait beyond the deadline); `false` when the
    /// error itself said to stop.
    pub exhausted: bool,
}

impl RetryPolicy {
    /// Runs `attempt` until it succeeds, `decide` says stop, or the policy
    /// runs out.
    pub async fn run<T, E, F, Fut>(
        &self,
        mut attempt: F,
        decide: impl Fn(&E) -> Decision,
    ) -> Result<T, GaveUp<E>>
    where
        F: FnMut(Attempt) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let deadline = Instant::now() + self.deadline;
        let mut backoff = self.first_backoff;
        let mut number = 0;
        loop {
            number += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let error = match attempt(Attempt { number, remaining }).await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let wait = match decide(&error) {
                Decision::Stop => {
                    return Err(GaveUp {
                        error,
                        attempts: number,
                        exhausted: false,
                    })
                }
                Decision::Retry { after } => after.unwrap_or(backoff),
            };
            if number >= self.max_attempts || Instant::now() + wait >= deadline {
                return Err(GaveUp {
                    error,
                    attempts: number,
                    exhausted: true,
                });
            }
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(self.max_backoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    const POLICY: RetryPolicy = RetryPolicy {
        first_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        deadline: Duration::from_secs(2),
        max_attempts: 10,
    };

    #[tokio::test(start_paused = true)]
    async fn backs_off_exponentially_until_success() {
        let started = Instant::now();
        let calls = Cell::new(0);
        let result: Result<u32, GaveUp<&str>> = POLICY
            .run(
                |a| {
                    calls.set(a.number);
                    async move {
                        if a.number < 4 {
                            Err("busy")
                        } else {
                            Ok(a.number)
                        }
                    }
                },
                |_| Decision::Retry { after: None },
            )
            .await;
        assert_eq!(result.unwrap(), 4);
        // 100 + 200 + 400 ms of backoff.
        assert_eq!(started.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn stops_at_once_when_told_and_honours_retry_after() {
        let stopped: GaveUp<&str> = POLICY
            .run(
                |_| async { Err::<(), _>("bad request") },
                |_| Decision::Stop,
            )
            .await
            .unwrap_err();
        assert_eq!((stopped.attempts, stopped.exhausted), (1, false));

        let started = Instant::now();
        let result: Result<(), GaveUp<&str>> = POLICY
            .run(
                |a| async move {
                    if a.number == 1 {
                        Err("throttled")
                    } else {
                        Ok(())
                    }
                },
                |_| Decision::Retry {
                    after: Some(Duration::from_millis(1_500)),
                },
            )
            .await;
        assert!(result.is_ok());
        assert_eq!(started.elapsed(), Duration::from_millis(1_500));
    }

    #[tokio::test(start_paused = true)]
    async fn never_waits_past_the_deadline() {
        let started = Instant::now();
        let gave_up: GaveUp<&str> = POLICY
            .run(
                |_| async { Err::<(), _>("down") },
                |_| Decision::Retry { after: None },
            )
            .await
            .unwrap_err();
        assert!(gave_up.exhausted);
        assert!(
            started.elapsed() < POLICY.deadline,
            "{:?}",
            started.elapsed()
        );
        let beyond: GaveUp<&str> = POLICY
            .run(
                |_| async { Err::<(), _>("quota") },
                |_| Decision::Retry {
                    after: Some(Duration::from_secs(3_600)),
                },
            )
            .await
            .unwrap_err();
        assert_eq!((beyond.attempts, beyond.exhausted), (1, true));
    }
}
