//! A fake of the ACS email REST API (`POST /emails:send`, `GET
//! /emails/operations/{id}`) that checks every request the way the service
//! documents it, with its own code rather than the transport's: it
//! recomputes the HMAC-SHA256 signature from the method, path and query,
//! `x-ms-date` and `Host` it received and the SHA-256 of the body it
//! received, or checks the bearer token; checks the body's JSON shape, the
//! `api-version` and the `Operation-Id`. It answers 401/400 on any mismatch
//! and records why.
//!
//! Scripted ([`FakeAcs::start`] then [`FakeAcs::script`]): each send and
//! poll gets the next scripted answer. Accepting ([`FakeAcs::accepting`]):
//! every valid send is accepted and succeeds, as a healthy service would.

use super::identity::ManagedIdentityFake;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use marketplace_leads::email::Email;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use url::Url;
use warp::http::{HeaderMap, Method, Response};
use warp::path::FullPath;
use warp::Filter;

pub const API_VERSION: &str = "2023-03-31";
/// The scope an ACS token is asked for.
pub const ACS_SCOPE: &str = "https://communication.azure.com/.default";
/// The resource a managed-identity token for ACS is asked for.
pub const ACS_RESOURCE: &str = "https://communication.azure.com";
const SIGNED_HEADERS: &str = "SignedHeaders=x-ms-date;host;x-ms-content-sha256";

/// What the service accepts as authorization.
#[derive(Clone)]
pub enum ServerAuth {
    /// HMAC-SHA256 with this access key (base64).
    Key(&'static str),
    /// Exactly this bearer token.
    Bearer(String),
    /// A bearer token this managed-identity endpoint issued for ACS.
    Issued(ManagedIdentityFake),
}

/// A scripted answer.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

#[derive(Clone)]
pub struct Recorded {
    pub at: Instant,
    pub method: Method,
    pub path: String,
    pub query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct State {
    auth: ServerAuth,
    /// The Operation-Id the next sends must carry.
    operation_id: String,
    send_replies: VecDeque<Reply>,
    poll_replies: VecDeque<Reply>,
    /// Requests to the ACS API (not the token endpoint), in order.
    requests: Vec<Recorded>,
    /// Every check that failed: `"METHOD path: reason"`.
    problems: Vec<String>,
    /// Accept every valid send (no script).
    accept_all: bool,
    /// Operations accepted that way, and their bodies.
    accepted: Vec<(String, Value)>,
}

pub struct FakeAcs {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeAcs {
    /// A fake that accepts every valid send and reports it succeeded.
    pub async fn accepting(auth: ServerAuth) -> Self {
        let fake = Self::start(auth).await;
        fake.state.lock().unwrap().accept_all = true;
        fake
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bodies of the sends accepted without a script, in order.
    pub fn sent(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state
            .accepted
            .iter()
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// A scripted fake: each send and poll answered as [`FakeAcs::script`] says.
    pub async fn start(auth: ServerAuth) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            auth,
            operation_id: String::new(),
            send_replies: VecDeque::new(),
            poll_replies: VecDeque::new(),
            requests: Vec::new(),
            problems: Vec::new(),
            accept_all: false,
            accepted: Vec::new(),
        }));
        let shared = state.clone();
        let routes = warp::method()
            .and(warp::path::full())
            .and(warp::query::raw().or(warp::any().map(String::new)).unify())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(
                move |method: Method, path: FullPath, query: String, headers, body| {
                    let mut state = shared.lock().unwrap();
                    handle(&mut state, method, path.as_str(), query, headers, body)
                },
            );
        tokio::spawn(warp::serve(routes).incoming(listener).run());
        Self { addr, state }
    }

    pub fn endpoint(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).unwrap()
    }

    /// Scripts the next send of `email`: the answers to `emails:send` and to
    /// the polls that follow.
    /// What the service accepts from now on.
    pub fn set_auth(&self, auth: ServerAuth) {
        self.state.lock().unwrap().auth = auth;
    }

    pub fn script(&self, email: &Email, send: Vec<Reply>, poll: Vec<Reply>) {
        let mut state = self.state.lock().unwrap();
        state.operation_id = email.idempotency_key.hyphenated().to_string();
        state.send_replies.extend(send);
        state.poll_replies.extend(poll);
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    pub fn unanswered(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.send_replies.len(), state.poll_replies.len())
    }

