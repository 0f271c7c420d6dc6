//! Serving the routes: our own accept loop over hyper, so that every
//! connection is bounded — standalone mode faces the network with no host in
//! front of it, and an idle, half-sent or trickled connection must never
//! hold a socket (or, at the file limit, keep real leads out).
//!
//! - headers must arrive within [`HEADER_READ_TIMEOUT`]; the same bound
//!   closes a keep-alive connection left idle that long;
//! - a body must arrive within [`BODY_READ_TIMEOUT`](super::limits::BODY_READ_TIMEOUT) (in the body filter);
//! - at most [`MAX_CONNECTIONS`] connections are open; more wait to be
//!   accepted;
//! - on shutdown, requests in flight finish (for at most [`DRAIN_TIMEOUT`]).

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::Filter;

/// Request headers (and the wait for the next request on a kept-alive
/// connection) must complete within this.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once.
pub const MAX_CONNECTIONS: usize = 256;
/// In-flight requests get this long to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);
/// What hyper itself accepts before it refuses with a bare status. We
/// refuse far less with a JSON reason ([`super::limits`]); these only stop
/// what could never reach us.
/// (hyper keeps header indices for this many per request: 1,000 of them
/// are ~48 KB, a small allocation.)
pub const HYPER_MAX_HEADERS: usize = 1_000;
const HYPER_MAX_BUF: usize = 1024 * 1024;

/// Serves `routes` on `listener` until `shutdown` resolves.
pub async fn serve<F>(listener: TcpListener, routes: F, shutdown: impl Future<Output = ()>)
where
    F: Filter<Extract = (warp::reply::Response,), Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    F::Future: Send,
{
    let service = warp::service(routes);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(HYPER_MAX_HEADERS)
        .max_buf_size(HYPER_MAX_BUF)
        .keep_alive(true);

    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // the semaphore is never closed
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: wait a moment rather
                    // than spin.
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let routes = service.clone();
        let handle =
            hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let mut routes = routes.clone();
                async move {
                    match super::limits::refusal(&request) {
                        Some(refusal) => Ok::<_, Infallible>(refusal),
                        None => tower_service::Service::call(&mut routes, request).await,
                    }
                }
            });
        let connection = http.serve_connection(TokioIo::new(stream), handle);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Errors here are the client's (reset, timed out): nothing to do.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
}
