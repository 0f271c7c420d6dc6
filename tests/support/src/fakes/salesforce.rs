//! A fake Salesforce org on a loopback port, for `SALESFORCE_URL` (its My
//! Domain, which here is also its instance):
//!
//! - `POST /services/oauth2/token`, form `grant_type=client_credentials`,
//!   `client_id`, `client_secret` → `200` `{"access_token","instance_url",
//!   "id","token_type":"Bearer","issued_at","signature"}` (no `expires_in`);
//!   a wrong client → `400` `{"error":"invalid_client",…}`; without the flow
//!   enabled → `400` `{"error":"invalid_grant","error_description":"no
//!   client credentials user enabled"}`.
//! - `PATCH /services/data/vXX.X/sobjects/Lead/<ExternalIdField>/<value>`
//!   with `Authorization: Bearer`, a JSON body of Lead fields (never the
//!   external id field nor `Id`) → `201` `{"id","success":true,"errors":[],
//!   "created":true}` (new), `200` `{…,"created":false}` (updated), `300`
//!   (several records with that value). A revoked or unknown token → `401`
//!   `[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]`.
//!
//! Checked as Salesforce documents: methods, paths, the token, known Lead
//! field names and their lengths in UTF-16 units, `LastName` and `Company`
//! present, a valid `Email`, `Rating` one of its picklist's values (Hot,
//! Warm, Cold unless the org changed them), `CountryCode` an ISO code when
//! the org has State and Country picklists on (and `Country` then a name it
//! knows);
//! every other problem is listed in [`SalesforceFake::problems`]. Faults:
//! tokens expired, `503`, `403 REQUEST_LIMIT_EXCEEDED`, a duplicate rule
//! that blocks (`DUPLICATES_DETECTED` without `allowSave=true`), answers
//! held after the write took effect.

use super::crm::{Answer, Fault, FaultControls, Faults, Incoming, Request, Server, SharedClock};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub const CLIENT_ID: &str = "3MVG9fake.External.Client.App.Consumer.Key";
pub const CLIENT_SECRET: &str = "F4KE5ECRE7-consumer-secret-0123456789";
pub const EXTERNAL_ID_FIELD: &str = "MarketplaceLeadId__c";

/// Lead fields the service writes, and their lengths (UTF-16 units).
pub const LEAD_FIELDS: &[(&str, usize)] = &[
    ("FirstName", 40),
    ("LastName", 80),
    ("Company", 255),
    ("Email", 80),
    ("Phone", 40),
    ("Title", 128),
    ("Country", 80),
    ("CountryCode", 2),
    ("Description", 32_000),
    ("LeadSource", 255),
    ("Rating", 255),
];
/// The standard values of the Lead `Rating` picklist.
const RATING_VALUES: &[&str] = &["Hot", "Warm", "Cold"];
const FLAGS: &[&str] = &["HasOptedOutOfEmail", "DoNotCall"];
/// The countries the org's picklist knows (a few), by name and code.
const PICKLIST: &[(&str, &str)] = &[
    ("United States", "US"),
    ("Japan", "JP"),
    ("Germany", "DE"),
    ("United Kingdom", "GB"),
    ("France", "FR"),
];

/// A Lead as stored.
#[derive(Debug, Clone)]
pub struct Lead {
    pub id: String,
    pub fields: Map<String, Value>,
    pub created_at: OffsetDateTime,
    pub updates: usize,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    problems: Vec<String>,
    /// By external id value.
    leads: BTreeMap<String, Lead>,
    /// Tokens issued and still good.
    tokens: Vec<String>,
    issued: usize,
    creates: usize,
    updates: usize,
    faults: Faults,
    picklists: bool,
    /// A duplicate rule on Lead email that blocks unless allowSave=true.
    blocking_rule: bool,
    /// The token endpoint refuses: the flow is not enabled.
    flow_disabled: bool,
    /// Values of the external id field held by two Leads each.
    ambiguous: Vec<String>,
    /// Access tokens are JWTs (orgs with JWT-based access tokens on):
    /// about 1.3 KB each.
    jwt_tokens: bool,
    /// The `Sforce-Auto-Assign` headers of Lead writes, in order.
    assignment_headers: Vec<String>,
    /// The Rating picklist's values when the org changed them.
    rating_values: Option<Vec<String>>,
}

pub struct SalesforceFake {
    server: Server,
    state: Arc<Mutex<State>>,
    clock: SharedClock,
}

