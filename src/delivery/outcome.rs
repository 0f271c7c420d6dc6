//! One delivery attempt's outcome, and how an HTTP answer becomes one:
//! a 2xx is delivered; a network error, a timeout, 408, 429 and 5xx are
//! worth another attempt (after `Retry-After` when the receiver says so);
//! any other answer means the request itself is wrong (a bad URL or
//! secret will not fix itself) and the delivery is dead.
//!
//! Also the retry schedule: exponential backoff from [`FIRST_BACKOFF`],
//! capped at [`MAX_BACKOFF`].

use crate::domain::{text, DestinationName};
use crate::store::Claimed;
use std::fmt;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The first retry waits this long; each further one twice as long...
pub const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// ...up to this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);
/// A receiver's `Retry-After` is honoured up to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60 * 60);
/// Characters of an answer kept to explain a failure.
const EXCERPT_CHARS: usize = 200;
/// Bytes of an answer's body read: enough for [`EXCERPT_CHARS`] of any
/// UTF-8. A receiver can answer with any size; we never hold more.
const ANSWER_BYTES: usize = 4 * EXCERPT_CHARS;
/// Bytes read of an answer whose body is parsed (a token grant, a CRM's
/// JSON): whole, up to this. A JWT-based access token alone passes 1 KB.
pub const PARSED_ANSWER_BYTES: usize = 64 * 1024;

/// What came of an attempt, in a word: the record's `LastStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The receiver answered with this HTTP status.
    Http(u16),
    /// Dataverse answered 412 to a create-only write: the record was there.
    AlreadyThere,
    /// The mail service took the email, under this message id.
    Accepted(String),
    /// The mail service refused the email for good.
    Rejected,
    /// The mail service could not be reached.
    Unavailable,
    /// The mail service may or may not have taken the email.
    OutcomeUnknown,
    TimedOut,
    CouldNotConnect,
    ConnectionFailed,
    /// No token could be had for the service.
    NoToken,
    /// The identity platform refused our credentials.
    TokenRefused,
    /// The request could not be built.
    NotSent,
    /// The lead lacks what the destination keys records by (an email).
    NoEmail,
    /// The lead's row is gone.
    NoLead,
    /// The destination is no longer configured.
    NotConfigured,
    /// The service answered 2xx with an error inside (Marketo): its code.
    Refused(String),
    /// The service says what it did with the record (`created`, `updated`).
    Written(String),
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(code) => write!(f, "HTTP {code}"),
            Self::AlreadyThere => f.write_str("HTTP 412 (the record was already there)"),
            Self::Accepted(id) => write!(f, "accepted {id}"),
            Self::Rejected => f.write_str("rejected"),
            Self::Unavailable => f.write_str("unavailable"),
            Self::OutcomeUnknown => f.write_str("outcome unknown"),
            Self::TimedOut => f.write_str("timed out"),
            Self::CouldNotConnect => f.write_str("could not connect"),
            Self::ConnectionFailed => f.write_str("connection failed"),
            Self::NoToken => f.write_str("no token"),
            Self::TokenRefused => f.write_str("token refused"),
            Self::NotSent => f.write_str("not sent"),
            Self::NoEmail => f.write_str("no email"),
            Self::NoLead => f.write_str("no lead"),
            Self::NotConfigured => f.write_str("not configured"),
            Self::Refused(code) => write!(f, "refused {code}"),
            Self::Written(what) => f.write_str(what),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered {
        status: Status,
    },
    /// Failed for now.
    Retry {
        status: Status,
        error: String,
        /// The receiver's `Retry-After`, if it gave one.
        after: Option<Duration>,
        /// The receiver may have acted on it (the answer was lost): a
        /// retry must carry the same idempotency key.
        maybe_done: bool,
    },
    /// Failed for good.
    Dead {
        status: Status,
        error: String,
    },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Retry { .. } => "retry",
            Self::Dead { .. } => "dead",
        }
    }

    pub fn status(&self) -> &Status {
        match self {
            Self::Delivered { status } | Self::Retry { status, .. } | Self::Dead { status, .. } => {
                status
            }
        }
    }

    /// Dead, with what to fix.
    pub fn dead(status: Status, error: impl Into<String>) -> Self {
        Self::Dead {
            status,
            error: error.into(),
        }
    }

    /// Failed for now, nothing sent.
    pub fn retry(status: Status, error: impl Into<String>) -> Self {
        Self::Retry {
            status,
            error: error.into(),
            after: None,
            maybe_done: false,
        }
    }

    /// An HTTP exchange that failed before any answer.
    pub fn unanswered(error: &reqwest::Error) -> Self {
        let (status, maybe_done) = if error.is_timeout() {
            (Status::TimedOut, true)
        } else if error.is_connect() {
            (Status::CouldNotConnect, false)
        } else {
            (Status::ConnectionFailed, true)
        };
        Self::Retry {
            status,
            error: String::new(),
            after: None,
            maybe_done,
        }
    }

    /// The outcome of sending a request whose answer means nothing more
    /// than its status.
    pub async fn of_sent(sent: reqwest::Result<reqwest::Response>, now: OffsetDateTime) -> Self {
        match sent {
            Err(e) => Self::unanswered(&e),
            Ok(response) => Answer::read(response, now).await.outcome(),
        }
    }

    /// The outcome an HTTP answer means.
    pub fn of_answer(
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        body: &[u8],
    ) -> Self {
        let label = Status::Http(status.as_u16());
        let excerpt = excerpt(body);
        if status.is_success() {
            Self::Delivered { status: label }
        } else if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
            Self::Retry {
                status: label,
                error: excerpt,
                after: retry_after.map(|wait| wait.min(MAX_RETRY_AFTER)),
                maybe_done: false,
            }
        } else {
            Self::Dead {
                status: label,
                error: excerpt,
            }
        }
    }
}

