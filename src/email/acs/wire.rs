//! The ACS email REST API's JSON, as documented for `emails:send` and the
//! operation-status endpoint, and how we read its answers: the final state
//! of an operation, error bodies quoted briefly, `Retry-After`.

use super::super::{Email, Receipt, SendError};
use crate::domain::text;
use bytes::Bytes;
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Service error messages are quoted up to this many characters.
const MAX_MESSAGE_CHARS: usize = 300;
/// Polling interval when ACS does not suggest one, and its bounds.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// Body of `emails:send`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SendRequest<'a> {
    sender_address: &'a str,
    recipients: RecipientsBody<'a>,
    content: ContentBody<'a>,
}

#[derive(Debug, Serialize)]
struct RecipientsBody<'a> {
    to: Vec<AddressBody<'a>>,
}

#[derive(Debug, Serialize)]
struct AddressBody<'a> {
    address: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContentBody<'a> {
    subject: &'a str,
    plain_text: &'a str,
    html: &'a str,
}

impl<'a> SendRequest<'a> {
    pub(super) fn new(email: &'a Email) -> Self {
        Self {
            sender_address: email.from.as_str(),
            recipients: RecipientsBody {
                to: email
                    .to
                    .iter()
                    .map(|a| AddressBody {
                        address: a.as_str(),
                    })
                    .collect(),
            },
            content: ContentBody {
                subject: &email.subject,
                plain_text: &email.text,
                html: &email.html,
            },
        }
    }
}

/// The operation status, as the 202 and every poll return it.
#[derive(Debug, Deserialize)]
pub(super) struct OperationStatus {
    pub(super) id: Option<String>,
    pub(super) status: String,
    error: Option<ServiceError>,
}

/// `{"error": {"code": ..., "message": ...}}`, ACS's error response.
#[derive(Debug, Deserialize)]
struct ErrorResponse {
    error: Option<ServiceError>,
}

#[derive(Debug, Deserialize)]
struct ServiceError {
    code: Option<String>,
    message: Option<String>,
}

/// A response read in full.
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) headers: HeaderMap,
    pub(super) body: Bytes,
}

/// `Some` once the operation reached a final state.
pub(super) fn finished(
    status: OperationStatus,
    operation_id: &str,
) -> Option<Result<Receipt, SendError>> {
    match status.status.as_str() {
        "Succeeded" => Some(Ok(Receipt {
            message_id: status
                .id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| operation_id.to_owned()),
        })),
        "Failed" | "Canceled" => {
            let reason = status
                .error
                .map(|e| service_message(&e))
                .filter(|m| !m.is_empty())
                .unwrap_or_else(|| "no reason given".to_owned());
            Some(Err(SendError::Rejected(format!(
                "ACS operation {operation_id} {}: {reason}",
                status.status.to_lowercase()
            ))))
        }
        // NotStarted, Running, or a state added after this API version.
        _ => None,
    }
}

/// `retry-after-ms` (Azure's finer variant) or `retry-after` in seconds.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    number("retry-after-ms")
        .or_else(|| number("x-ms-retry-after-ms"))
        .map(Duration::from_millis)
        .or_else(|| number("retry-after").map(Duration::from_secs))
}

pub(super) fn poll_interval(headers: &HeaderMap) -> Duration {
    retry_after(headers)
        .unwrap_or(DEFAULT_POLL_INTERVAL)
        .clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL)
}

/// `HTTP 400 Bad Request: code: message`, from ACS's error body if it has
/// one. Other bodies are not quoted: they could be anything.
pub(super) fn describe(answer: &Answer) -> String {
    let message = serde_json::from_slice::<ErrorResponse>(&answer.body)
        .ok()
        .and_then(|r| r.error)
        .map(|e| service_message(&e))
        .filter(|m| !m.is_empty());
    match message {
        Some(message) => format!("HTTP {}: {message}", answer.status),
        None => format!("HTTP {}", answer.status),
    }
}

fn service_message(error: &ServiceError) -> String {
    let text = match (error.code.as_deref(), error.message.as_deref()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(only), None) | (None, Some(only)) => only.to_owned(),
        (None, None) => String::new(),
    };
    // Bounded and single-line, because it ends up in logs.
    text::single_line(&text)
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{EmailAddress, Recipients};
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_and_poll_interval() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        assert_eq!(poll_interval(&headers), DEFAULT_POLL_INTERVAL);
        headers.insert("retry-after", HeaderValue::from_static("30"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        assert_eq!(poll_interval(&headers), MAX_POLL_INTERVAL);
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        headers.insert("retry-after-ms", HeaderValue::from_static("0"));
        assert_eq!(poll_interval(&headers), MIN_POLL_INTERVAL);
    }

    #[test]
    fn service_errors_are_quoted_briefly() {
        let answer = Answer {
            status: StatusCode::BAD_REQUEST,
            headers: HeaderMap::new(),
            body: Bytes::from_static(
                br#"{"error":{"code":"BadRequest","message":"Invalid\nsender"}}"#,
            ),
        };
        assert_eq!(
            describe(&answer),
            "HTTP 400 Bad Request: BadRequest: Invalid sender"
        );
        let answer = Answer {
            status: StatusCode::BAD_GATEWAY,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"<html>proxy error</html>"),
        };
        assert_eq!(describe(&answer), "HTTP 502 Bad Gateway");
    }

    #[test]
    fn the_body_has_the_documented_shape() {
        let email = Email {
            from: EmailAddress::parse("DoNotReply@x.azurecomm.net").unwrap(),
            to: Recipients::parse("a@contoso.com;b@contoso.com").unwrap(),
            subject: "S".into(),
            text: "T".into(),
            html: "<p>H</p>".into(),
            idempotency_key: uuid::Uuid::nil(),
        };
        let body = serde_json::to_value(SendRequest::new(&email)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "senderAddress": "DoNotReply@x.azurecomm.net",
                "recipients": {"to": [{"address": "a@contoso.com"}, {"address": "b@contoso.com"}]},
                "content": {"subject": "S", "plainText": "T", "html": "<p>H</p>"}
            })
        );
    }
}
