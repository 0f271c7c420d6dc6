//! The HTTP endpoints, as warp filters, with one handler per route.
//!
//! The same routes serve under the Functions host and standalone:
//!
//! - `GET /` — readiness (the host polls it until it answers).
//! - `GET /api/Health` — can a lead be stored now? For an availability test:
//!   anonymous, and it answers only `ok` or `unavailable`.
//! - `POST /api/LeadIngest` — Partner Center's lead (forwarded by the host).
//! - `POST /LeadDigest` — the host's timer invocation of the digest.
//! - `POST /LeadDeliver` — the host's timer invocation of the delivery sweep.
//! - `POST /admin/functions/LeadDigest`, `POST /admin/functions/LeadDeliver`
//!   — run the digest or a delivery sweep now (standalone; under the host
//!   these paths are the host's own).
//!
//! Standalone mode has no host in front of it, so when a key is configured
//! every route but readiness requires it (`?code=` or `x-functions-key`).
//!
//! - [`filters`] — small filters the routes are composed of.
//! - [`handlers`] — one plain `async fn` per route.
//! - [`rejection`] — every refusal as a status and a short JSON reason.
//! - [`server`] — the accept loop, every connection bounded in time;
//!   [`limits`] — header and URI limits, checked before any filter runs.

mod filters;
mod handlers;
mod limits;
mod rejection;
pub mod server;

use crate::clock::Clock;
use crate::delivery::Deliverer;
use crate::digest::DigestRunner;
use crate::domain::Secret;
use crate::intake::Intake;
use filters::{authorized, body, endpoint, limited_body, with_state};
use std::convert::Infallible;
use std::sync::Arc;
use warp::http::Method;
use warp::reply::{self, Response};
use warp::{Filter, Rejection, Reply};

/// What the handlers share.
#[derive(Debug, Clone)]
pub struct AppState {
    pub intake: Intake,
    pub digest: DigestRunner,
    /// `None` when no delivery destination is configured.
    pub deliverer: Option<Deliverer>,
    /// `None` when leads are kept for good (no `LEADS_RETENTION_DAYS`).
    pub retention: Option<crate::retention::Retention>,
    /// `Some` only in standalone mode with `LEAD_INGEST_KEY` set.
    pub required_key: Option<Arc<Secret>>,
    pub clock: Clock,
}

/// All routes, with JSON errors for anything that does not match.
pub fn routes(
    state: AppState,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone + Send + Sync + 'static {
    let state = Arc::new(state);
    readiness()
        .or(health(state.clone()))
        .unify()
        .or(lead_ingest(state.clone()))
        .unify()
        .or(timer_invocation(state.clone()))
        .unify()
        .or(manual_digest(state.clone()))
        .unify()
        .or(delivery_invocation(state.clone()))
        .unify()
        .or(manual_delivery(state))
        .unify()
        .recover(rejection::handle_rejection)
        .unify()
}

/// GET /
fn readiness() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    endpoint("/", Method::GET)
        .map(|| reply::json(&serde_json::json!({"status": "ready"})).into_response())
}

/// GET /api/Health — no key, even standalone: it reveals nothing.
fn health(state: Arc<AppState>) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    endpoint("/api/Health", Method::GET)
        .and(with_state(state))
        .then(handlers::health)
}

/// POST /api/LeadIngest
fn lead_ingest(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    endpoint("/api/LeadIngest", Method::POST)
        .and(authorized(state.required_key.clone()))
        .and(body())
        .and(with_state(state))
        .then(handlers::ingest)
}

/// POST /LeadDigest
fn timer_invocation(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    endpoint("/LeadDigest", Method::POST)
        .and(authorized(state.required_key.clone()))
        .and(limited_body())
        .and(with_state(state))
        .then(handlers::invoke_digest)
}

/// POST /LeadDeliver
fn delivery_invocation(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    endpoint("/LeadDeliver", Method::POST)
        .and(authorized(state.required_key.clone()))
        .and(limited_body())
        .and(with_state(state))
        .then(handlers::invoke_delivery)
}

/// POST /admin/functions/LeadDigest
fn manual_digest(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    endpoint("/admin/functions/LeadDigest", Method::POST)
        .and(authorized(state.required_key.clone()))
        .and(with_state(state))
        .then(handlers::run_digest_now)
}

/// POST /admin/functions/LeadDeliver
fn manual_delivery(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    endpoint("/admin/functions/LeadDeliver", Method::POST)
        .and(authorized(state.required_key.clone()))
        .and(with_state(state))
        .then(handlers::run_delivery_now)
}