    /// 202 as ACS answers it; `with_location: false` leaves out
    /// `Operation-Location` so the client must build the status URL itself.
    pub fn accepted(&self, email: &Email, with_location: bool) -> Reply {
        let id = email.idempotency_key.hyphenated().to_string();
        let mut headers = vec![("retry-after", "0".to_owned())];
        if with_location {
            headers.push((
                "operation-location",
                format!(
                    "http://{}/emails/operations/{id}?api-version={API_VERSION}",
                    self.addr
                ),
            ));
        }
        Reply {
            status: 202,
            headers,
            body: json!({"id": id, "status": "Running", "error": null}),
        }
    }
}

pub fn status(email: &Email, status: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("retry-after", "0".to_owned())],
        body: json!({"id": email.idempotency_key.hyphenated().to_string(), "status": status}),
    }
}

pub fn failed(email: &Email, code: &str, message: &str) -> Reply {
    Reply {
        status: 200,
        headers: Vec::new(),
        body: json!({
            "id": email.idempotency_key.hyphenated().to_string(),
            "status": "Failed",
            "error": {"code": code, "message": message}
        }),
    }
}

pub fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: json!({"error": {"code": code, "message": message}}),
    }
}

pub fn throttled(retry_after: &str) -> Reply {
    Reply {
        headers: vec![("retry-after", retry_after.to_owned())],
        ..error_reply(429, "TooManyRequests", "Too many requests, retry later.")
    }
}

fn respond(reply: Reply) -> Response<String> {
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json");
    for (name, value) in reply.headers {
        response = response.header(name, value);
    }
    response.body(reply.body.to_string()).unwrap()
}

fn handle(
    state: &mut State,
    method: Method,
    path: &str,
    query: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response<String> {
    state.requests.push(Recorded {
        at: Instant::now(),
        method: method.clone(),
        path: path.to_owned(),
        query: query.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let what = format!("{method} {path}");
    let is_send = match (&method, path) {
        (&Method::POST, "/emails:send") => true,
        (&Method::GET, p) if p.starts_with("/emails/operations/") => false,
        _ => {
            state.problems.push(format!("{what}: no such route"));
            return respond(error_reply(404, "NotFound", "Not found."));
        }
    };
    let check = || -> Result<(), (u16, String)> {
        check_api_version(&query).map_err(|p| (400, p))?;
        match &state.auth {
            ServerAuth::Key(key) => check_hmac(key, &method, path, &query, &headers, &body),
            ServerAuth::Bearer(token) => check_bearer(token, &headers),
            ServerAuth::Issued(identity) => check_issued(identity, &headers),
        }
        .map_err(|p| (401, p))?;
        if is_send {
            let operation_id = headers.get("operation-id").and_then(|v| v.to_str().ok());
            let expected = if state.accept_all {
                operation_id.filter(|id| uuid::Uuid::parse_str(id).is_ok())
            } else {
                Some(state.operation_id.as_str())
            };
            if expected.is_none() || operation_id != expected {
                return Err((400, format!("Operation-Id is {operation_id:?}")));
            }
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
            if content_type != Some("application/json") {
                return Err((400, format!("Content-Type is {content_type:?}")));
            }
            check_body(&body).map_err(|p| (400, p))?;
        } else {
            let id = path.trim_start_matches("/emails/operations/");
            let known = if state.accept_all {
                state.accepted.iter().any(|(accepted, _)| accepted == id)
            } else {
                id == state.operation_id
            };
            if !known {
                return Err((404, format!("unknown operation {id}")));
            }
        }
        Ok(())
    };
    if let Err((status, problem)) = check() {
        state.problems.push(format!("{what}: {problem}"));
        return respond(match status {
            401 => error_reply(401, "Denied", "Denied by the resource provider."),
            _ => error_reply(status, "BadRequest", &problem),
        });
    }
    let next = if is_send {
        state.send_replies.pop_front()
    } else {
        state.poll_replies.pop_front()
    };
    if next.is_none() && state.accept_all {
        let id = if is_send {
            let id = headers
                .get("operation-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let sent = serde_json::from_slice(&body).unwrap_or(Value::Null);
            state.accepted.push((id.clone(), sent));
            id
        } else {
            path.trim_start_matches("/emails/operations/").to_owned()
        };
        return respond(if is_send {
            Reply {
                status: 202,
                headers: vec![
                    ("retry-after", "0".to_owned()),
                    (
                        "operation-location",
                        format!(
                            "{}emails/operations/{id}?api-version={API_VERSION}",
                            endpoint_of(&headers)
                        ),
                    ),
                ],
                body: json!({"id": id, "status": "Running", "error": null}),
            }
        } else {
            Reply {
                status: 200,
                headers: vec![("retry-after", "0".to_owned())],
                body: json!({"id": id, "status": "Succeeded"}),
            }
        });
    }
    match next {
        Some(reply) => respond(reply),
        None => {
            state.problems.push(format!("{what}: unexpected request"));
            respond(error_reply(500, "InternalError", "unscripted"))
        }
    }
}

fn check_api_version(query: &str) -> Result<(), String> {
    let versions: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned())
        .collect();
    if versions != [API_VERSION] {
        return Err(format!("api-version is {versions:?}"));
    }
    Ok(())
}

/// The documented HMAC-SHA256 scheme, computed from what was received.
fn check_hmac(
    key: &str,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| format!("no {name} header"))
    };

    let date = header("x-ms-date")?;
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let sent_at = time::PrimitiveDateTime::parse(date, format)
        .map_err(|e| format!("x-ms-date {date:?} is not RFC 1123: {e}"))?
        .assume_utc();
    // ACS refuses requests dated more than 15 minutes away.
    if (time::OffsetDateTime::now_utc() - sent_at).abs() > time::Duration::minutes(15) {
        return Err(format!("x-ms-date {date:?} is too far from now"));
    }

    let content_hash = b64.encode(Sha256::digest(body));
    if header("x-ms-content-sha256")? != content_hash {
        return Err("x-ms-content-sha256 does not match the body".to_owned());
    }

    let host = header("host")?;
    let authorization = header("authorization")?;
    let (signed_headers, signature) = authorization
        .strip_prefix("HMAC-SHA256 ")
        .and_then(|rest| rest.split_once("&Signature="))
        .ok_or_else(|| {
            "Authorization is not HMAC-SHA256 SignedHeaders=...&Signature=...".to_owned()
        })?;
    if signed_headers != SIGNED_HEADERS {
        return Err(format!("signed headers are {signed_headers:?}"));
    }
    let path_and_query = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    };
    let string_to_sign = format!("{method}\n{path_and_query}\n{date};{host};{content_hash}");
    let mut mac = Hmac::<Sha256>::new_from_slice(&b64.decode(key).unwrap()).unwrap();
    mac.update(string_to_sign.as_bytes());
    let signature = b64
        .decode(signature)
        .map_err(|_| "the signature is not base64".to_owned())?;
    mac.verify_slice(&signature)
        .map_err(|_| "signature mismatch".to_owned())
}

