//! Refusals: every rejection becomes a status and a short JSON reason of
//! our own, `{"error": "..."}`, never an echo of the request.

use crate::domain::LeadError;
use serde::Serialize;
use std::convert::Infallible;
use warp::http::{Method, StatusCode};
use warp::reply::{self, Response};
use warp::{Rejection, Reply};

/// A known path asked for with a method it does not take.
#[derive(Debug)]
pub(super) struct WrongMethod {
    pub(super) allow: Method,
}
impl warp::reject::Reject for WrongMethod {}

#[derive(Debug)]
pub(super) struct Unauthorized;
impl warp::reject::Reject for Unauthorized {}

#[derive(Debug)]
pub(super) struct BodyTooLarge;
impl warp::reject::Reject for BodyTooLarge {}

#[derive(Debug)]
pub(super) struct BodyUnreadable;
impl warp::reject::Reject for BodyUnreadable {}

#[derive(Debug)]
pub(super) struct BodyTimedOut;
impl warp::reject::Reject for BodyTimedOut {}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
}

pub(crate) fn error_response(status: StatusCode, reason: &str) -> Response {
    reply::with_status(reply::json(&ErrorBody { error: reason }), status).into_response()
}

pub(super) async fn handle_rejection(rejection: Rejection) -> Result<Response, Infallible> {
    let too_large = LeadError::TooLarge.to_string();
    let mut allow = None;
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
            // The same words as a body found too large while parsing.
            too_large.as_str(),
        )
    } else if rejection.find::<BodyUnreadable>().is_some() {
        (StatusCode::BAD_REQUEST, "the body could not be read")
    } else if let Some(wrong) = rejection.find::<WrongMethod>() {
        allow = Some(wrong.allow.clone());
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    } else if rejection.find::<BodyTimedOut>().is_some() {
        (
            StatusCode::REQUEST_TIMEOUT,
            "the body did not arrive in time",
        )
    } else if rejection.find::<warp::reject::InvalidHeader>().is_some() {
        (StatusCode::BAD_REQUEST, "a header has an invalid value")
    } else {
        tracing::warn!(?rejection, "unhandled rejection");
        (StatusCode::BAD_REQUEST, "bad request")
    };
    if status != StatusCode::NOT_FOUND {
        tracing::warn!(status = status.as_u16(), reason, "request rejected");
    }
    let mut response = error_response(status, reason);
    if let Some(allow) = allow {
        if let Ok(value) = warp::http::HeaderValue::from_str(allow.as_str()) {
            response
                .headers_mut()
                .insert(warp::http::header::ALLOW, value);
        }
    }
    Ok(response)
}
