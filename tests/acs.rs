//! The ACS email transport against a local fake of the ACS email REST API.
//!
//! The fake checks every request the way the service documents it, with its
//! own code rather than the transport's: it recomputes the HMAC-SHA256
//! signature from the method, path and query, `x-ms-date` and `Host` it
//! received and the SHA-256 of the body it received, checks the body's JSON
//! shape, the `api-version` and the `Operation-Id`. It answers 401/400 on any
//! mismatch and records why, so every test can assert both the transport's
//! result and what the fake saw.

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use marketplace_leads::domain::{EmailAddress, Recipients, Secret};
use marketplace_leads::email::acs::{AcsAuth, AcsMailer};
use marketplace_leads::email::{Email, Receipt, SendError};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::fakes::FakeCredential;
use url::Url;
use uuid::Uuid;
use warp::http::{HeaderMap, Method, Response};
use warp::path::FullPath;
use warp::Filter;

const API_VERSION: &str = "2023-03-31";
/// The key the fake service knows (base64, as in a connection string).
const SERVER_KEY: &str = "c2VydmVyLXNpZGUtYWNzLWtleS1mb3ItdGVzdHMtb25seQ==";
/// A different, equally valid key.
const WRONG_KEY: &str = "d3Jvbmcta2V5LWNvbmZpZ3VyZWQtaW4tdGhlLWNsaWVudA==";
/// The scope an ACS token is asked for.
const ACS_SCOPE: &str = "https://communication.azure.com/.default";
const SIGNED_HEADERS: &str = "SignedHeaders=x-ms-date;host;x-ms-content-sha256";
/// No test may take longer than this to get an answer from `send`.
const SEND_GUARD: Duration = Duration::from_secs(30);

#[derive(Clone)]
enum ServerAuth {
    Key(&'static str),
    Bearer(String),
}

/// A scripted answer.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

#[derive(Clone)]
struct Recorded {
    at: Instant,
    method: Method,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Bytes,
}

impl Recorded {
    fn header(&self, name: &str) -> Option<&str> {
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
}

struct FakeAcs {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl FakeAcs {
    async fn start(auth: ServerAuth) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            auth,
            operation_id: String::new(),
            send_replies: VecDeque::new(),
            poll_replies: VecDeque::new(),
            requests: Vec::new(),
            problems: Vec::new(),
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

    fn endpoint(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).unwrap()
    }

    /// Scripts the next send of `email`: the answers to `emails:send` and to
    /// the polls that follow.
    /// What the service accepts from now on.
    fn set_auth(&self, auth: ServerAuth) {
        self.state.lock().unwrap().auth = auth;
    }