fn check_bearer(token: &str, headers: &HeaderMap) -> Result<(), String> {
    let expected = format!("Bearer {token}");
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(got) if got == expected => Ok(()),
        Some(_) => Err("wrong bearer token".to_owned()),
        None => Err("no Authorization header".to_owned()),
    }
}

/// `http://<Host>/`: where the request came in.
fn endpoint_of(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}/")
}

/// A bearer token `identity` issued for Communication Services.
fn check_issued(identity: &ManagedIdentityFake, headers: &HeaderMap) -> Result<(), String> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| "no bearer token".to_owned())?;
    match identity.issued_for(token) {
        Some(resource) if resource.trim_end_matches('/') == ACS_RESOURCE => Ok(()),
        Some(resource) => Err(format!("a token for {resource}, not {ACS_RESOURCE}")),
        None => Err("a token the managed identity did not issue".to_owned()),
    }
}

/// Exactly the documented fields, nothing else.
fn check_body(body: &[u8]) -> Result<(), String> {
    fn keys(value: &Value, what: &str, expected: &[&str]) -> Result<(), String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{what} is not an object"))?;
        let mut got: Vec<&str> = object.keys().map(String::as_str).collect();
        got.sort_unstable();
        let mut expected = expected.to_vec();
        expected.sort_unstable();
        if got != expected {
            return Err(format!("{what} has keys {got:?}, expected {expected:?}"));
        }
        Ok(())
    }
    fn string(value: &Value, what: &str) -> Result<(), String> {
        match value.as_str() {
            Some(s) if !s.is_empty() => Ok(()),
            _ => Err(format!("{what} is not a non-empty string")),
        }
    }
    let body: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    keys(&body, "body", &["senderAddress", "recipients", "content"])?;
    string(&body["senderAddress"], "senderAddress")?;
    keys(&body["recipients"], "recipients", &["to"])?;
    let to = body["recipients"]["to"]
        .as_array()
        .filter(|to| !to.is_empty())
        .ok_or_else(|| "recipients.to is not a non-empty array".to_owned())?;
    for recipient in to {
        keys(recipient, "recipients.to[]", &["address"])?;
        string(&recipient["address"], "recipients.to[].address")?;
    }
    keys(
        &body["content"],
        "content",
        &["subject", "plainText", "html"],
    )?;
    for field in ["subject", "plainText", "html"] {
        string(&body["content"][field], field)?;
    }
    Ok(())
}
