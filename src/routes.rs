//! The HTTP endpoints, as warp filters, with one handler per route.
//!
//! The same routes serve under the Functions host and standalone:
//!
//! - `GET /` — readiness (the host polls it until it answers).
//! - `POST /api/LeadIngest` — Partner Center's lead (forwarded by the host).
//! - `POST /LeadDigest` — the host's timer invocation.
//! - `POST /admin/functions/LeadDigest` — run the digest now (standalone;
//!   under the host this path is the host's own).
//!
//! Standalone mode has no host in front of it, so when a key is configured
//! every route but readiness requires it (`?code=` or `x-functions-key`).

use crate::clock::Clock;
use crate::configuration::Secret;
use crate::digest::{DigestError, DigestRunner};
use crate::functions::{InvokeResponse, TimerInvocation};
use crate::lead::{Lead, LeadError, MAX_BODY_BYTES};
use crate::store::{LeadStore, SaveOutcome, StoreError};
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use serde::Serialize;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use subtle::ConstantTimeEq;
use warp::http::StatusCode;
use warp::reply::{self, Response};
use warp::{Filter, Rejection, Reply};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: LeadStore,
    pub digest: DigestRunner,
    /// `Some` only in standalone mode with `LEAD_INGEST_KEY` set.
    pub required_key: Option<Arc<Secret>>,
    pub clock: Clock,
}

/// All routes, with JSON errors for anything that does not match.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    readiness()
        .or(lead_ingest(state.clone()))
        .unify()
        .or(timer_invocation(state.clone()))
        .unify()
        .or(manual_digest(state))
        .unify()
        .recover(handle_rejection)
        .unify()
}

/// GET /
fn readiness() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path::end()
        .and(warp::get())
        .map(|| reply::json(&serde_json::json!({"status": "ready"})).into_response())
}

/// POST /api/LeadIngest
fn lead_ingest(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    route("/api/LeadIngest")
        .and(warp::post())
        .and(authorized(state.required_key.clone()))
        .and(limited_body())
        .and(with_state(state))
        .then(ingest)
}

/// POST /LeadDigest
fn timer_invocation(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    route("/LeadDigest")
        .and(warp::post())
        .and(authorized(state.required_key.clone()))
        .and(limited_body())
        .and(with_state(state))
        .then(invoke_digest)
}

/// POST /admin/functions/LeadDigest
fn manual_digest(state: AppState) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    route("/admin/functions/LeadDigest")
        .and(warp::post())
        .and(authorized(state.required_key.clone()))
        .and(with_state(state))
        .then(run_digest_now)
}

/// Matches `path` exactly but for ASCII case: the Functions host routes
/// `/api/leadingest` to LeadIngest and forwards the path as the caller wrote it.
fn route(path: &'static str) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path::full()
        .and_then(move |full: warp::path::FullPath| async move {
            if full.as_str().eq_ignore_ascii_case(path) {
                Ok(())
            } else {
                Err(warp::reject::not_found())
            }
        })
        .untuple_one()
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

#[derive(Debug)]
struct Unauthorized;
impl warp::reject::Reject for Unauthorized {}

#[derive(Debug)]
struct BodyTooLarge;
impl warp::reject::Reject for BodyTooLarge {}

#[derive(Debug)]
struct BodyUnreadable;
impl warp::reject::Reject for BodyUnreadable {}

/// Passes when no key is required, or when `?code=` or `x-functions-key`
/// holds it. Compared in constant time. Headers are read as raw bytes: a
/// header we do not need must never cost a lead.
fn authorized(
    required: Option<Arc<Secret>>,
) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::header::headers_cloned()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(move |headers: warp::http::HeaderMap, query: String| {
            let required = required.clone();
            async move {
                let Some(required) = required else {
                    return Ok(());
                };
                let matches = |given: &[u8]| bool::from(given.ct_eq(required.expose().as_bytes()));
                let by_header = headers
                    .get("x-functions-key")
                    .is_some_and(|v| matches(v.as_bytes()));
                let by_query = url::form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "code")
                    .is_some_and(|(_, v)| matches(v.as_bytes()));
                if by_header || by_query {
                    Ok(())
                } else {
                    Err(warp::reject::custom(Unauthorized))
                }
            }
        })
        .untuple_one()
}

/// The body, at most [`MAX_BODY_BYTES`]: refused early from
/// `Content-Length`, and cut off while streaming when there is none.
fn limited_body() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(|length: Option<u64>, body| async move {
            if length.is_some_and(|l| l > MAX_BODY_BYTES as u64) {
                return Err(warp::reject::custom(BodyTooLarge));
            }
            collect_limited(body).await
        })
}

async fn collect_limited<S, B>(body: S) -> Result<Bytes, Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| warp::reject::custom(BodyUnreadable))?;
        if collected.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(warp::reject::custom(BodyTooLarge));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            collected.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(collected.freeze())
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

