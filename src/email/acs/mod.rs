//! Azure Communication Services (ACS) email transport.
//!
//! Sends an [`Email`] through the ACS email REST API (`emails:send`, GA
//! version 2023-03-31) and then polls the long-running operation until
//! ACS reports it `Succeeded`, so the caller only acts on a message the
//! service has actually taken.
//!
//! Two ways to authenticate ([`AcsAuth`]): an access key, with which every
//! request is signed ([`signing`]); or the app's identity, a bearer token
//! from an `azure_identity` credential (the managed identity in Azure,
//! `az login` on a workstation), as storage uses.
//!
//! The email's idempotency key is sent as `Operation-Id`, so a repeated send
//! of the same message names the same ACS operation. Neither the key nor a
//! token ever appears in an error, a log line or `Debug` output.

mod signing;
mod wire;

use super::{Email, Receipt, SendError};
use crate::domain::Secret;
use crate::retry::{Decision, RetryPolicy};
use anyhow::anyhow;
use azure_core::auth::TokenCredential;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use reqwest::{Method, StatusCode};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::time::Instant;
use url::Url;
use wire::{describe, finished, poll_interval, retry_after, Answer, OperationStatus, SendRequest};

/// The GA version of the email API; 2025-09-01 has the same shape.
const API_VERSION: &str = "2023-03-31";
/// Scope of the bearer token.
const TOKEN_SCOPE: &str = "https://communication.azure.com/.default";

/// One HTTP exchange that takes longer than this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// While ACS answers 429/503: at most this many attempts, never waiting
/// longer than the deadline. If ACS asks for longer (the hourly quota),
/// give up now and let a later run send.
const THROTTLE_RETRY: RetryPolicy = RetryPolicy {
    first_backoff: Duration::from_secs(5),
    max_backoff: Duration::from_secs(30),
    deadline: Duration::from_secs(60),
    max_attempts: 5,
};
/// How long an accepted message may stay `NotStarted`/`Running` before we
/// stop waiting; the operation id lets a later run find it again.
const POLL_BUDGET: Duration = Duration::from_secs(60);
/// Everything one send may take, throttling and polling included: a caller
/// can rely on it.
pub const SEND_BUDGET: Duration = Duration::from_secs(120);

/// How requests prove who we are.
#[derive(Clone)]
pub enum AcsAuth {
    /// Sign each request with the resource's access key.
    AccessKey(Secret),
    /// A bearer token for [`TOKEN_SCOPE`] from this credential.
    Token(Arc<dyn TokenCredential>),
}

/// Sends email through the ACS email REST API.
#[derive(Clone)]
pub struct AcsMailer {
    endpoint: Url,
    auth: AcsAuth,
    http: reqwest::Client,
}

impl fmt::Debug for AcsMailer {
    // Only the endpoint and the kind of auth: the key and tokens stay out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            AcsAuth::AccessKey(_) => "access key",
            AcsAuth::Token(_) => "token credential",
        };
        f.debug_struct("AcsMailer")
            .field("endpoint", &self.endpoint.as_str())
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

impl AcsMailer {
    pub fn new(endpoint: Url, auth: AcsAuth) -> Result<Self, SendError> {
        let http = crate::outbound::client(REQUEST_TIMEOUT, CONNECT_TIMEOUT)
            .map_err(|e| SendError::Unavailable(anyhow!("could not build the HTTP client: {e}")))?;
        Ok(Self {
            endpoint,
            auth,
            http,
        })
    }