    fn script(&self, email: &Email, send: Vec<Reply>, poll: Vec<Reply>) {
        let mut state = self.state.lock().unwrap();
        state.operation_id = email.idempotency_key.hyphenated().to_string();
        state.send_replies.extend(send);
        state.poll_replies.extend(poll);
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    fn unanswered(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap();
        (state.send_replies.len(), state.poll_replies.len())
    }

    /// 202 as ACS answers it; `with_location: false` leaves out
    /// `Operation-Location` so the client must build the status URL itself.
    fn accepted(&self, email: &Email, with_location: bool) -> Reply {
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

fn status(email: &Email, status: &str) -> Reply {
    Reply {
        status: 200,
        headers: vec![("retry-after", "0".to_owned())],
        body: json!({"id": email.idempotency_key.hyphenated().to_string(), "status": status}),
    }
}

fn failed(email: &Email, code: &str, message: &str) -> Reply {
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

fn error_reply(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: json!({"error": {"code": code, "message": message}}),
    }
}

fn throttled(retry_after: &str) -> Reply {
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
        }
        .map_err(|p| (401, p))?;
        if is_send {
            let operation_id = headers.get("operation-id").and_then(|v| v.to_str().ok());
            if operation_id != Some(state.operation_id.as_str()) {
                return Err((400, format!("Operation-Id is {operation_id:?}")));
            }
            let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
            if content_type != Some("application/json") {
                return Err((400, format!("Content-Type is {content_type:?}")));
            }
            check_body(&body).map_err(|p| (400, p))?;
        } else {
            let id = path.trim_start_matches("/emails/operations/");
            if id != state.operation_id {
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

fn email() -> Email {
    Email {
        from: EmailAddress::parse("DoNotReply@contoso.azurecomm.net").unwrap(),
        to: Recipients::parse("leads@contoso.com; sales@contoso.com").unwrap(),
        subject: "2 new marketplace leads".to_owned(),
        text: "Zoë \"Z\" O'Brien — Contoso & Co\n".to_owned(),
        html: "<p>Zoë &quot;Z&quot; O&#39;Brien — Contoso &amp; Co</p>".to_owned(),
        idempotency_key: Uuid::new_v4(),
    }
}

fn key_mailer(fake: &FakeAcs, key: &str) -> AcsMailer {
    AcsMailer::new(fake.endpoint(), AcsAuth::AccessKey(Secret::new(key))).unwrap()
}

fn identity_mailer(fake: &FakeAcs, credential: &Arc<FakeCredential>) -> AcsMailer {
    AcsMailer::new(fake.endpoint(), AcsAuth::Token(credential.clone())).unwrap()
}

async fn send(mailer: &AcsMailer, email: &Email) -> Result<Receipt, SendError> {
    tokio::time::timeout(SEND_GUARD, mailer.send(email))
        .await
        .expect("send should finish in bounded time")
}

#[tokio::test]
async fn access_key_send_polls_until_succeeded() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(
        &email,
        vec![fake.accepted(&email, true)],
        vec![status(&email, "Running"), status(&email, "Succeeded")],
    );

    let receipt = send(&key_mailer(&fake, SERVER_KEY), &email).await.unwrap();

    let key = email.idempotency_key.hyphenated().to_string();
    assert_eq!(
        receipt,
        Receipt {
            message_id: key.clone()
        }
    );
    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.unanswered(), (0, 0));
    let requests = fake.requests();
    let summary: Vec<(String, String, String)> = requests
        .iter()
        .map(|r| (r.method.to_string(), r.path.clone(), r.query.clone()))
        .collect();
    let version = format!("api-version={API_VERSION}");
    let poll = format!("/emails/operations/{key}");
    assert_eq!(
        summary,
        [
            (
                "POST".to_owned(),
                "/emails:send".to_owned(),
                version.clone()
            ),
            ("GET".to_owned(), poll.clone(), version.clone()),
            ("GET".to_owned(), poll, version),
        ]
    );

    let post = &requests[0];
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        body,
        json!({
            "senderAddress": "DoNotReply@contoso.azurecomm.net",
            "recipients": {"to": [{"address": "leads@contoso.com"}, {"address": "sales@contoso.com"}]},
            "content": {
                "subject": "2 new marketplace leads",
                "plainText": "Zoë \"Z\" O'Brien — Contoso & Co\n",
                "html": "<p>Zoë &quot;Z&quot; O&#39;Brien — Contoso &amp; Co</p>"
            }
        })
    );
    assert_eq!(post.header("operation-id"), Some(key.as_str()));
    assert_eq!(post.header("host"), Some(fake.addr.to_string().as_str()));
    let request_ids: Vec<_> = requests
        .iter()
        .map(|r| r.header("x-ms-client-request-id").unwrap().to_owned())
        .collect();
    for id in &request_ids {
        Uuid::parse_str(id).expect("x-ms-client-request-id is a UUID");
    }
    assert_ne!(
        request_ids[0], request_ids[1],
        "a new request id per request"
    );
    for poll in &requests[1..] {
        assert!(poll.body.is_empty());
        assert_eq!(
            poll.header("x-ms-content-sha256"),
            Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
            "a GET signs the hash of the empty body"
        );
    }
}

#[tokio::test]
async fn throttled_send_waits_for_retry_after() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(
        &email,
        vec![throttled("1"), fake.accepted(&email, true)],
        vec![status(&email, "Succeeded")],
    );

    let receipt = send(&key_mailer(&fake, SERVER_KEY), &email).await.unwrap();

    assert_eq!(receipt.message_id, email.idempotency_key.to_string());
    assert_eq!(fake.problems(), Vec::<String>::new());
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].method, Method::POST);
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    // The retry is the same operation, freshly signed.
    assert_eq!(
        requests[0].header("operation-id"),
        requests[1].header("operation-id")
    );
    assert_ne!(
        requests[0].header("x-ms-client-request-id"),
        requests[1].header("x-ms-client-request-id")
    );
}

#[tokio::test]
async fn wrong_key_is_rejected_without_leaking_it() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(&email, vec![fake.accepted(&email, true)], Vec::new());

    let err = send(&key_mailer(&fake, WRONG_KEY), &email)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Rejected(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("Denied by the resource provider"), "{text}");
    for secret in [WRONG_KEY, SERVER_KEY, WRONG_KEY.trim_end_matches('=')] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(
        fake.problems(),
        ["POST /emails:send: signature mismatch".to_owned()]
    );
    assert_eq!(fake.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn failed_operation_is_rejected() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    // No Operation-Location: the client must poll the documented URL.
    fake.script(
        &email,
        vec![fake.accepted(&email, false)],
        vec![
            status(&email, "NotStarted"),
            failed(
                &email,
                "EmailDroppedAllRecipientsSuppressed",
                "All recipients suppressed.",
            ),
        ],
    );

    let err = send(&key_mailer(&fake, SERVER_KEY), &email)
        .await
        .unwrap_err();

    let SendError::Rejected(reason) = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert!(reason.contains("All recipients suppressed."), "{reason}");
    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.unanswered(), (0, 0));
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[2].path,
        format!("/emails/operations/{}", email.idempotency_key)
    );
}