/// The one log line of an attempt.
pub fn log_outcome(
    destination: &DestinationName,
    items: &[Claimed],
    outcome: &Outcome,
    started: Instant,
) {
    let leads: Vec<&str> = items.iter().map(|item| item.lead.id.as_str()).collect();
    let duration_ms = started.elapsed().as_millis() as u64;
    let status = outcome.status().to_string();
    match outcome {
        Outcome::Delivered { .. } => tracing::info!(
            %destination, ?leads, status, duration_ms, "lead delivered"
        ),
        Outcome::Retry { .. } => tracing::warn!(
            %destination, ?leads, status, duration_ms, "delivery failed; will retry"
        ),
        Outcome::Dead { .. } => tracing::error!(
            %destination, ?leads, status, duration_ms, "delivery failed for good"
        ),
    }
}

/// What a receiver answered, read only as far as explaining it needs:
/// its status, its `Retry-After`, and the first [`ANSWER_BYTES`] of its
/// body (the rest is never read; the connection is then dropped).
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub retry_after: Option<Duration>,
    pub body: Vec<u8>,
}

impl Answer {
    /// A receiver's answer, read as far as its excerpt needs.
    pub async fn read(response: reqwest::Response, now: OffsetDateTime) -> Self {
        Self::read_up_to(response, now, ANSWER_BYTES).await
    }

    /// An answer whose body is parsed (a token grant, a CRM's JSON), read
    /// whole up to [`PARSED_ANSWER_BYTES`].
    pub async fn read_whole(response: reqwest::Response, now: OffsetDateTime) -> Self {
        Self::read_up_to(response, now, PARSED_ANSWER_BYTES).await
    }

    async fn read_up_to(
        mut response: reqwest::Response,
        now: OffsetDateTime,
        limit: usize,
    ) -> Self {
        let status = response.status();
        let retry_after = retry_after(response.headers(), now);
        let mut body = Vec::new();
        // A body that breaks off is still what was said so far.
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() == limit {
                break;
            }
        }
        Self {
            status,
            retry_after,
            body,
        }
    }

    /// The outcome this answer means.
    pub fn outcome(&self) -> Outcome {
        Outcome::of_answer(self.status, self.retry_after, &self.body)
    }

    /// The body as text, for answers that say more than their status.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// What the receiver said, on one line, short.
    pub fn excerpt(&self) -> String {
        excerpt(&self.body)
    }

    /// Dead: the service refused our credentials. `hint` says what to set
    /// up; it comes first, so that cutting the stored error (at 300
    /// characters) only ever shortens the service's own words after it.
    pub fn refused(&self, hint: &str) -> Outcome {
        let said = excerpt(&self.body);
        Outcome::Dead {
            status: Status::Http(self.status.as_u16()),
            error: if said.is_empty() {
                hint.to_owned()
            } else {
                format!("{hint} — {said}")
            },
        }
    }
}

