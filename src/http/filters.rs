//! Small filters the routes are composed of: an endpoint (path and
//! method), the shared state, the standalone key check, and a size- and
//! time-limited body.

use super::limits::BODY_READ_TIMEOUT;
use super::rejection::{BodyTimedOut, BodyTooLarge, BodyUnreadable, Unauthorized, WrongMethod};
use super::AppState;
use crate::domain::{Secret, MAX_BODY_BYTES};
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use std::convert::Infallible;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method};
use warp::{Filter, Rejection};

/// Matches `path` exactly but for ASCII case and a trailing `/` (the
/// Functions host routes `/api/leadingest` to LeadIngest and forwards the
/// path as the caller wrote it; a URL pasted with a `/` at the end must not
/// lose leads), then requires `method`.
pub(super) fn endpoint(
    path: &'static str,
    method: Method,
) -> impl Filter<Extract = (), Error = Rejection> + Clone {
    warp::path::full()
        .and(warp::method())
        .and_then(move |full: warp::path::FullPath, given: Method| {
            let method = method.clone();
            async move {
                let full = full.as_str();
                let full = if full.len() > 1 {
                    full.trim_end_matches('/')
                } else {
                    full
                };
                if !full.eq_ignore_ascii_case(path) {
                    Err(warp::reject::not_found())
                } else if given != method {
                    Err(warp::reject::custom(WrongMethod { allow: method }))
                } else {
                    Ok(())
                }
            }
        })
        .untuple_one()
}

/// The shared state, behind one `Arc`: a request clones a pointer, not the
/// state's clients and settings.
pub(super) fn with_state(
    state: Arc<AppState>,
) -> impl Filter<Extract = (Arc<AppState>,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

/// Passes when no key is required (under the Functions host, which checks
/// keys itself: then this costs nothing), or when `?code=` or
/// `x-functions-key` holds it. Compared in constant time; the header is
/// read as raw bytes, so a header we do not need can never cost a lead.
pub(super) fn authorized(required: Option<Arc<Secret>>) -> BoxedFilter<()> {
    let Some(required) = required else {
        return warp::any().boxed();
    };
    warp::header::value("x-functions-key")
        .map(Some)
        .or(warp::any().map(|| None))
        .unify()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and_then(move |header: Option<HeaderValue>, query: String| {
            let required = required.clone();
            async move {
                let matches = |given: &[u8]| bool::from(given.ct_eq(required.expose().as_bytes()));
                let by_header = header.is_some_and(|v| matches(v.as_bytes()));
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
        .boxed()
}

/// A request body as read: whole, or cut off at the limit.
#[derive(Debug)]
pub(super) enum BodyRead {
    Complete(Bytes),
    /// Longer than [`MAX_BODY_BYTES`]: its first bytes (none when its
    /// declared length said so), and its length when declared.
    TooLarge {
        prefix: Bytes,
        length: Option<u64>,
    },
}

/// The body, read up to [`MAX_BODY_BYTES`] within [`BODY_READ_TIMEOUT`]; a
/// longer one is cut off there, and one declared longer is not read at all.
pub(super) fn body() -> impl Filter<Extract = (BodyRead,), Error = Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(|length: Option<u64>, body| async move {
            // Declared too large: refused without reading a byte of it.
            if length.is_some_and(|l| l > MAX_BODY_BYTES as u64) {
                return Ok(BodyRead::TooLarge {
                    prefix: Bytes::new(),
                    length,
                });
            }
            match tokio::time::timeout(BODY_READ_TIMEOUT, collect_limited(body)).await {
                Ok(Ok((bytes, false))) => Ok(BodyRead::Complete(bytes)),
                Ok(Ok((prefix, true))) => Ok(BodyRead::TooLarge { prefix, length }),
                Ok(Err(rejection)) => Err(rejection),
                Err(_) => Err(warp::reject::custom(BodyTimedOut)),
            }
        })
}

/// The body, refused when over [`MAX_BODY_BYTES`].
pub(super) fn limited_body() -> impl Filter<Extract = (Bytes,), Error = Rejection> + Clone {
    body().and_then(|read: BodyRead| async move {
        match read {
            BodyRead::Complete(bytes) => Ok(bytes),
            BodyRead::TooLarge { .. } => Err(warp::reject::custom(BodyTooLarge)),
        }
    })
}

/// Up to [`MAX_BODY_BYTES`] of the body, and whether there was more.
async fn collect_limited<S, B>(body: S) -> Result<(Bytes, bool), Rejection>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| warp::reject::custom(BodyUnreadable))?;
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let room = MAX_BODY_BYTES - collected.len();
            if part.len() > room {
                collected.extend_from_slice(&part[..room]);
                return Ok((collected.freeze(), true));
            }
            collected.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok((collected.freeze(), false))
}
