//! A fake Marketo Engage instance on a loopback port, for `MARKETO_URL`:
//!
//! - `GET` or `POST /identity/oauth/token?grant_type=client_credentials&
//!   client_id=…&client_secret=…` → `200` `{"access_token":"<uuid>:ab",
//!   "token_type":"bearer","expires_in":3599,"scope":"…"}`; a wrong client
//!   → `401` `{"error":"invalid_client","error_description":"Bad client
//!   credentials"}`.
//! - `POST /rest/v1/leads.json` with `Authorization: Bearer <token>` and
//!   `{"action":"createOrUpdate","lookupField":"email","input":[…]}` →
//!   **HTTP 200 whatever happened**: `{"requestId","success":true,"result":
//!   [{"id",…,"status":"created"|"updated"}]}`, or `"success":false` with
//!   `"errors":[{"code","message"}]` — `601` token invalid, `602` expired,
//!   `606` rate limit, `607` daily quota, `615` concurrency — or a record
//!   `"status":"skipped"` with `"reasons"`.
//!
//! Checked as Marketo documents: the token only as a bearer header (the
//! `access_token` query parameter was removed on 2026-01-31), REST field
//! names, the body's shape. Problems are listed in [`MarketoFake::problems`].

use super::crm::{Answer, Fault, FaultControls, Faults, Incoming, Request, Server, SharedClock};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub const CLIENT_ID: &str = "5f1e2d3c-fake-4b5a-9c8d-custom-service";
pub const CLIENT_SECRET: &str = "MKT0fakeSecret0123456789abcdef";
pub const FIELDS: &[&str] = &[
    "email",
    "firstName",
    "lastName",
    "company",
    "title",
    "phone",
    "country",
    "unsubscribed",
    "leadSource",
    "leadScore",
];
const MAX_VALUE_CHARS: usize = 255;
/// A Text Area field (`text` in describe.json).
const MAX_TEXT_AREA_CHARS: usize = 65_535;

/// What the next `leads.json` request is answered instead of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A response-level error code (`606`, `607`, `615`, …).
    Error(&'static str),
    /// The record is skipped with this reason code.
    Skipped(&'static str),
}

/// A Marketo lead as stored.
#[derive(Debug, Clone)]
pub struct MarketoLead {
    pub id: u64,
    pub fields: Map<String, Value>,
    pub updates: usize,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    problems: Vec<String>,
    /// By email, lowercased.
    leads: BTreeMap<String, MarketoLead>,
    tokens: Vec<String>,
    issued: usize,
    creates: usize,
    updates: usize,
    faults: Faults,
    refusals: std::collections::VecDeque<Refusal>,
    /// Custom fields the admin created: (REST API name, is a Text Area).
    custom_fields: Vec<(String, bool)>,
}

pub struct MarketoFake {
    server: Server,
    state: Arc<Mutex<State>>,
    clock: SharedClock,
}

impl MarketoFake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let clock = SharedClock::default();
        let server = {
            let (state, clock) = (state.clone(), clock.clone());
            Server::start(move |incoming: Incoming| {
                let (state, clock) = (state.clone(), clock.clone());
                async move { handle(&state, &clock, incoming) }
            })
            .await
        };
        Self {
            server,
            state,
            clock,
        }
    }

    /// As Admin > Web Services shows the REST endpoint.
    pub fn url(&self) -> String {
        format!("{}/rest", self.server.url())
    }

    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("MARKETO_URL".into(), self.url()),
            ("MARKETO_CLIENT_ID".into(), CLIENT_ID.into()),
            ("MARKETO_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ]
    }

    /// Adds custom lead fields, as an admin would (Admin > Field
    /// Management): (REST API name, whether a Text Area).
    pub fn add_fields(&self, fields: &[(&str, bool)]) {
        self.state
            .lock()
            .unwrap()
            .custom_fields
            .extend(fields.iter().map(|(n, area)| (n.to_string(), *area)));
    }

    /// Answers the next sync requests so, in order.
    pub fn refuse(&self, refusals: impl IntoIterator<Item = Refusal>) {
        self.state.lock().unwrap().refusals.extend(refusals);
    }

    /// Every token issued so far is expired (the next call gets `602`).
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().tokens.clear();
    }

    pub fn leads(&self) -> BTreeMap<String, MarketoLead> {
        self.state.lock().unwrap().leads.clone()
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    pub fn tokens_issued(&self) -> usize {
        self.state.lock().unwrap().issued
    }

    pub fn summary(&self) -> String {
        let s = self.state.lock().unwrap();
        format!(
            "marketo: {} leads, {} created, {} updated, {} tokens, {} requests, {} problems",
            s.leads.len(),
            s.creates,
            s.updates,
            s.issued,
            s.requests.len(),
            s.problems.len()
        )
    }
}