/// The start of an answer's body, on one line: what the receiver said.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(ANSWER_BYTES)]);
    text::truncated(text::single_line(&text).trim(), EXCERPT_CHARS).into_owned()
}

/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at = OffsetDateTime::from(at);
    Some((at - now).try_into().unwrap_or(Duration::ZERO))
}

/// The wait before the next attempt, after `failures` failed attempts
/// (the first failure waits [`FIRST_BACKOFF`]).
pub fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;

    #[test]
    fn answers_become_outcomes() {
        assert_eq!(
            Outcome::of_answer(StatusCode::NO_CONTENT, None, b""),
            Outcome::Delivered {
                status: Status::Http(204)
            }
        );
        for retryable in [500, 502, 503, 408, 429] {
            let status = StatusCode::from_u16(retryable).unwrap();
            assert_eq!(
                Outcome::of_answer(status, None, b"busy").label(),
                "retry",
                "{status}"
            );
        }
        for dead in [400, 401, 403, 404, 410, 301] {
            let status = StatusCode::from_u16(dead).unwrap();
            assert_eq!(
                Outcome::of_answer(status, None, b"no").label(),
                "dead",
                "{status}"
            );
        }
        let throttled = Outcome::of_answer(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(30)),
            b"",
        );
        assert!(
            matches!(throttled, Outcome::Retry { after: Some(d), .. } if d == Duration::from_secs(30))
        );
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_fifteen_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(7), Duration::from_secs(640));
        assert_eq!(backoff(8), MAX_BACKOFF);
        assert_eq!(backoff(1_000), MAX_BACKOFF);
    }

    #[test]
    fn excerpts_are_short_and_on_one_line() {
        assert_eq!(
            excerpt(b"  {\"error\":\n\"bad\"}  "),
            "{\"error\": \"bad\"}"
        );
        assert_eq!(excerpt(&[b'x'; 10_000]).chars().count(), EXCERPT_CHARS);
        assert_eq!(excerpt(b"\xff\xfe ok"), "\u{FFFD}\u{FFFD} ok");
    }

    /// A receiver that answers 500 with a body that never ends: the
    /// attempt must end with a short excerpt, not read until memory or the
    /// request time-out runs out.
    #[tokio::test]
    async fn an_endless_answer_is_read_only_as_far_as_its_excerpt() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let receiver = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = format!("{:x}\r\n{}\r\n", 64 * 1024, "e".repeat(64 * 1024));
            let mut sent = 0usize;
            while socket.write_all(chunk.as_bytes()).await.is_ok() {
                sent += 64 * 1024;
            }
            sent
        });
        let http = reqwest::Client::new();
        let now = time::macros::datetime!(2026-11-22 10:00:00 UTC);
        let sent = http.post(format!("http://{address}/")).send().await;
        let attempt = tokio::time::timeout(Duration::from_secs(10), Outcome::of_sent(sent, now))
            .await
            .expect("the attempt ends without reading the whole answer");
        let Outcome::Retry { status, error, .. } = attempt else {
            panic!("a 500 is retried: {attempt:?}");
        };
        assert_eq!(status.to_string(), "HTTP 500");
        assert_eq!(error.chars().count(), EXCERPT_CHARS);
        // The answer was dropped, so the receiver's writes fail.
        let sent = tokio::time::timeout(Duration::from_secs(10), receiver)
            .await
            .expect("the receiver's connection is closed")
            .unwrap();
        assert!(sent < 64 << 20, "{sent} bytes were sent before it closed");
    }

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = time::macros::datetime!(2026-11-22 10:00:00 UTC);
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("retry-after", "120".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        headers.insert(
            "retry-after",
            "Sun, 22 Nov 2026 10:01:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(60)));
        headers.insert("retry-after", "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }
}