impl SalesforceFake {
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

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The settings of an app writing to this org.
    pub fn settings(&self) -> Vec<(String, String)> {
        vec![
            ("SALESFORCE_URL".into(), self.url()),
            ("SALESFORCE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("SALESFORCE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ]
    }

    /// The `Sforce-Auto-Assign` each Lead write carried.
    pub fn assignment_headers(&self) -> Vec<String> {
        self.state.lock().unwrap().assignment_headers.clone()
    }

    /// Issue JWT-based access tokens (about 1.3 KB), as orgs with that
    /// setting on do.
    pub fn set_jwt_tokens(&self, on: bool) {
        self.state.lock().unwrap().jwt_tokens = on;
    }

    /// The org has State and Country picklists on.
    pub fn set_picklists(&self, on: bool) {
        self.state.lock().unwrap().picklists = on;
    }

    /// The values of the org's Lead `Rating` picklist, which it restricts
    /// (by default Salesforce's own: Hot, Warm, Cold).
    pub fn set_rating_values(&self, values: &[&str]) {
        self.state.lock().unwrap().rating_values =
            Some(values.iter().map(|v| v.to_string()).collect());
    }

    /// A duplicate rule that blocks a Lead with an existing email.
    pub fn set_blocking_rule(&self, on: bool) {
        self.state.lock().unwrap().blocking_rule = on;
    }

    pub fn set_flow_disabled(&self, disabled: bool) {
        self.state.lock().unwrap().flow_disabled = disabled;
    }

    /// Two Leads already hold `value` in the external id field.
    pub fn make_ambiguous(&self, value: &str) {
        self.state.lock().unwrap().ambiguous.push(value.to_owned());
    }

    /// Every token issued so far stops working (its session timed out).
    pub fn expire_tokens(&self) {
        self.state.lock().unwrap().tokens.clear();
    }

    pub fn leads(&self) -> BTreeMap<String, Lead> {
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
        let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
        for request in &s.requests {
            *by_status.entry(request.status).or_default() += 1;
        }
        format!(
            "salesforce: {} Leads, {} creates, {} updates, {} tokens, {} requests {:?}, {} problems",
            s.leads.len(),
            s.creates,
            s.updates,
            s.issued,
            s.requests.len(),
            by_status,
            s.problems.len()
        )
    }
}

fn errors(status: u16, code: &str, message: &str, fields: &[&str]) -> Answer {
    Answer::json(
        status,
        json!([{"message": message, "errorCode": code, "fields": fields}]),
    )
}

fn handle(state: &Mutex<State>, clock: &SharedClock, incoming: Incoming) -> Answer {
    let now = clock.now();
    let answer = if incoming.path == "/services/oauth2/token" {
        token(state, &incoming, now)
    } else {
        lead_api(state, &incoming, now)
    };
    state
        .lock()
        .unwrap()
        .requests
        .push(Request::new(now, &incoming, &answer));
    answer
}

fn problem(state: &Mutex<State>, text: String) {
    state.lock().unwrap().problems.push(text);
}

fn token(state: &Mutex<State>, incoming: &Incoming, now: OffsetDateTime) -> Answer {
    if incoming.method != "POST" {
        problem(state, format!("{} token: not POST", incoming.method));
    }
    let form_type = incoming.header("content-type").unwrap_or_default();
    if !form_type.starts_with("application/x-www-form-urlencoded") {
        problem(state, format!("token request content-type {form_type:?}"));
    }
    if !incoming.query.is_empty() {
        problem(
            state,
            "token request with a query (the secret belongs in the body)".into(),
        );
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&incoming.body)
        .into_owned()
        .collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        problem(state, format!("grant_type {:?}", form.get("grant_type")));
        return Answer::json(
            400,
            json!({"error": "unsupported_grant_type", "error_description": "grant type not supported"}),
        );
    }
    if form.get("client_id").map(String::as_str) != Some(CLIENT_ID)
        || form.get("client_secret").map(String::as_str) != Some(CLIENT_SECRET)
    {
        return Answer::json(
            400,
            json!({"error": "invalid_client", "error_description": "invalid client credentials"}),
        );
    }
    let mut s = state.lock().unwrap();
    if s.flow_disabled {
        return Answer::json(
            400,
            json!({"error": "invalid_grant", "error_description": "no client credentials user enabled"}),
        );
    }
    s.issued += 1;
    let access = if s.jwt_tokens {
        let claims: String = (0..14)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        format!(
            "eyJ0bmsiOiJjb3JlL3Byb2QiLCJ2ZXIiOiIxLjAiLCJraWQiOiJDT1JFIiwidHlwIjoiSldUIiwiYWxnIjoiUlMyNTYifQ.{}{claims}.{}",
            "x".repeat(400),
            "s".repeat(342)
        )
    } else {
        format!("00Dfake!AQ{}.{}", s.issued, uuid::Uuid::new_v4().simple())
    };
    s.tokens.push(access.clone());
    drop(s);
    Answer::json(
        200,
        json!({
            "access_token": access,
            "signature": "c2lnbmF0dXJl",
            "scope": "api",
            "instance_url": format!("http://{}", incoming.header("host").unwrap_or("127.0.0.1")),
            "id": "https://login.salesforce.com/id/00Dfake/005fake",
            "token_type": "Bearer",
            "issued_at": (now.unix_timestamp() * 1000).to_string(),
        }),
    )
}

