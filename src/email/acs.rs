//! Azure Communication Services (ACS) email transport.
//!
//! Sends an [`Email`] through the ACS email REST API (`emails:send`, GA
//! version 2023-03-31) and then polls the long-running operation until
//! ACS reports it `Succeeded`, so the caller only moves the digest checkpoint
//! on a message the service has actually taken.
//!
//! Two ways to authenticate, as configured ([`AcsAuth`]):
//! - an access key: every request is signed with HMAC-SHA256 as ACS documents
//!   it (`x-ms-date`, `x-ms-content-sha256`, `host`);
//! - the Function App's managed identity: a bearer token from the platform's
//!   identity endpoint, cached until shortly before it expires.
//!
//! The email's idempotency key is sent as `Operation-Id`, so a repeated send
//! of the same digest names the same ACS operation. Neither the key nor a
//! token ever appears in an error, a log line or `Debug` output.

use super::{Email, Receipt, SendError};
use crate::configuration::{AcsAuth, Secret};
use anyhow::anyhow;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

/// The GA version of the email API; 2025-09-01 has the same shape.
const API_VERSION: &str = "2023-03-31";
/// Audience of the managed-identity token.
const TOKEN_RESOURCE: &str = "https://communication.azure.com";
/// Version of the App Service / Functions identity endpoint protocol.
const IDENTITY_API_VERSION: &str = "2019-08-01";

/// One HTTP exchange that takes longer than this counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per request while ACS answers 429/503.
const MAX_ATTEMPTS: u32 = 5;
/// A throttled request waits at most this long before its next attempt; if
/// ACS asks for longer (the hourly quota), give up now and let a later run
/// send the digest.
const MAX_THROTTLE_WAIT: Duration = Duration::from_secs(60);
/// Wait after a 429/503 that names no `Retry-After`.
const DEFAULT_THROTTLE_WAIT: Duration = Duration::from_secs(5);
/// Polling interval when ACS does not suggest one, and its bounds.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(100);
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long an accepted message may stay `NotStarted`/`Running` before we
/// stop waiting; the operation id lets a later run find it again.
const POLL_BUDGET: Duration = Duration::from_secs(120);
/// Fetch a new token when the cached one has less than this left.
const TOKEN_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Service error messages are quoted up to this many characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// Signed headers, in the order of the string to sign.
const SIGNED_HEADERS: &str = "x-ms-date;host;x-ms-content-sha256";

/// Sends email through the ACS email REST API.
#[derive(Clone)]
pub struct AcsMailer {
    endpoint: Url,
    auth: AcsAuth,
    /// `Err` (a description) if the HTTP client could not be built: reported
    /// by `send` rather than panicking at start-up.
    http: Result<reqwest::Client, String>,
    /// Managed-identity token, shared by clones; the lock is held while a
    /// token is fetched so concurrent sends fetch it once.
    token: Arc<Mutex<Option<CachedToken>>>,
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    expires_at: SystemTime,
}

impl fmt::Debug for AcsMailer {
    // Only the endpoint and the kind of auth: the key, the identity header
    // and the cached token stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            AcsAuth::AccessKey(_) => "access key",
            AcsAuth::ManagedIdentity { .. } => "managed identity",
        };
        f.debug_struct("AcsMailer")
            .field("endpoint", &self.endpoint.as_str())
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