fn error_response(status: StatusCode, reason: &str) -> Response {
    reply::with_status(reply::json(&ErrorBody { error: reason }), status).into_response()
}

#[derive(Serialize)]
struct Stored<'a> {
    id: &'a str,
    status: &'a str,
}

/// Stores one lead. 201 new, 200 duplicate, 400 not a lead, 503 storage
/// unavailable — never 2xx unless the lead is in the table.
async fn ingest(body: Bytes, state: AppState) -> Response {
    let started = Instant::now();
    let received_at = state.clock.now();
    let bytes = body.len();
    let lead = match Lead::parse(&body) {
        Ok(lead) => lead,
        Err(error) => {
            let status = match error {
                LeadError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                _ => StatusCode::BAD_REQUEST,
            };
            tracing::warn!(
                status = status.as_u16(), bytes, reason = %error,
                duration_ms = started.elapsed().as_millis() as u64,
                "lead rejected"
            );
            return error_response(status, &error.to_string());
        }
    };

    match state.store.save(&lead, received_at).await {
        Ok(outcome) => {
            let (id, status, label) = match &outcome {
                SaveOutcome::Created(id) => (id, StatusCode::CREATED, "created"),
                SaveOutcome::Duplicate(id) => (id, StatusCode::OK, "duplicate"),
            };
            tracing::info!(
                lead_id = %id, status = status.as_u16(), outcome = label,
                test_lead = lead.is_test, bytes,
                duration_ms = started.elapsed().as_millis() as u64,
                "lead stored"
            );
            reply::with_status(
                reply::json(&Stored {
                    id: id.as_str(),
                    status: label,
                }),
                status,
            )
            .into_response()
        }
        Err(error) => {
            let (status, reason) = match &error {
                StoreError::Unavailable(_) | StoreError::Conflict => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "lead storage is unavailable; the lead may not have been stored: send it again (a resend is never stored twice)",
                ),
                StoreError::Rejected(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the lead could not be stored",
                ),
            };
            // The raw body goes to the error log so an operator can recover
            // the lead by hand: Partner Center cannot re-send it. "May": a
            // write can land just as storage fails and its answer is lost;
            // posting the body again is then answered 200 duplicate.
            tracing::error!(
                status = status.as_u16(), error = %error, raw_body = %lead.raw,
                duration_ms = started.elapsed().as_millis() as u64,
                "lead NOT confirmed stored"
            );
            error_response(status, reason)
        }
    }
}

/// The host's timer invocation: runs the digest and answers in the
/// host's invocation shape. Failures answer 500, logged to stdout first
/// because the host discards `Logs` of a failed invocation.
async fn invoke_digest(body: Bytes, state: AppState) -> Response {
    let invocation = TimerInvocation::parse(&body);
    if invocation.is_past_due() {
        tracing::info!("timer is past due; running now");
    }
    match state.digest.run(state.clock.now(), false).await {
        Ok(report) => {
            reply::json(&InvokeResponse::with_logs(vec![report.summary()])).into_response()
        }
        Err(error) => digest_failure(&error),
    }
}

/// Manual run, as the host's admin endpoint: 202 once the run is done
/// (the run is short, and waiting lets the caller see its outcome).
async fn run_digest_now(state: AppState) -> Response {
    match state.digest.run(state.clock.now(), false).await {
        Ok(report) => reply::with_status(
            reply::json(&serde_json::json!({
                "runId": report.run_id.to_string(),
                "outcome": report.outcome.label(),
                "leads": report.lead_count,
                "summary": report.summary(),
            })),
            StatusCode::ACCEPTED,
        )
        .into_response(),
        Err(error) => digest_failure(&error),
    }
}

fn digest_failure(error: &DigestError) -> Response {
    // Already logged in full by the run; the answer carries no secrets,
    // only our own message.
    let mut response =
        reply::json(&InvokeResponse::with_logs(vec![format!("{error}")])).into_response();
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, reason) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "no such endpoint")
    } else if rejection.find::<Unauthorized>().is_some() {
        (
            StatusCode::UNAUTHORIZED,
            "missing or wrong key: pass it as ?code= or x-functions-key",
        )
    } else if rejection.find::<BodyTooLarge>().is_some()
        || rejection.find::<warp::reject::PayloadTooLarge>().is_some()
    {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            "body is larger than 65536 bytes",
        )
    } else if rejection.find::<BodyUnreadable>().is_some() {
        (StatusCode::BAD_REQUEST, "the body could not be read")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else if rejection.find::<warp::reject::InvalidHeader>().is_some() {
        (StatusCode::BAD_REQUEST, "a header has an invalid value")
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        (StatusCode::BAD_REQUEST, "bad request")
    };
    if status != StatusCode::NOT_FOUND {
        tracing::warn!(status = status.as_u16(), reason, "request rejected");
    }
    Ok(error_response(status, reason))
}