fn request_id() -> String {
    format!("{}#{}", &uuid::Uuid::new_v4().simple().to_string()[..4], 1)
}

fn failure(code: &str, message: &str) -> Answer {
    Answer::json(
        200,
        json!({"requestId": request_id(), "success": false, "errors": [{"code": code, "message": message}]}),
    )
}

fn handle(state: &Mutex<State>, clock: &SharedClock, incoming: Incoming) -> Answer {
    let now = clock.now();
    let answer = match incoming.path.as_str() {
        "/identity/oauth/token" => token(state, &incoming),
        "/rest/v1/leads.json" => sync(state, &incoming, now),
        other => {
            state
                .lock()
                .unwrap()
                .problems
                .push(format!("{} {other}: unknown path", incoming.method));
            Answer::empty(404)
        }
    };
    state
        .lock()
        .unwrap()
        .requests
        .push(Request::new(now, &incoming, &answer));
    answer
}

fn token(state: &Mutex<State>, incoming: &Incoming) -> Answer {
    if !matches!(incoming.method.as_str(), "GET" | "POST") {
        state
            .lock()
            .unwrap()
            .problems
            .push(format!("{} token", incoming.method));
    }
    let query: BTreeMap<String, String> = incoming.query_pairs().into_iter().collect();
    if query.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return Answer::json(
            400,
            json!({"error": "invalid_request", "error_description": "Missing grant type"}),
        );
    }
    let client_id = query.get("client_id").cloned().unwrap_or_default();
    if client_id != CLIENT_ID {
        // As Marketo answers an unknown Custom Service: naming the id.
        return Answer::json(
            401,
            json!({"error": "unauthorized", "error_description": format!("No client with requested id: {client_id}")}),
        );
    }
    if query.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET) {
        return Answer::json(
            401,
            json!({"error": "invalid_client", "error_description": "Bad client credentials"}),
        );
    }
    let mut s = state.lock().unwrap();
    s.issued += 1;
    let token = format!("{}:ab", uuid::Uuid::new_v4());
    s.tokens.push(token.clone());
    Answer::json(
        200,
        json!({"access_token": token, "token_type": "bearer", "expires_in": 3599, "scope": "api@fake.com"}),
    )
}

