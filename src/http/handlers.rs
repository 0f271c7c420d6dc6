//! One plain `async fn` per route: ingest a lead, answer the host's timer
//! invocation, run the digest on demand.

use super::filters::BodyRead;
use super::rejection::error_response;
use super::AppState;
use crate::digest::DigestError;
use crate::domain::{Lead, LeadError};
use crate::functions::{InvokeResponse, TimerInvocation};
use crate::store::{keys, SaveOutcome, Saved, StoreError, StoredLead};
use bytes::Bytes;
use serde::Serialize;
use std::sync::Arc;
use std::time::Instant;
use warp::http::StatusCode;
use warp::reply::{self, Response};
use warp::Reply;

#[derive(Serialize)]
struct Stored<'a> {
    id: &'a str,
    status: &'a str,
}

/// Stores one lead. 201 new, 200 duplicate, 400 not a lead, 503 storage
/// unavailable — never 2xx unless the lead is in the table.
pub(super) async fn ingest(body: BodyRead, state: Arc<AppState>) -> Response {
    let started = Instant::now();
    let received_at = state.clock.now();
    let parsed = match &body {
        BodyRead::Complete(bytes) => Lead::parse(bytes).map_err(|e| (e, bytes.len() as u64)),
        BodyRead::TooLarge { prefix, length } => {
            Err((LeadError::TooLarge, length.unwrap_or(prefix.len() as u64)))
        }
    };
    let lead = match parsed {
        Ok(lead) => lead,
        Err((error, length)) => {
            return refuse(&state, &body, error, length, received_at, started).await
        }
    };
    let bytes = lead.raw.len();

    let consumers = state.consumers_for(lead.is_test);
    match state.store.save_lead(&lead, received_at, &consumers).await {
        Ok(Saved { outcome, pending }) => {
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
            // The first delivery attempts start now, in the background: the
            // answer never waits for a destination, and what this leaves
            // undone the LeadDeliver sweep finishes.
            if let (SaveOutcome::Created(id), Some(deliverer)) = (&outcome, &state.deliverer) {
                let stored = StoredLead {
                    id: id.to_string(),
                    received_at: keys::truncate_to_micros(received_at),
                    lead,
                };
                tokio::spawn(
                    deliverer
                        .clone()
                        .deliver_new(stored, pending, state.clock.clone()),
                );
            }
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
                StoreError::Unavailable { .. } | StoreError::Conflict => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "lead storage is unavailable; the lead may not have been stored: send it again (a resend is never stored twice)",
                ),
                StoreError::Rejected { .. } | StoreError::Malformed(_) | StoreError::NoTable(_) => (
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

/// Answers a body that is not a lead, after keeping it in quarantine (a
/// lead Partner Center sent malformed is otherwise lost without trace).
async fn refuse(
    state: &AppState,
    body: &BodyRead,
    error: LeadError,
    length: u64,
    received_at: time::OffsetDateTime,
    started: Instant,
) -> Response {
    let status = match error {
        LeadError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::BAD_REQUEST,
    };
    let reason = error.to_string();
    let kept = match body {
        BodyRead::Complete(bytes) => bytes,
        BodyRead::TooLarge { prefix, .. } => prefix,
    };
    let quarantined = state
        .store
        .quarantine(received_at, status.as_u16(), &reason, length, kept)
        .await;
    let duration_ms = started.elapsed().as_millis() as u64;
    match quarantined {
        Ok(id) => tracing::warn!(
            status = status.as_u16(), bytes = length, reason, rejected_id = %id, duration_ms,
            "lead rejected; its body is kept (handler leads rejected)"
        ),
        Err(e) => tracing::error!(
            status = status.as_u16(), bytes = length, reason, error = %e, duration_ms,
            "lead rejected and its body could NOT be kept"
        ),
    }
    error_response(status, &reason)
}

/// The host's timer invocation: runs the digest and answers in the
/// host's invocation shape. Failures answer 500, logged to stdout first
/// because the host discards `Logs` of a failed invocation.
pub(super) async fn invoke_digest(body: Bytes, state: Arc<AppState>) -> Response {
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

/// The host's timer invocation of the delivery sweep. With no destination
/// configured there is nothing to do (the Bicep template switches the
/// function off then).
pub(super) async fn invoke_delivery(_body: Bytes, state: Arc<AppState>) -> Response {
    let Some(deliverer) = &state.deliverer else {
        let logs = vec!["no delivery destination is configured".to_owned()];
        return reply::json(&InvokeResponse::with_logs(logs)).into_response();
    };
    match deliverer.sweep(state.clock.now()).await {
        Ok(report) => {
            reply::json(&InvokeResponse::with_logs(vec![report.summary()])).into_response()
        }
        Err(error) => {
            tracing::error!(error = %error, "delivery sweep failed");
            let mut response = reply::json(&InvokeResponse::with_logs(vec![format!(
                "delivery sweep failed: {error}"
            )]))
            .into_response();
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// Manual run, as the host's admin endpoint: 202 once the run is done
/// (the run is short, and waiting lets the caller see its outcome).
pub(super) async fn run_digest_now(state: Arc<AppState>) -> Response {
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
