//! Small filters the routes are composed of: a case-insensitive path, the
//! shared state, the standalone key check, and a size-limited body.

use super::AppState;
use crate::domain::{Secret, MAX_BODY_BYTES};
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use warp::{Filter, Rejection};

/// Matches `path` exactly but for ASCII case: the Functions host routes
/// `/api/leadingest` to LeadIngest and forwards the path as the caller wrote it.
pub(super) fn route(path: &'static str) -> impl Filter<Extract = (), Error = Rejection> + Clone {
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

pub(super) fn with_state(
    state: AppState,
) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

#[derive(Debug)]
pub(super) struct Unauthorized;
impl warp::reject::Reject for Unauthorized {}

#[derive(Debug)]
pub(super) struct BodyTooLarge;
impl warp::reject::Reject for BodyTooLarge {}

#[derive(Debug)]
pub(super) struct BodyUnreadable;
impl warp::reject::Reject for BodyUnreadable {}

/// Passes when no key is required, or when `?code=` or `x-functions-key`
/// holds it. Compared in constant time. Headers are read as raw bytes: a
/// header we do not need must never cost a lead.
pub(super) fn authorized(
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
pub(super) fn limited_body() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
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