/// Body of `emails:send`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SendRequest<'a> {
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
    fn new(email: &'a Email) -> Self {
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
struct OperationStatus {
    id: Option<String>,
    status: String,
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

/// The identity endpoint's answer (App Service protocol 2019-08-01).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_on: Option<EpochSeconds>,
}

/// `expires_on` is a string of seconds in App Service, a number elsewhere.
#[derive(Deserialize)]
#[serde(untagged)]
enum EpochSeconds {
    Number(u64),
    Text(String),
}

impl EpochSeconds {
    fn to_system_time(&self) -> Option<SystemTime> {
        let seconds = match self {
            Self::Number(n) => *n,
            Self::Text(s) => s.trim().parse().ok()?,
        };
        UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
    }
}

/// A response read in full.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

/// The signing headers for one access-key request.
#[derive(Debug, PartialEq, Eq)]
struct Signature {
    content_hash: String,
    host: String,
    authorization: String,
}

impl AcsMailer {
    pub fn new(endpoint: Url, auth: AcsAuth) -> Self {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // ACS does not redirect; following one could carry the
            // Authorization header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("marketplace-leads/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("could not build the HTTP client: {e}"));
        Self {
            endpoint,
            auth,
            http,
            token: Arc::new(Mutex::new(None)),
        }
    }

    /// Sends `email` and waits until ACS reports the operation finished.
    pub async fn send(&self, email: &Email) -> Result<Receipt, SendError> {
        let http = self
            .http
            .as_ref()
            .map_err(|e| SendError::Unavailable(anyhow!("{e}")))?;
        let body = serde_json::to_vec(&SendRequest::new(email))
            .map_err(|e| SendError::Rejected(format!("could not encode the message: {e}")))?;
        let operation_id = email.idempotency_key.hyphenated().to_string();
        let send_url = self.api_url(&["emails:send"])?;

        let answer = self
            .call(
                http,
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
        self.poll(
            http,
            &status_url,
            &operation_id,
            poll_interval(&answer.headers),
        )
        .await
    }

    /// Polls the operation until it finishes or [`POLL_BUDGET`] runs out.
    async fn poll(
        &self,
        http: &reqwest::Client,
        url: &Url,
        operation_id: &str,
        mut wait: Duration,
    ) -> Result<Receipt, SendError> {
        let deadline = Instant::now() + POLL_BUDGET;
        loop {
            if Instant::now() + wait > deadline {
                return Err(SendError::Unavailable(anyhow!(
                    "ACS accepted operation {operation_id} but did not finish it within {} s",
                    POLL_BUDGET.as_secs()
                )));
            }
            tokio::time::sleep(wait).await;
            let answer = self
                .call(http, Method::GET, url, None, Bytes::new())
                .await?;
            // The message was accepted, so no poll failure proves it was
            // refused: let a later run resend under the same Operation-Id.
            if !answer.status.is_success() {
                return Err(SendError::Unavailable(anyhow!(
                    "polling operation {operation_id}: {}",
                    describe(&answer)
                )));
            }
            let status: OperationStatus = serde_json::from_slice(&answer.body).map_err(|e| {
                SendError::Unavailable(anyhow!(
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
        http: &reqwest::Client,
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
        let mut attempt = 1;
        loop {
            // Built afresh per attempt: a new date, signature and request id.
            let request = self
                .request(http, method.clone(), url, operation_id, &body)
                .await?;
            let response = request.send().await.map_err(|e| {
                SendError::Unavailable(anyhow::Error::new(e).context(format!("{what} to ACS")))
            })?;
            let status = response.status();
            let headers = response.headers().clone();
            let body_read = response.bytes().await.map_err(|e| {
                SendError::Unavailable(
                    anyhow::Error::new(e).context(format!("{what}: reading the ACS response")),
                )
            })?;
            let answer = Answer {
                status,
                headers,
                body: body_read,
            };
            if !matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
            ) {
                return Ok(answer);
            }
            let wait = retry_after(&answer.headers).unwrap_or(DEFAULT_THROTTLE_WAIT);
            if attempt >= MAX_ATTEMPTS {
                return Err(SendError::Unavailable(anyhow!(
                    "{what}: ACS still answers {} after {attempt} attempts",
                    describe(&answer)
                )));
            }
            if wait > MAX_THROTTLE_WAIT {
                return Err(SendError::Unavailable(anyhow!(
                    "{what}: ACS answers {} and asks to retry after {} s",
                    describe(&answer),
                    wait.as_secs()
                )));
            }
            tracing::warn!(
                status = status.as_u16(),
                wait_ms = wait.as_millis() as u64,
                attempt,
                "ACS is throttling; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// One authenticated request.
    async fn request(
        &self,
        http: &reqwest::Client,
        method: Method,
        url: &Url,
        operation_id: Option<&str>,
        body: &Bytes,
    ) -> Result<reqwest::RequestBuilder, SendError> {
        let mut request = http
            .request(method.clone(), url.clone())
            .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string());
        if let Some(id) = operation_id {
            request = request.header("Operation-Id", id);
        }
        match &self.auth {
            AcsAuth::AccessKey(key) => {
                let date = rfc1123(OffsetDateTime::now_utc())?;
                let signed = sign(key, &method, url, body, &date)?;
                request = request
                    .header("x-ms-date", date)
                    .header("x-ms-content-sha256", signed.content_hash)
                    // Sent explicitly so the Host on the wire is the one signed.
                    .header(HOST, signed.host)
                    .header(AUTHORIZATION, sensitive(&signed.authorization)?);
            }
            AcsAuth::ManagedIdentity {
                identity_endpoint,
                identity_header,
            } => {
                let token = self
                    .bearer_token(http, identity_endpoint, identity_header)
                    .await?;
                let value = format!("Bearer {}", token.expose());
                request = request.header(AUTHORIZATION, sensitive(&value)?);
            }
        }
        if !body.is_empty() {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        Ok(request)
    }

    /// The cached managed-identity token, fetched when missing or about to
    /// expire.
    async fn bearer_token(
        &self,
        http: &reqwest::Client,
        identity_endpoint: &Url,
        identity_header: &Secret,
    ) -> Result<Secret, SendError> {
        let mut cache = self.token.lock().await;
        if let Some(cached) = cache.as_ref() {
            if cached.expires_at > SystemTime::now() + TOKEN_REFRESH_MARGIN {
                return Ok(cached.token.clone());
            }
        }
        let fresh = fetch_token(http, identity_endpoint, identity_header).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// The failure for a non-2xx answer to `emails:send`.
    async fn send_failure(&self, answer: &Answer) -> SendError {
        let status = answer.status;
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
            && matches!(self.auth, AcsAuth::ManagedIdentity { .. })
        {
            // The token may have been revoked early: fetch a new one next time.
            *self.token.lock().await = None;
        }
        if status.is_client_error() {
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

/// `Some` once the operation reached a final state.
fn finished(status: OperationStatus, operation_id: &str) -> Option<Result<Receipt, SendError>> {
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

async fn fetch_token(
    http: &reqwest::Client,
    identity_endpoint: &Url,
    identity_header: &Secret,
) -> Result<CachedToken, SendError> {
    let unavailable = |e: anyhow::Error| {
        SendError::Unavailable(e.context("getting a managed-identity token for ACS"))
    };
    let mut url = identity_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("resource", TOKEN_RESOURCE)
        .append_pair("api-version", IDENTITY_API_VERSION);
    let response = http
        .get(url)
        .header("X-IDENTITY-HEADER", sensitive(identity_header.expose())?)
        .send()
        .await
        .map_err(|e| unavailable(e.into()))?;
    let status = response.status();
    if !status.is_success() {
        // The body may echo request details; the status is enough.
        return Err(unavailable(anyhow!(
            "the identity endpoint answered {status}"
        )));
    }
    let body = response.bytes().await.map_err(|e| unavailable(e.into()))?;
    // Not `{e}` from serde: its message could quote the token.
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| unavailable(anyhow!("the identity endpoint's answer is not a token")))?;
    // Without a usable expiry the token is used for this request only.
    let expires_at = parsed
        .expires_on
        .as_ref()
        .and_then(EpochSeconds::to_system_time)
        .unwrap_or_else(SystemTime::now);
    Ok(CachedToken {
        token: Secret::new(parsed.access_token),
        expires_at,
    })
}

/// Signs a request with the access key, as ACS documents it: HMAC-SHA256
/// over `METHOD\npath?query\nx-ms-date;host;content-hash`.
fn sign(
    key: &Secret,
    method: &Method,
    url: &Url,
    body: &[u8],
    date: &str,
) -> Result<Signature, SendError> {
    let engine = base64::engine::general_purpose::STANDARD;
    let content_hash = engine.encode(Sha256::digest(body));
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(SendError::Rejected("the ACS endpoint has no host".into())),
    };
    let path_and_query = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let string_to_sign = format!("{method}\n{path_and_query}\n{date};{host};{content_hash}");
    let key = engine
        .decode(key.expose().trim())
        .map_err(|_| SendError::Rejected("the ACS access key is not valid base64".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key)
        .map_err(|_| SendError::Rejected("the ACS access key cannot be used for HMAC".into()))?;
    mac.update(string_to_sign.as_bytes());
    let signature = engine.encode(mac.finalize().into_bytes());
    Ok(Signature {
        authorization: format!("HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"),
        content_hash,
        host,
    })
}

/// RFC 1123 date, always GMT: `Sun, 22 Nov 2026 10:00:00 GMT`.
fn rfc1123(at: OffsetDateTime) -> Result<String, SendError> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .map_err(|e| SendError::Unavailable(anyhow!("formatting x-ms-date: {e}")))
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

/// `retry-after-ms` (Azure's finer variant) or `retry-after` in seconds.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok();
    number("retry-after-ms")
        .or_else(|| number("x-ms-retry-after-ms"))
        .map(Duration::from_millis)
        .or_else(|| number("retry-after").map(Duration::from_secs))
}

fn poll_interval(headers: &HeaderMap) -> Duration {
    retry_after(headers)
        .unwrap_or(DEFAULT_POLL_INTERVAL)
        .clamp(MIN_POLL_INTERVAL, MAX_POLL_INTERVAL)
}

/// `HTTP 400 Bad Request: code: message`, from ACS's error body if it has
/// one. Other bodies are not quoted: they could be anything.
fn describe(answer: &Answer) -> String {
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
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // An arbitrary key; the expected signatures were computed independently
    // (Python's hmac/hashlib) from the documented string to sign.
    const KEY: &str = "bm90LWEtcmVhbC1hY3MtYWNjZXNzLWtleS0wMTIzNDU2Nzg5";
    const DATE: &str = "Sun, 22 Nov 2026 10:00:00 GMT";

    #[test]
    fn signs_a_post_as_documented() {
        let url = Url::parse(
            "https://contoso.communication.azure.com/emails:send?api-version=2023-03-31",
        )
        .unwrap();
        let signed = sign(
            &Secret::new(KEY),
            &Method::POST,
            &url,
            br#"{"senderAddress":"a@b.co"}"#,
            DATE,
        )
        .unwrap();
        assert_eq!(
            signed,
            Signature {
                content_hash: "3Ptg25RM7Nk/K90Py86cVHymvjfLaA/EpF41XYxrpoc=".into(),
                host: "contoso.communication.azure.com".into(),
                authorization: "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256\
                                &Signature=LgYGaSgsAjFLEyIl6zyf5uz9+j1Jef7kJf6NexnQyM8="
                    .into(),
            }
        );
    }

    #[test]
    fn signs_a_get_with_the_port_and_the_empty_body_hash() {
        let url = Url::parse("https://127.0.0.1:8443/emails/operations/abc?api-version=2023-03-31")
            .unwrap();
        let signed = sign(&Secret::new(KEY), &Method::GET, &url, b"", DATE).unwrap();
        assert_eq!(
            signed.content_hash,
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
        assert_eq!(signed.host, "127.0.0.1:8443");
        assert!(signed
            .authorization
            .ends_with("&Signature=nRmn0JIuPT6Urnp+PkskPHFqFKdS3dEgzNa5GaVbDxU="));
    }

    #[test]
    fn a_key_that_is_not_base64_is_rejected_without_quoting_it() {
        let url = Url::parse("https://x.communication.azure.com/").unwrap();
        let err = sign(&Secret::new("not*base64"), &Method::GET, &url, b"", DATE).unwrap_err();
        assert!(matches!(err, SendError::Rejected(_)));
        assert!(!err.to_string().contains("not*base64"), "{err}");
    }

    #[test]
    fn dates_are_rfc1123_gmt() {
        let at = time::macros::datetime!(2026-11-22 10:00:00 UTC);
        assert_eq!(rfc1123(at).unwrap(), DATE);
        let at = time::macros::datetime!(2027-01-05 23:04:09 +02:00);
        assert_eq!(rfc1123(at).unwrap(), "Tue, 05 Jan 2027 21:04:09 GMT");
    }

    #[test]
    fn urls_keep_the_endpoint_path_and_add_the_api_version() {
        let mailer = AcsMailer::new(
            Url::parse("https://r.communication.azure.com").unwrap(),
            AcsAuth::AccessKey(Secret::new(KEY)),
        );
        assert_eq!(
            mailer.api_url(&["emails:send"]).unwrap().as_str(),
            "https://r.communication.azure.com/emails:send?api-version=2023-03-31"
        );
        let mailer = AcsMailer::new(
            Url::parse("https://gw.example.com/acs/").unwrap(),
            AcsAuth::AccessKey(Secret::new(KEY)),
        );
        assert_eq!(
            mailer
                .api_url(&["emails", "operations", "a/b"])
                .unwrap()
                .as_str(),
            "https://gw.example.com/acs/emails/operations/a%2Fb?api-version=2023-03-31"
        );
    }

    #[test]
    fn operation_location_on_another_host_is_not_followed() {
        let mailer = AcsMailer::new(
            Url::parse("https://r.communication.azure.com/").unwrap(),
            AcsAuth::AccessKey(Secret::new(KEY)),
        );
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
    fn expires_on_may_be_a_string_or_a_number() {
        for body in [
            r#"{"access_token":"t","expires_on":"1800000000"}"#,
            r#"{"access_token":"t","expires_on":1800000000}"#,
        ] {
            let parsed: TokenResponse = serde_json::from_str(body).unwrap();
            assert_eq!(
                parsed.expires_on.and_then(|e| e.to_system_time()),
                Some(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
            );
        }
        let parsed: TokenResponse = serde_json::from_str(r#"{"access_token":"t"}"#).unwrap();
        assert!(parsed.expires_on.is_none());
    }

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
    fn debug_does_not_print_secrets() {
        let mailer = AcsMailer::new(
            Url::parse("https://r.communication.azure.com/").unwrap(),
            AcsAuth::AccessKey(Secret::new(KEY)),
        );
        let printed = format!("{mailer:?}");
        assert!(!printed.contains(KEY), "{printed}");
        assert!(printed.contains("r.communication.azure.com"), "{printed}");
        let mailer = AcsMailer::new(
            Url::parse("https://r.communication.azure.com/").unwrap(),
            AcsAuth::ManagedIdentity {
                identity_endpoint: Url::parse("http://127.0.0.1:41000/msi/token").unwrap(),
                identity_header: Secret::new("identity-header-value"),
            },
        );
        assert!(!format!("{mailer:?}").contains("identity-header-value"));
    }

    #[test]
    fn the_body_has_the_documented_shape() {
        let email = Email {
            from: super::super::EmailAddress::parse("DoNotReply@x.azurecomm.net").unwrap(),
            to: super::super::Recipients::parse("a@contoso.com;b@contoso.com").unwrap(),
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