fn sync(state: &Mutex<State>, incoming: &Incoming, now: OffsetDateTime) -> Answer {
    let mut found = Vec::new();
    if incoming.method != "POST" {
        found.push(format!("{} leads.json", incoming.method));
    }
    if incoming
        .query_pairs()
        .iter()
        .any(|(k, _)| k == "access_token")
    {
        found.push("access_token in the query (removed 2026-01-31)".into());
        state.lock().unwrap().problems.extend(found);
        return failure("601", "Access token invalid");
    }
    let token = incoming
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(token) = token else {
        found.push(format!(
            "Authorization {:?}",
            incoming.header("authorization")
        ));
        state.lock().unwrap().problems.extend(found);
        return failure("601", "Access token invalid");
    };
    if !state.lock().unwrap().tokens.contains(&token) {
        return failure("602", "Access token expired");
    }
    if !incoming.is_json() {
        found.push(format!(
            "content-type {:?}",
            incoming.header("content-type")
        ));
    }
    let body = serde_json::from_slice::<Value>(&incoming.body).unwrap_or(Value::Null);
    if body["action"] != "createOrUpdate" {
        found.push(format!("action {}", body["action"]));
    }
    if body["lookupField"] != "email" {
        found.push(format!("lookupField {}", body["lookupField"]));
    }
    let input = body["input"].as_array().cloned().unwrap_or_default();
    if input.len() != 1 {
        found.push(format!("{} input records", input.len()));
    }
    let record = input
        .first()
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let custom = state.lock().unwrap().custom_fields.clone();
    for (name, value) in &record {
        let text_area = custom.iter().any(|(n, area)| n == name && *area);
        if !FIELDS.contains(&name.as_str()) && !custom.iter().any(|(n, _)| n == name) {
            found.push(format!("unknown field {name}"));
        } else if name == "leadScore" {
            // An integer field (describe.json: "integer").
            if !value.is_i64() {
                found.push(format!("leadScore {value} is not an integer"));
            }
        } else if name == "unsubscribed" {
            if !value.is_boolean() {
                found.push("unsubscribed is not a boolean".into());
            }
        } else if value.as_str().is_none_or(|v| {
            v.chars().count()
                > if text_area {
                    MAX_TEXT_AREA_CHARS
                } else {
                    MAX_VALUE_CHARS
                }
        }) {
            found.push(format!(
                "{name} is not a string of at most {MAX_VALUE_CHARS} characters"
            ));
        }
    }
    let email = record
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    if email.is_none() {
        found.push("no email".into());
    }
    let mut s = state.lock().unwrap();
    s.problems.extend(found);
    if let Some(refusal) = s.refusals.pop_front() {
        return match refusal {
            Refusal::Error(code) => {
                let message = match code {
                    "606" => "Max rate limit '100' exceeded with in '20' secs",
                    "607" => "Daily quota reached",
                    "615" => "Concurrent access limit reached",
                    "608" => "API Temporarily Unavailable",
                    "611" => "System error",
                    _ => "Error",
                };
                failure(code, message)
            }
            Refusal::Skipped(code) => Answer::json(
                200,
                json!({"requestId": request_id(), "success": true, "result": [{"status": "skipped",
                    "reasons": [{"code": code, "message": "Lead not found"}]}]}),
            ),
        };
    }
    let hold = match s.faults.next(now) {
        Fault::None => None,
        Fault::Hold(duration) => Some(duration),
        // Marketo: 608 "API Temporarily Unavailable", with HTTP 200.
        Fault::Unavailable => return failure("608", "API Temporarily Unavailable"),
        Fault::Throttled { .. } | Fault::ThrottledAfter { .. } => {
            return failure("606", "Max rate limit '100' exceeded with in '20' secs")
        }
        Fault::Unauthorized => {
            s.tokens.clear();
            return failure("602", "Access token expired");
        }
        Fault::Forbidden => return failure("603", "Access denied"),
    };
    let Some(email) = email else {
        return Answer::json(
            200,
            json!({"requestId": request_id(), "success": true, "result": [{"status": "skipped",
            "reasons": [{"code": "1003", "message": "Value for lookup field 'email' not found"}]}]}),
        );
    };
    let (id, status) = match s.leads.get_mut(&email) {
        Some(lead) => {
            lead.fields.extend(record);
            lead.updates += 1;
            (lead.id, "updated")
        }
        None => {
            let id = 1_000 + s.creates as u64;
            s.leads.insert(
                email,
                MarketoLead {
                    id,
                    fields: record,
                    updates: 0,
                },
            );
            (id, "created")
        }
    };
    if status == "created" {
        s.creates += 1;
    } else {
        s.updates += 1;
    }
    let mut answer = Answer::json(
        200,
        json!({"requestId": request_id(), "success": true, "result": [{"id": id, "status": status}]}),
    );
    answer.hold = hold;
    answer
}

impl FaultControls for MarketoFake {
    fn server(&self) -> &Server {
        &self.server
    }

    fn clock(&self) -> &SharedClock {
        &self.clock
    }

    fn with_faults(&self, change: impl FnOnce(&mut Faults)) {
        change(&mut self.state.lock().unwrap().faults);
    }
}
