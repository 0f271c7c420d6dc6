//! What the CRM fakes ([`super::dataverse`], [`super::hubspot`]) share: the
//! faults a test scripts, each request as received (with the test clock's
//! time and the answer given), and a loopback warp server that hands every
//! request to one handler.

use bytes::Bytes;
use http::HeaderMap;
use marketplace_leads::clock::Clock;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{oneshot, Notify};
use warp::http::Response;
use warp::Filter;

/// How a fake answers a CRM request (never a token request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// As the service documents.
    None,
    /// `503 Service Unavailable`.
    Unavailable,
    /// `429 Too Many Requests` with `Retry-After` (seconds): Dataverse's
    /// service protection limits, HubSpot's secondly limit.
    Throttled { retry_after: u64 },
    /// The same `429`, answered only after `after`: a busy service whose
    /// refusal itself is slow (its `Retry-After` counts from the answer).
    ThrottledAfter { retry_after: u64, after: Duration },
    /// `401`: the bearer token is refused.
    Unauthorized,
    /// `403`: the identity lacks a permission (role, scope).
    Forbidden,
    /// The request takes effect, then its answer is held this long, or
    /// until [`Faults::release`]: a slow service, or a client that dies
    /// in mid-delivery.
    Hold(Duration),
}

/// The faults scripted for the next requests.
#[derive(Debug)]
pub struct Faults {
    /// Answers for the next requests, in order; then `otherwise`.
    pub script: VecDeque<Fault>,
    pub otherwise: Fault,
    /// Every request is answered 503 until then (by the fake's clock).
    pub unavailable_until: Option<OffsetDateTime>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            script: VecDeque::new(),
            otherwise: Fault::None,
            unavailable_until: None,
        }
    }
}

impl Faults {
    /// The fault for the request arriving at `now`.
    pub fn next(&mut self, now: OffsetDateTime) -> Fault {
        if self.unavailable_until.is_some_and(|until| now < until) {
            return Fault::Unavailable;
        }
        self.script
            .pop_front()
            .unwrap_or_else(|| self.otherwise.clone())
    }
}

/// The controls both CRM fakes share: faults scripted or standing, an
/// outage by the test clock, answers held back.
pub trait FaultControls {
    fn server(&self) -> &Server;
    fn clock(&self) -> &SharedClock;
    fn with_faults(&self, change: impl FnOnce(&mut Faults));

    /// Times requests (and `unavailable_for`) by `clock`: the test app's.
    fn set_clock(&self, clock: Clock) {
        self.clock().set(clock);
    }

    /// Faults for the next requests, in order.
    fn script(&self, faults: impl IntoIterator<Item = Fault>) {
        self.with_faults(|f| f.script.extend(faults));
    }

    /// The fault of every request after the scripted ones.
    fn set_fault(&self, fault: Fault) {
        self.with_faults(|f| f.otherwise = fault);
    }

    /// Answers 503 for `duration` from now, by the fake's clock.
    fn unavailable_for(&self, duration: Duration) {
        let until = self.clock().now() + duration;
        self.with_faults(|f| f.unavailable_until = Some(until));
    }

    /// Sends every held answer now.
    fn release_holds(&self) {
        self.server().release();
    }
}

/// One request as received, with the answer's status.
#[derive(Debug, Clone)]
pub struct Request {
    /// The fake's clock (the test application's clock when shared).
    pub at: OffsetDateTime,
    pub method: String,
    /// Path and query, as sent (still percent-encoded).
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The answer: status, headers (lowercase names) and body.
    pub status: u16,
    pub answer_headers: Vec<(&'static str, String)>,
    pub answer_body: String,
}

impl Request {
    pub fn new(at: OffsetDateTime, incoming: &Incoming, answer: &Answer) -> Self {
        Self {
            at,
            method: incoming.method.clone(),
            path: incoming.path_and_query(),
            headers: incoming.headers.clone(),
            body: incoming.body.clone(),
            status: answer.status,
            answer_headers: answer.headers.clone(),
            answer_body: answer.body.clone(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// A header of the answer.
    pub fn answer_header(&self, name: &str) -> Option<&str> {
        self.answer_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A request handed to a fake's handler.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: String,
    /// The path, percent-encoded as sent.
    pub path: String,
    /// The raw query (empty without one).
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn path_and_query(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// The query's pairs, decoded.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// Whether `Content-Type` is `application/json`, with at most a UTF-8
    /// charset (and `odata.metadata`) as parameters.
    pub fn is_json(&self) -> bool {
        let Some(value) = self.header("content-type") else {
            return false;
        };
        let mut parts = value.split(';').map(str::trim);
        if !parts
            .next()
            .is_some_and(|t| t.eq_ignore_ascii_case("application/json"))
        {
            return false;
        }
        parts.all(|param| {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            let value = value.trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "charset" => value.eq_ignore_ascii_case("utf-8"),
                "odata.metadata" => true,
                _ => false,
            }
        })
    }
}

/// A fake's answer: status, headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Hold the answer this long (or until released) before sending it.
    pub hold: Option<Duration>,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json;charset=utf-8".into())],
            body: body.to_string(),
            hold: None,
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            hold: None,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.into()));
        self
    }
}

/// A running fake server on a loopback port.
pub struct Server {
    pub addr: SocketAddr,
    release: Arc<Notify>,
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Serves every request with `handle`, on a free loopback port.
    pub async fn start<H, F>(handle: H) -> Self
    where
        H: Fn(Incoming) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = Answer> + Send + 'static,
    {
        let release = Arc::new(Notify::new());
        let released = release.clone();
        let query = warp::query::raw().or(warp::any().map(String::new)).unify();
        let route = warp::method()
            .and(warp::path::full())
            .and(query)
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .then(
                move |method: warp::http::Method,
                      path: warp::path::FullPath,
                      query: String,
                      headers: HeaderMap,
                      body: Bytes| {
                    let handle = handle.clone();
                    let released = released.clone();
                    async move {
                        let answer = handle(Incoming {
                            method: method.as_str().to_owned(),
                            path: path.as_str().to_owned(),
                            query,
                            headers,
                            body,
                        })
                        .await;
                        if let Some(hold) = answer.hold {
                            // The request has taken effect; the client hears
                            // nothing until then (and nothing at all if it
                            // is gone by then).
                            tokio::select! {
                                _ = tokio::time::sleep(hold) => {}
                                _ = released.notified() => {}
                            }
                        }
                        let mut response = Response::builder().status(answer.status);
                        for (name, value) in &answer.headers {
                            response = response.header(*name, value.as_str());
                        }
                        response.body(answer.body).expect("a response")
                    }
                },
            );
        let (addr, stop) = crate::serve_locally(route, 0).await;
        Self {
            addr,
            release,
            stop: Some(stop),
        }
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends every held answer now.
    pub fn release(&self) {
        self.release.notify_waiters();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.release();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fake's time: the test application's clock once shared with it.
#[derive(Debug, Clone, Default)]
pub struct SharedClock(Arc<std::sync::Mutex<Clock>>);

impl SharedClock {
    pub fn set(&self, clock: Clock) {
        *self.0.lock().unwrap() = clock;
    }

    pub fn now(&self) -> OffsetDateTime {
        self.0.lock().unwrap().now()
    }
}

/// RFC 3339 with milliseconds, as HubSpot writes times.
pub fn iso_millis(at: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        at.month() as u8,
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}