fn lead_api(state: &Mutex<State>, incoming: &Incoming, now: OffsetDateTime) -> Answer {
    let segments: Vec<&str> = incoming.path.trim_start_matches('/').split('/').collect();
    let (version, field, value) = match segments.as_slice() {
        ["services", "data", version, "sobjects", "Lead", field, value] => (
            *version,
            *field,
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned(),
        ),
        _ => {
            problem(
                state,
                format!(
                    "{} {}: not an upsert of a Lead",
                    incoming.method, incoming.path
                ),
            );
            return errors(
                404,
                "NOT_FOUND",
                "The requested resource does not exist",
                &[],
            );
        }
    };
    let mut found = Vec::new();
    if incoming.method != "PATCH" {
        found.push(format!("{} for an upsert", incoming.method));
    }
    let number = version
        .strip_prefix('v')
        .and_then(|v| v.parse::<f32>().ok());
    if !number.is_some_and(|n| (60.0..=68.0).contains(&n)) {
        found.push(format!("API version {version}"));
    }
    match incoming.header("authorization") {
        Some(auth) if auth.starts_with("Bearer ") => {
            let token = &auth["Bearer ".len()..];
            if !state.lock().unwrap().tokens.iter().any(|t| t == token) {
                return errors(401, "INVALID_SESSION_ID", "Session expired or invalid", &[]);
            }
        }
        other => {
            problem(state, format!("Authorization {other:?}"));
            return errors(401, "INVALID_SESSION_ID", "Session expired or invalid", &[]);
        }
    }
    if field != EXTERNAL_ID_FIELD {
        return errors(
            404,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
            &[],
        );
    }
    if !incoming.is_json() {
        found.push(format!(
            "content-type {:?}",
            incoming.header("content-type")
        ));
    }
    let fields = match serde_json::from_slice::<Value>(&incoming.body) {
        Ok(Value::Object(fields)) => fields,
        other => {
            found.push(format!("a body that is not a JSON object: {other:?}"));
            Map::new()
        }
    };
    let picklists = state.lock().unwrap().picklists;
    let mut refusals = Vec::new();
    for (name, field_value) in &fields {
        if name == "Id" || name == EXTERNAL_ID_FIELD {
            found.push(format!("{name} in the body of an upsert"));
            continue;
        }
        if FLAGS.contains(&name.as_str()) {
            if !field_value.is_boolean() {
                found.push(format!("{name} is not a boolean"));
            }
            continue;
        }
        let Some((_, max)) = LEAD_FIELDS.iter().find(|(n, _)| n == name) else {
            found.push(format!("unknown Lead field {name}"));
            refusals.push(errors(
                400,
                "INVALID_FIELD",
                &format!("No such column '{name}' on sobject of type Lead"),
                &[],
            ));
            continue;
        };
        let Some(text) = field_value.as_str() else {
            found.push(format!("{name} is not a string"));
            continue;
        };
        let units = text.encode_utf16().count();
        if units > *max {
            found.push(format!("{name} has {units} UTF-16 units, more than {max}"));
            refusals.push(errors(
                400,
                "STRING_TOO_LONG",
                &format!("{name}: data value too large"),
                &[name],
            ));
        }
    }
    for required in ["LastName", "Company"] {
        if fields
            .get(required)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            found.push(format!("no {required}"));
            refusals.push(errors(
                400,
                "REQUIRED_FIELD_MISSING",
                &format!("Required fields are missing: [{required}]"),
                &[required],
            ));
        }
    }
    if let Some(email) = fields.get("Email").and_then(Value::as_str) {
        if !email.contains('@') || email.contains(' ') {
            found.push(format!("Email {email:?}"));
            refusals.push(errors(
                400,
                "INVALID_EMAIL_ADDRESS",
                &format!("Email: invalid email address: {email}"),
                &["Email"],
            ));
        }
    }
    if let Some(rating) = fields.get("Rating").and_then(Value::as_str) {
        let known = match &state.lock().unwrap().rating_values {
            Some(values) => values.iter().any(|v| v == rating),
            None => RATING_VALUES.contains(&rating),
        };
        if !known {
            found.push(format!("Rating {rating:?} not in the picklist"));
            refusals.push(errors(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                &format!("Rating: bad value for restricted picklist field: {rating}"),
                &["Rating"],
            ));
        }
    }
    if picklists {
        if let Some(country) = fields.get("Country").and_then(Value::as_str) {
            if !PICKLIST.iter().any(|(name, _)| name == &country) {
                refusals.push(errors(400, "FIELD_INTEGRITY_EXCEPTION", &format!("There's a problem with this country, even though it may appear correct. Please select a country/territory from the list of valid countries.: {country}"), &["Country"]));
            }
        }
        if let Some(code) = fields.get("CountryCode").and_then(Value::as_str) {
            if !PICKLIST.iter().any(|(_, c)| c == &code) {
                found.push(format!("CountryCode {code:?} not in the picklist"));
                refusals.push(errors(
                    400,
                    "FIELD_INTEGRITY_EXCEPTION",
                    &format!("Country Code: bad value for restricted picklist field: {code}"),
                    &["CountryCode"],
                ));
            }
        }
    } else if fields.contains_key("CountryCode") {
        found.push("CountryCode without State and Country picklists".into());
        refusals.push(errors(
            400,
            "INVALID_FIELD",
            "No such column 'CountryCode' on sobject of type Lead",
            &[],
        ));
    }
    for text in &found {
        problem(
            state,
            format!("{} {}: {text}", incoming.method, incoming.path),
        );
    }
    if let Some(refusal) = refusals.into_iter().next() {
        return refusal;
    }

    let fault = state.lock().unwrap().faults.next(now);
    let hold = match fault {
        Fault::None => None,
        Fault::Hold(duration) => Some(duration),
        Fault::Unavailable => {
            return errors(
                503,
                "SERVER_UNAVAILABLE",
                "The server is temporarily unavailable",
                &[],
            )
        }
        Fault::Throttled { .. } | Fault::ThrottledAfter { .. } => {
            return errors(
                403,
                "REQUEST_LIMIT_EXCEEDED",
                "TotalRequests Limit exceeded.",
                &[],
            )
        }
        Fault::Unauthorized => {
            state.lock().unwrap().tokens.clear();
            return errors(401, "INVALID_SESSION_ID", "Session expired or invalid", &[]);
        }
        Fault::Forbidden => {
            return errors(
                403,
                "INSUFFICIENT_ACCESS",
                "insufficient access rights on object id",
                &[],
            )
        }
    };
    let mut s = state.lock().unwrap();
    if s.ambiguous.contains(&value) {
        return Answer::json(
            300,
            json!([
                "/services/data/v62.0/sobjects/Lead/00Qa",
                "/services/data/v62.0/sobjects/Lead/00Qb"
            ]),
        );
    }
    let email = fields
        .get("Email")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    let allow_save = incoming
        .header("sforce-duplicate-rule-header")
        .is_some_and(|h| h.replace(' ', "").eq_ignore_ascii_case("allowSave=true"));
    if !allow_save {
        s.problems
            .push("no Sforce-Duplicate-Rule-Header: allowSave=true".into());
    }
    // TRUE, FALSE (any case) or an AssignmentRule id, as documented.
    match incoming.header("sforce-auto-assign") {
        None => {}
        Some(value)
            if value.eq_ignore_ascii_case("true")
                || value.eq_ignore_ascii_case("false")
                || (value.starts_with("01Q") && matches!(value.len(), 15 | 18)) =>
        {
            s.assignment_headers.push(value.to_owned());
        }
        Some(other) => s.problems.push(format!("Sforce-Auto-Assign: {other}")),
    }
    let duplicate = email.as_ref().is_some_and(|email| {
        s.leads.iter().any(|(other, lead)| {
            other != &value
                && lead
                    .fields
                    .get("Email")
                    .and_then(Value::as_str)
                    .map(str::to_lowercase)
                    .as_ref()
                    == Some(email)
        })
    });
    if duplicate && (s.blocking_rule || !allow_save) && !s.leads.contains_key(&value) {
        return errors(400, "DUPLICATES_DETECTED", "Use one of these records?", &[]);
    }
    let mut answer = match s.leads.get_mut(&value) {
        Some(lead) => {
            lead.fields.extend(fields);
            lead.updates += 1;
            let id = lead.id.clone();
            s.updates += 1;
            Answer::json(
                200,
                json!({"id": id, "success": true, "errors": [], "created": false}),
            )
        }
        None => {
            let id = format!("00Q{:012}", s.creates + 1);
            s.creates += 1;
            s.leads.insert(
                value,
                Lead {
                    id: id.clone(),
                    fields,
                    created_at: now,
                    updates: 0,
                },
            );
            Answer::json(
                201,
                json!({"id": id, "success": true, "errors": [], "created": true}),
            )
        }
    };
    answer.hold = hold;
    answer
}

impl FaultControls for SalesforceFake {
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