#[tokio::test]
async fn an_identity_token_for_acs_is_sent_as_bearer() {
    let credential = Arc::new(FakeCredential::new());
    let fake = FakeAcs::start(ServerAuth::Bearer(credential.current_token())).await;
    let mailer = identity_mailer(&fake, &credential);

    for _ in 0..2 {
        let email = email();
        fake.script(
            &email,
            vec![fake.accepted(&email, true)],
            vec![status(&email, "Succeeded")],
        );
        let receipt = send(&mailer, &email).await.unwrap();
        assert_eq!(receipt.message_id, email.idempotency_key.to_string());
    }

    assert_eq!(fake.problems(), Vec::<String>::new());
    let scopes = credential.scopes();
    assert!(
        !scopes.is_empty() && scopes.iter().all(|s| s == ACS_SCOPE),
        "{scopes:?}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let expected = format!("Bearer {}", credential.current_token());
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(expected.as_str()));
    }
    let printed = format!("{mailer:?}");
    assert!(!printed.contains(&credential.current_token()), "{printed}");
}

#[tokio::test]
async fn a_refused_identity_token_is_not_reused() {
    let credential = Arc::new(FakeCredential::new());
    let fake = FakeAcs::start(ServerAuth::Bearer(credential.current_token())).await;
    let mailer = identity_mailer(&fake, &credential);
    let first = email();
    // The fake accepts the token; the service then says it was revoked.
    fake.script(
        &first,
        vec![error_reply(
            401,
            "InvalidAuthenticationToken",
            "The token is expired.",
        )],
        Vec::new(),
    );
    let revoked = credential.current_token();
    let err = send(&mailer, &first).await.unwrap_err();
    assert!(matches!(err, SendError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains("The token is expired."), "{err}");
    assert!(!err.to_string().contains(&revoked), "{err}");
    assert_eq!(credential.clears(), 1, "the credential's cache is cleared");

    // The next send asks the credential again and gets a fresh token.
    fake.set_auth(ServerAuth::Bearer(credential.current_token()));
    let second = email();
    fake.script(
        &second,
        vec![fake.accepted(&second, true)],
        vec![status(&second, "Succeeded")],
    );
    send(&mailer, &second).await.unwrap();
    let last = fake.requests().pop().unwrap();
    assert_ne!(
        last.header("authorization"),
        Some(format!("Bearer {revoked}").as_str())
    );
    assert_eq!(fake.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn unreachable_service_is_unavailable_promptly() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let mailer = AcsMailer::new(endpoint, AcsAuth::AccessKey(Secret::new(SERVER_KEY))).unwrap();

    let started = Instant::now();
    let err = send(&mailer, &email()).await.unwrap_err();

    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.to_string().contains(SERVER_KEY));
}

#[tokio::test]
async fn persistent_throttling_gives_up_after_bounded_tries() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(
        &email,
        (0..10).map(|_| throttled("0")).collect(),
        Vec::new(),
    );

    let err = send(&key_mailer(&fake, SERVER_KEY), &email)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.requests().len(), 5);
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_not_waited_for() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(&email, vec![throttled("3600")], Vec::new());

    let started = Instant::now();
    let err = send(&key_mailer(&fake, SERVER_KEY), &email)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn poll_survives_a_503_and_a_server_error_on_send_is_unavailable() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let mailer = key_mailer(&fake, SERVER_KEY);
    let first = email();
    let unavailable = Reply {
        headers: vec![("retry-after", "0".to_owned())],
        ..error_reply(503, "ServiceUnavailable", "Try again.")
    };
    fake.script(
        &first,
        vec![fake.accepted(&first, true)],
        vec![unavailable, status(&first, "Succeeded")],
    );
    send(&mailer, &first).await.unwrap();
    assert_eq!(fake.requests().len(), 3);

    let second = email();
    fake.script(
        &second,
        vec![error_reply(500, "InternalServerError", "Boom.")],
        Vec::new(),
    );
    let err = send(&mailer, &second).await.unwrap_err();
    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert_eq!(fake.requests().len(), 4, "a 500 is not retried at once");
    assert_eq!(fake.problems(), Vec::<String>::new());
}
