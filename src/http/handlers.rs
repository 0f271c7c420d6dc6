//! One plain `async fn` per route: ingest a lead (the [`crate::intake`]'s
//! outcome as a status), answer the host's timer invocations, run the
//! digest or a sweep on demand.

use super::filters::BodyRead;
use super::rejection::error_response;
use super::AppState;
use crate::digest::DigestError;
use crate::functions::{InvokeResponse, TimerInvocation};
use crate::intake::{refusal_status, Body, Ingested};
use crate::store::StoreError;
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
    let body = match &body {
        BodyRead::Complete(bytes) => Body::Complete(bytes),
        BodyRead::TooLarge { prefix, length } => Body::TooLarge {
            prefix,
            length: *length,
        },
    };
    let duration_ms = || started.elapsed().as_millis() as u64;
    match state.intake.ingest(body).await {
        Ingested::Stored {
            id,
            created,
            is_test,
            bytes,
        } => {
            let (status, label) = if created {
                (StatusCode::CREATED, "created")
            } else {
                (StatusCode::OK, "duplicate")
            };
            tracing::info!(
                lead_id = %id, status = status.as_u16(), outcome = label,
                test_lead = is_test, bytes, duration_ms = duration_ms(),
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
        Ingested::Refused {
            error,
            length,
            kept,
        } => {
            let status =
                StatusCode::from_u16(refusal_status(&error)).unwrap_or(StatusCode::BAD_REQUEST);
            let reason = error.to_string();
            match kept {
                Ok(id) => tracing::warn!(
                    status = status.as_u16(), bytes = length, reason, rejected_id = %id,
                    duration_ms = duration_ms(),
                    "lead rejected; its body is kept (handler leads rejected)"
                ),
                Err(e) => tracing::error!(
                    status = status.as_u16(), bytes = length, reason, error = %e,
                    duration_ms = duration_ms(),
                    "lead rejected and its body could NOT be kept"
                ),
            }
            error_response(status, &reason)
        }
        Ingested::NotStored { error, raw } => {
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
                status = status.as_u16(), error = %error, raw_body = %raw,
                duration_ms = duration_ms(),
                "lead NOT confirmed stored"
            );
            error_response(status, reason)
        }
    }
}

/// Health: 200 when storage answers within 5 s (a lead posted now would
/// be stored), else 503. The answer says nothing more, to anyone.
pub(super) async fn health(state: Arc<AppState>) -> Response {
    if state
        .intake
        .can_store(std::time::Duration::from_secs(5))
        .await
    {
        reply::json(&serde_json::json!({"status": "ok"})).into_response()
    } else {
        tracing::warn!("health check: storage did not answer");
        let mut response =
            reply::json(&serde_json::json!({"status": "unavailable"})).into_response();
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
    }
}

/// The host's timer invocation: runs the digest and answers in the
/// host's invocation shape. Failures answer 500, logged to stdout first
/// because the host discards `Logs` of a failed invocation.
pub(super) async fn invoke_digest(body: Bytes, state: Arc<AppState>) -> Response {
    let invocation = TimerInvocation::parse(&body);
    if invocation.is_past_due() {
        tracing::info!("timer is past due; running now");
    }
    let ran = state.digest.run(state.clock.now(), false).await;
    // The retention rides the digest's timer, after it, either way.
    let pruned = prune(&state).await;
    match ran {
        Ok(report) => {
            let logs = std::iter::once(report.summary()).chain(pruned).collect();
            reply::json(&InvokeResponse::with_logs(logs)).into_response()
        }
        Err(error) => digest_failure(&error),
    }
}

/// One retention run, when one is configured: its log line.
async fn prune(state: &AppState) -> Option<String> {
    let retention = state.retention.as_ref()?;
    Some(match retention.run(state.clock.now()).await {
        Ok(pruned) => format!(
            "retention: {} row(s) older than kept deleted{}",
            pruned.deleted,
            if pruned.more { "; more next run" } else { "" }
        ),
        Err(e) => {
            tracing::error!(error = %e, "retention run failed; the next digest run tries again");
            format!("retention failed: {e}")
        }
    })
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

/// Manual sweep, as the host's admin endpoint: 202 once it is done, with
/// what it did.
pub(super) async fn run_delivery_now(state: Arc<AppState>) -> Response {
    let Some(deliverer) = &state.deliverer else {
        return error_response(
            StatusCode::NOT_FOUND,
            "no delivery destination is configured",
        );
    };
    match deliverer.sweep(state.clock.now()).await {
        Ok(report) => reply::with_status(
            reply::json(&serde_json::json!({
                "delivered": report.delivered,
                "retrying": report.retrying,
                "dead": report.dead,
                "waiting": report.waiting,
                "summary": report.summary(),
            })),
            StatusCode::ACCEPTED,
        )
        .into_response(),
        Err(error) => {
            tracing::error!(error = %error, "delivery sweep failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the delivery sweep failed",
            )
        }
    }
}
