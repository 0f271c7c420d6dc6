//! Limits on a request's headers and URI, checked on the request as hyper
//! parsed it — before any filter runs, and without copying anything — and
//! refused with our JSON: far beyond any real caller (Partner Center, the
//! Functions host), they only stop abuse.

use super::rejection::error_response;
use std::time::Duration;
use warp::http::{Request, StatusCode};
use warp::reply::Response;

/// A request body must complete within this.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Headers a request may carry, in number and in bytes.
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// The longest path and query.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The refusal for a request over a limit, if it is.
pub fn refusal<B>(request: &Request<B>) -> Option<Response> {
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "too many or too large headers",
        ));
    }
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(error_response(
            StatusCode::URI_TOO_LONG,
            "the URL is too long",
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_over_a_limit_are_refused_with_json() {
        let ok = Request::get("/api/LeadIngest?code=x").body(()).unwrap();
        assert!(refusal(&ok).is_none());
        let mut many = Request::get("/").body(()).unwrap();
        for i in 0..=MAX_HEADERS {
            many.headers_mut().insert(
                format!("x-h{i}").parse::<warp::http::HeaderName>().unwrap(),
                "v".parse().unwrap(),
            );
        }
        let refused = refusal(&many).unwrap();
        assert_eq!(
            refused.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(refused.headers()["content-type"], "application/json");
        let long = Request::get(format!("/?q={}", "a".repeat(MAX_URI_BYTES)))
            .body(())
            .unwrap();
        assert_eq!(refusal(&long).unwrap().status(), StatusCode::URI_TOO_LONG);
    }
}