    /// Sends `email` and waits until ACS reports the operation finished,
    /// within [`SEND_BUDGET`].
    pub async fn send(&self, email: &Email) -> Result<Receipt, SendError> {
        tokio::time::timeout(SEND_BUDGET, self.send_and_poll(email))
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Unknown(anyhow!(
                    "ACS did not finish the send within {} s",
                    SEND_BUDGET.as_secs()
                )))
            })
    }

    async fn send_and_poll(&self, email: &Email) -> Result<Receipt, SendError> {
        let body = serde_json::to_vec(&SendRequest::new(email))
            .map_err(|e| SendError::Rejected(format!("could not encode the message: {e}")))?;
        let operation_id = email.idempotency_key.hyphenated().to_string();
        let send_url = self.api_url(&["emails:send"])?;

        let answer = self
            .call(
                Method::POST,
                &send_url,
                Some(&operation_id),
                Bytes::from(body),
            )
            .await?;
        if !answer.status.is_success() {
            return Err(self.send_failure(&answer).await);
        }

        let accepted: Option<OperationStatus> = serde_json::from_slice(&answer.body).ok();
        let operation_id = accepted
            .as_ref()
            .and_then(|s| s.id.clone())
            .filter(|id| !id.is_empty())
            .unwrap_or(operation_id);
        tracing::info!(operation_id, "ACS accepted the email");
        if let Some(done) = accepted.and_then(|s| finished(s, &operation_id)) {
            return done;
        }
        let status_url = self.status_url(&answer.headers, &operation_id)?;
        self.poll(&status_url, &operation_id, poll_interval(&answer.headers))
            .await
    }

    /// Polls the operation until it finishes or [`POLL_BUDGET`] runs out.
    async fn poll(
        &self,
        url: &Url,
        operation_id: &str,
        mut wait: Duration,
    ) -> Result<Receipt, SendError> {
        let deadline = Instant::now() + POLL_BUDGET;
        loop {
            if Instant::now() + wait > deadline {
                return Err(SendError::Unknown(anyhow!(
                    "ACS accepted operation {operation_id} but did not finish it within {} s",
                    POLL_BUDGET.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            let answer = self.call(Method::GET, url, None, Bytes::new()).await?;
            // The message was accepted, so no poll failure proves it was
            // refused: let a later run resend under the same Operation-Id.
            if !answer.status.is_success() {
                return Err(SendError::Unknown(anyhow!(
                    "polling operation {operation_id}: {}",
                    describe(&answer)
                )));
            }
            let status: OperationStatus = serde_json::from_slice(&answer.body).map_err(|e| {
                SendError::Unknown(anyhow!(
                    "polling operation {operation_id}: unreadable status: {e}"
                ))
            })?;
            tracing::debug!(operation_id, status = %status.status, "ACS operation status");
            if let Some(done) = finished(status, operation_id) {
                return done;
            }
            wait = poll_interval(&answer.headers);
        }
    }

    /// Makes one request, retrying while ACS answers 429 or 503; any other
    /// answer is returned for the caller to judge.
    async fn call(
        &self,
        method: Method,
        url: &Url,
        operation_id: Option<&str>,
        body: Bytes,
    ) -> Result<Answer, SendError> {
        let what = if method == Method::POST {
            "sending the email"
        } else {
            "polling the send operation"
        };
        let throttled = |answer: &Answer| {
            matches!(
                answer.status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            )
        };
        let outcome = THROTTLE_RETRY
            .run(
                |attempt| {
                    let (method, body) = (method.clone(), body.clone());
                    async move {
                        if attempt.number > 1 {
                            tracing::warn!(attempt = attempt.number, "ACS is throttling; retrying");
                        }
                        let answer = self
                            .exchange(method, url, operation_id, body, what)
                            .await
                            .map_err(Err)?;
                        if throttled(&answer) {
                            Err(Ok(answer))
                        } else {
                            Ok(answer)
                        }
                    }
                },
                |failure: &Result<Answer, SendError>| match failure {
                    Ok(answer) => Decision::Retry {
                        after: retry_after(&answer.headers),
                    },
                    Err(_) => Decision::Stop,
                },
            )
            .await;
        match outcome {
            Ok(answer) => Ok(answer),
            Err(gave_up) => match gave_up.error {
                Err(error) => Err(error),
                Ok(answer) => Err(SendError::Unavailable(anyhow!(
                    "{what}: ACS still answers {} after {} attempt(s){}",
                    describe(&answer),
                    gave_up.attempts,
                    retry_after(&answer.headers)
                        .map(|wait| format!(" and asks to retry after {} s", wait.as_secs()))
                        .unwrap_or_default()
                ))),
            },
        }
    }

    /// One authenticated request, read in full. Built afresh per attempt:
    /// a new date, signature and request id.
    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        operation_id: Option<&str>,
        body: Bytes,
        what: &str,
    ) -> Result<Answer, SendError> {
        let mut request = self
            .http
            .request(method.clone(), url.clone())
            .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(id) = operation_id {
            request = request.header("Operation-Id", id);
        }
        match &self.auth {
            AcsAuth::AccessKey(key) => {
                let date = signing::rfc1123(OffsetDateTime::now_utc())?;
                let signed = signing::sign(key, &method, url, &body, &date)?;
                request = request
                    .header("x-ms-date", date)
                    .header("x-ms-content-sha256", signed.content_hash)
                    // Sent explicitly so the Host on the wire is the one signed.
                    .header(HOST, signed.host)
                    .header(AUTHORIZATION, sensitive(&signed.authorization)?);
            }
            AcsAuth::Token(credential) => {
                // The credential's own error text may name endpoints and
                // tenants, never tokens; still, keep our answer short.
                let token = credential.get_token(&[TOKEN_SCOPE]).await.map_err(|_| {
                    SendError::Unavailable(anyhow!(
                        "could not get a token for ACS from the app's identity"
                    ))
                })?;
                let value = format!("Bearer {}", token.token.secret());
                request = request.header(AUTHORIZATION, sensitive(&value)?);
            }
        }
        if !body.is_empty() {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        // Once a request may have reached ACS, a lost answer leaves the
        // outcome unknown: only a failure to connect proves nothing was sent.
        let lost = |e: &reqwest::Error, context: &str| {
            let error = anyhow!("{what}{context}: {}", transport_failure(e));
            if e.is_connect() {
                SendError::Unavailable(error)
            } else {
                SendError::Unknown(error)
            }
        };
        let response = request.send().await.map_err(|e| lost(&e, " to ACS"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| lost(&e, ": reading the ACS response"))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// The failure for a non-2xx answer to `emails:send`.
    async fn send_failure(&self, answer: &Answer) -> SendError {
        if let (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, AcsAuth::Token(credential)) =
            (answer.status, &self.auth)
        {
            // The token may have been revoked early: get a new one next time.
            let _ = credential.clear_cache().await;
        }
        if answer.status.is_client_error() {
            SendError::Rejected(describe(answer))
        } else {
            SendError::Unavailable(anyhow!("sending the email: {}", describe(answer)))
        }
    }

    /// `{endpoint}/{segments...}?api-version=...`, keeping any base path.
    fn api_url(&self, segments: &[&str]) -> Result<Url, SendError> {
        let mut url = self.endpoint.clone();
        url.path_segments_mut()
            .map_err(|()| SendError::Rejected("the ACS endpoint is not an http(s) URL".into()))?
            .pop_if_empty()
            .extend(segments);
        url.set_query(Some(&format!("api-version={API_VERSION}")));
        url.set_fragment(None);
        Ok(url)
    }

    /// Where to poll: the `Operation-Location` ACS returned if it points at
    /// our endpoint (a token must not go to another host), else the
    /// documented operations URL.
    fn status_url(&self, headers: &HeaderMap, operation_id: &str) -> Result<Url, SendError> {
        let location = headers
            .get("operation-location")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v.trim()).ok())
            .filter(|u| u.origin() == self.endpoint.origin());
        match location {
            Some(mut url) => {
                if !url.query_pairs().any(|(k, _)| k == "api-version") {
                    url.query_pairs_mut()
                        .append_pair("api-version", API_VERSION);
                }
                Ok(url)
            }
            None => self.api_url(&["emails", "operations", operation_id]),
        }
    }
}

/// What went wrong on the wire, without the URL reqwest would quote.
fn transport_failure(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    }
}

/// A header value marked sensitive, so the HTTP stack never logs it. The
/// error does not quote the value.
fn sensitive(value: &str) -> Result<HeaderValue, SendError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        SendError::Unavailable(anyhow!("a credential is not a valid HTTP header value"))
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "bm90LWEtcmVhbC1hY3MtYWNjZXNzLWtleS0wMTIzNDU2Nzg5";

    fn mailer(endpoint: &str) -> AcsMailer {
        AcsMailer::new(
            Url::parse(endpoint).unwrap(),
            AcsAuth::AccessKey(Secret::new(KEY)),
        )
        .unwrap()
    }

    #[test]
    fn urls_keep_the_endpoint_path_and_add_the_api_version() {
        assert_eq!(
            mailer("https://r.communication.azure.com")
                .api_url(&["emails:send"])
                .unwrap()
                .as_str(),
            "https://r.communication.azure.com/emails:send?api-version=2023-03-31"
        );
        assert_eq!(
            mailer("https://gw.example.com/acs/")
                .api_url(&["emails", "operations", "a/b"])
                .unwrap()
                .as_str(),
            "https://gw.example.com/acs/emails/operations/a%2Fb?api-version=2023-03-31"
        );
    }

    #[test]
    fn operation_location_on_another_host_is_not_followed() {
        let mailer = mailer("https://r.communication.azure.com/");
        let mut headers = HeaderMap::new();
        headers.insert(
            "operation-location",
            HeaderValue::from_static("https://evil.example.com/emails/operations/x"),
        );
        assert_eq!(
            mailer.status_url(&headers, "x").unwrap().as_str(),
            "https://r.communication.azure.com/emails/operations/x?api-version=2023-03-31"
        );
        headers.insert(
            "operation-location",
            HeaderValue::from_static("https://r.communication.azure.com/emails/operations/y"),
        );
        assert_eq!(
            mailer.status_url(&headers, "x").unwrap().as_str(),
            "https://r.communication.azure.com/emails/operations/y?api-version=2023-03-31"
        );
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let printed = format!("{:?}", mailer("https://r.communication.azure.com/"));
        assert!(!printed.contains(KEY), "{printed}");
        assert!(printed.contains("r.communication.azure.com"), "{printed}");
    }
}
