//! A fake Dynamics 365 / Dataverse environment with its identity platform,
//! on one loopback port (`http://127.0.0.1:<port>`, the "organization URL"
//! and the token's resource):
//!
//! - `POST /{tenant}/oauth2/v2.0/token` — the Microsoft identity platform's
//!   client-credentials grant (form body `grant_type=client_credentials`,
//!   `client_id`, `client_secret`, `scope=<organization URL>/.default`),
//!   answered `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,
//!   "access_token":…}`; a wrong secret is `401 invalid_client` (AADSTS7000215).
//! - `GET /msi/token?resource=<organization URL>&api-version=2019-08-01` with
//!   `X-IDENTITY-HEADER` — the App Service / Functions managed-identity
//!   endpoint (`IDENTITY_ENDPOINT`), answered `{"access_token":…,
//!   "expires_on":"<epoch seconds>","resource":…,"token_type":"Bearer"}`.
//! - `PATCH /api/data/v9.2/leads(<guid>)` — the Web API's upsert, which with
//!   `If-None-Match: *` only creates: `204` with `OData-EntityId`, or `412`
//!   with `{"error":{"code":"0x80040237","message":"A record with matching key
//!   values already exists."}}` when the record exists.
//!
//! Every Web API request is checked as Microsoft documents it (a bearer token
//! this fake issued for its own URL; `OData-MaxVersion: 4.0`, `OData-Version:
//! 4.0`, `Accept: application/json`, `Content-Type: application/json`,
//! `If-None-Match: *`; a JSON object of the `lead` table's string columns
//! within their maximum lengths). What breaks a rule is answered as
//! Dataverse would and listed in [`DataverseFake::problems`].

use super::crm::{Answer, Fault, FaultControls, Faults, Incoming, Request, Server, SharedClock};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
pub const CLIENT_ID: &str = "0f3c5a7e-1d2b-4c6a-9e8f-3a4b5c6d7e8f";
pub const CLIENT_SECRET: &str = "Qx8~fake.client-secret_0123456789abcdef";
/// The `IDENTITY_HEADER` secret the platform gives the app.
pub const IDENTITY_HEADER: &str = "3c5e7a9b-fake-identity-header";
/// The Web API's path, version 9.2.
const API: &str = "/api/data/v9.2/";

/// The `lead` table's columns the handler writes, with their maximum
/// lengths (Dataverse's `MaxLength`, in characters).
pub const LEAD_COLUMNS: &[(&str, usize)] = &[
    ("subject", 300),
    ("firstname", 50),
    ("lastname", 50),
    ("emailaddress1", 100),
    ("telephone1", 50),
    ("companyname", 100),
    ("jobtitle", 100),
    ("address1_country", 80),
    ("description", 2_000),
];

/// The `lead` table's Boolean (Two Options) opt-out columns.
pub const LEAD_BOOLEAN_COLUMNS: &[&str] = &["donotemail", "donotphone", "donotbulkemail"];

/// How a token was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An app registration's client secret.
    ClientCredentials,
    /// The managed-identity endpoint.
    ManagedIdentity,
}

/// A token request, as received and answered.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub kind: TokenKind,
    pub request: Request,
}

/// A lead record as stored.
#[derive(Debug, Clone)]
pub struct LeadRecord {
    pub id: uuid::Uuid,
    pub columns: Map<String, Value>,
    pub created_at: OffsetDateTime,
    /// How the token of the creating request was obtained.
    pub created_with: TokenKind,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    token_requests: Vec<TokenRequest>,
    problems: Vec<String>,
    /// Tokens issued: token → (resource, kind).
    tokens: HashMap<String, (String, TokenKind)>,
    records: BTreeMap<uuid::Uuid, LeadRecord>,
    creates: usize,
    repeats: usize,
    /// Web API requests by the token kind they carried.
    by_kind: HashMap<TokenKind, usize>,
    /// The platform's managed-identity endpoint, whose tokens for this
    /// organization are accepted too.
    trusted: Option<super::identity::ManagedIdentityFake>,
    faults: Faults,
}

/// The fake environment.
pub struct DataverseFake {
    server: Server,
    state: Arc<Mutex<State>>,
    clock: SharedClock,
}

impl DataverseFake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let clock = SharedClock::default();
        // The organization URL is known once the port is: handed in later.
        let base: Arc<Mutex<String>> = Arc::default();
        let server = {
            let (state, clock, base) = (state.clone(), clock.clone(), base.clone());
            Server::start(move |incoming: Incoming| {
                let (state, clock, base) = (state.clone(), clock.clone(), base.clone());
                async move {
                    let base = base.lock().unwrap().clone();
                    handle(&state, &clock, &base, incoming)
                }
            })
            .await
        };
        *base.lock().unwrap() = server.url();
        Self {
            server,
            state,
            clock,
        }
    }

    /// Accepts the tokens `identity` issues for this organization, as the
    /// real service accepts any managed identity's (the app's identity
    /// endpoint is then `identity`, not this fake's own).
    pub fn trust(&self, identity: super::identity::ManagedIdentityFake) {
        self.state.lock().unwrap().trusted = Some(identity);
    }

    /// The organization URL (`DATAVERSE_URL`), also the token's resource.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// The identity platform's host (`AZURE_AUTHORITY_HOST`).
    pub fn authority_host(&self) -> String {
        self.server.url()
    }

    /// The managed-identity endpoint (`IDENTITY_ENDPOINT`).
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.server.url())
    }

    /// Settings for an app registration with the right secret.
    pub fn app_registration_settings(&self) -> Vec<(String, String)> {
        self.app_registration_settings_with_secret(CLIENT_SECRET)
    }

    pub fn app_registration_settings_with_secret(&self, secret: &str) -> Vec<(String, String)> {
        vec![
            ("DATAVERSE_URL".into(), self.url()),
            ("AZURE_AUTHORITY_HOST".into(), self.authority_host()),
            ("DATAVERSE_TENANT_ID".into(), TENANT_ID.into()),
            ("DATAVERSE_CLIENT_ID".into(), CLIENT_ID.into()),
            ("DATAVERSE_CLIENT_SECRET".into(), secret.into()),
        ]
    }

    /// The environment of an app with a managed identity (as the Functions
    /// platform sets it) and only `DATAVERSE_URL`.
    pub fn managed_identity_env(&self) -> Vec<(String, String)> {
        vec![
            ("DATAVERSE_URL".into(), self.url()),
            ("IDENTITY_ENDPOINT".into(), self.identity_endpoint()),
            ("IDENTITY_HEADER".into(), IDENTITY_HEADER.into()),
        ]
    }

    /// Web API requests, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn token_requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().token_requests.clone()
    }

    /// Every rule a request broke, one line each.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    pub fn records(&self) -> BTreeMap<uuid::Uuid, LeadRecord> {
        self.state.lock().unwrap().records.clone()
    }

    pub fn record(&self, id: uuid::Uuid) -> Option<LeadRecord> {
        self.state.lock().unwrap().records.get(&id).cloned()
    }

    /// Records created (`204`).
    pub fn creates(&self) -> usize {
        self.state.lock().unwrap().creates
    }

    /// Creates refused because the record existed (`412`).
    pub fn repeats(&self) -> usize {
        self.state.lock().unwrap().repeats
    }

    /// Web API requests answered `status`.
    pub fn answered(&self, status: u16) -> usize {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    /// Web API requests that carried a token obtained this way.
    pub fn requests_with(&self, kind: TokenKind) -> usize {
        self.state
            .lock()
            .unwrap()
            .by_kind
            .get(&kind)
            .copied()
            .unwrap_or(0)
    }

    /// A one-line summary for test reports.
    pub fn summary(&self) -> String {
        let state = self.state.lock().unwrap();
        let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
        for request in &state.requests {
            *by_status.entry(request.status).or_default() += 1;
        }
        format!(
            "dataverse: {} records, {} creates, {} repeats (412), {} requests {:?}, {} token requests, {} problems",
            state.records.len(),
            state.creates,
            state.repeats,
            state.requests.len(),
            by_status,
            state.token_requests.len(),
            state.problems.len()
        )
    }
}

/// Dataverse's error body.
fn error(status: u16, code: &str, message: &str) -> Answer {
    Answer::json(status, json!({"error": {"code": code, "message": message}}))
        .with_header("content-type", "application/json; odata.metadata=minimal")
        .with_header("odata-version", "4.0")
}

/// The identity platform's error body.
fn aad_error(status: u16, error: &str, description: &str) -> Answer {
    Answer::json(
        status,
        json!({
            "error": error,
            "error_description": description,
            "error_codes": [aadsts_code(description)],
            "timestamp": "2026-11-22 10:15:00Z",
            "trace_id": uuid::Uuid::new_v4(),
            "correlation_id": uuid::Uuid::new_v4(),
        }),
    )
}

/// The number of `AADSTS<number>: ...`.
fn aadsts_code(description: &str) -> u64 {
    description
        .trim_start_matches("AADSTS")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or(0)
}

fn handle(state: &Mutex<State>, clock: &SharedClock, base: &str, incoming: Incoming) -> Answer {
    let now = clock.now();
    let token_path = format!("/{TENANT_ID}/oauth2/v2.0/token");
    let (kind, answer) = match (incoming.method.as_str(), incoming.path.as_str()) {
        ("POST", path) if path.ends_with("/oauth2/v2.0/token") => (
            Some(TokenKind::ClientCredentials),
            client_credentials(state, base, &token_path, &incoming),
        ),
        ("GET", "/msi/token") => (
            Some(TokenKind::ManagedIdentity),
            managed_identity(state, base, &incoming, now),
        ),
        _ => (None, web_api(state, base, &incoming, now)),
    };
    let request = Request::new(now, &incoming, &answer);
    let mut state = state.lock().unwrap();
    match kind {
        Some(kind) => state.token_requests.push(TokenRequest { kind, request }),
        None => state.requests.push(request),
    }
    answer
}

fn issue(state: &Mutex<State>, resource: &str, kind: TokenKind) -> String {
    let token = format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-{}.{}",
        match kind {
            TokenKind::ClientCredentials => "app",
            TokenKind::ManagedIdentity => "msi",
        },
        uuid::Uuid::new_v4().simple()
    );
    state
        .lock()
        .unwrap()
        .tokens
        .insert(token.clone(), (resource.to_owned(), kind));
    token
}

fn problem(state: &Mutex<State>, text: String) {
    state.lock().unwrap().problems.push(text);
}

/// `POST /{tenant}/oauth2/v2.0/token`, client credentials.
fn client_credentials(
    state: &Mutex<State>,
    base: &str,
    token_path: &str,
    incoming: &Incoming,
) -> Answer {
    if incoming.path != token_path {
        problem(
            state,
            format!("token request to {} (expected {token_path})", incoming.path),
        );
        return aad_error(
            400,
            "invalid_request",
            "AADSTS90002: Tenant not found. Check to make sure you have the correct tenant ID.",
        );
    }
    let form_type = incoming
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        problem(
            state,
            format!(
                "token request with Content-Type {:?}",
                incoming.header("content-type")
            ),
        );
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&incoming.body)
        .into_owned()
        .collect();
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        problem(
            state,
            format!("token request grant_type {:?}", field("grant_type")),
        );
        return aad_error(
            400,
            "unsupported_grant_type",
            "AADSTS70003: The app requested an unsupported grant type.",
        );
    }
    if field("client_id") != Some(CLIENT_ID) {
        return aad_error(
            400,
            "unauthorized_client",
            "AADSTS700016: Application with identifier was not found in the directory.",
        );
    }
    if field("client_secret") != Some(CLIENT_SECRET) {
        return aad_error(
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in \
             the request is the client secret value, not the client secret ID, for a secret \
             added to app.",
        );
    }
    let expected_scope = format!("{base}/.default");
    if field("scope") != Some(expected_scope.as_str()) {
        problem(
            state,
            format!(
                "token request scope {:?} (expected {expected_scope})",
                field("scope")
            ),
        );
        return aad_error(
            400,
            "invalid_scope",
            "AADSTS70011: The provided request must include a 'scope' input parameter. The \
             provided value for the input parameter 'scope' is not valid.",
        );
    }
    let token = issue(state, base, TokenKind::ClientCredentials);
    Answer::json(
        200,
        json!({
            "token_type": "Bearer",
            "expires_in": 3599,
            "ext_expires_in": 3599,
            "access_token": token,
        }),
    )
}

/// `GET /msi/token`: the App Service managed-identity endpoint.
fn managed_identity(
    state: &Mutex<State>,
    base: &str,
    incoming: &Incoming,
    now: OffsetDateTime,
) -> Answer {
    let pairs: HashMap<String, String> = incoming.query_pairs().into_iter().collect();
    if incoming.header("x-identity-header") != Some(IDENTITY_HEADER) {
        problem(
            state,
            "managed-identity request without the right X-IDENTITY-HEADER".into(),
        );
        return Answer::json(
            401,
            json!({"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER missing or wrong."}),
        );
    }
    if pairs.get("api-version").map(String::as_str) != Some("2019-08-01") {
        problem(
            state,
            format!(
                "managed-identity request api-version {:?}",
                pairs.get("api-version")
            ),
        );
        return Answer::json(
            400,
            json!({"statusCode": 400, "message": "api-version 2019-08-01 is required."}),
        );
    }
    let resource = pairs.get("resource").map(String::as_str).unwrap_or("");
    if resource.trim_end_matches('/') != base {
        problem(
            state,
            format!("managed-identity token for resource {resource:?} (expected {base})"),
        );
        return Answer::json(
            400,
            json!({
                "error": "invalid_resource",
                "error_description": format!("AADSTS500011: The resource principal named {resource} was not found in the tenant."),
            }),
        );
    }
    let token = issue(state, base, TokenKind::ManagedIdentity);
    let expires_on = (now + time::Duration::hours(24)).unix_timestamp();
    Answer::json(
        200,
        json!({
            "access_token": token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": "9a8b7c6d-fake-system-assigned",
        }),
    )
}

/// The Web API: `PATCH /api/data/v9.2/leads(<guid>)`.
fn web_api(state: &Mutex<State>, base: &str, incoming: &Incoming, now: OffsetDateTime) -> Answer {
    let mut found: Vec<String> = Vec::new();

    // Who is asking: a bearer token this fake issued for its own URL.
    let authorization = incoming.header("authorization").unwrap_or("");
    let issued = authorization.strip_prefix("Bearer ").and_then(|token| {
        let state = state.lock().unwrap();
        state.tokens.get(token).cloned().or_else(|| {
            let resource = state.trusted.as_ref()?.issued_for(token)?;
            Some((
                resource.trim_end_matches('/').to_owned(),
                TokenKind::ManagedIdentity,
            ))
        })
    });
    let kind = match issued {
        None => {
            problem(
                state,
                format!(
                    "{} {}: no bearer token this fake issued",
                    incoming.method, incoming.path
                ),
            );
            return Answer::empty(401).with_header(
                "www-authenticate",
                format!(
                    "Bearer authorization_uri={base}/{TENANT_ID}/oauth2/authorize, resource_id={base}/"
                ),
            );
        }
        Some((resource, _)) if resource != base => {
            problem(state, format!("a token for {resource}, not {base}"));
            return Answer::empty(401);
        }
        Some((_, kind)) => kind,
    };

    let Some(id) = incoming
        .path
        .strip_prefix(&format!("{API}leads("))
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|key| uuid::Uuid::parse_str(key).ok())
    else {
        problem(
            state,
            format!("{} {}: not a lead record", incoming.method, incoming.path),
        );
        let segment = incoming.path.trim_start_matches(API);
        return error(
            404,
            "0x80060888",
            &format!("Resource not found for the segment '{segment}'."),
        );
    };
    if incoming.method != "PATCH" {
        problem(state, format!("{} on a lead record", incoming.method));
        return error(
            405,
            "0x80060888",
            "The requested resource does not support http method.",
        );
    }
    if !incoming.query.is_empty() {
        found.push(format!("a query string: {}", incoming.query));
    }

    // The documented headers.
    for (name, expected) in [
        ("odata-maxversion", "4.0"),
        ("odata-version", "4.0"),
        ("accept", "application/json"),
        ("if-none-match", "*"),
    ] {
        if incoming.header(name) != Some(expected) {
            found.push(format!("{name}: {:?}", incoming.header(name)));
        }
    }
    if incoming.header("if-match").is_some() {
        found.push("If-Match sent with If-None-Match".into());
    }
    if !incoming.is_json() {
        found.push(format!(
            "content-type: {:?}",
            incoming.header("content-type")
        ));
    }

    // The body: an object of the lead table's string columns.
    let columns = match serde_json::from_slice::<Value>(&incoming.body) {
        Ok(Value::Object(columns)) => columns,
        other => {
            found.push(format!("a body that is not a JSON object: {other:?}"));
            record_problems(state, id, &found);
            return error(
                400,
                "0x80040203",
                "Invalid JSON: the request body must be a JSON object.",
            );
        }
    };
    for (name, value) in &columns {
        // The lead table's Rating choice: 1 Hot, 2 Warm, 3 Cold.
        if name == "leadqualitycode" {
            if !matches!(value.as_u64(), Some(1..=3)) {
                found.push(format!("leadqualitycode {value} is not a Rating choice"));
                record_problems(state, id, &found);
                return error(
                    400,
                    "0x80048d19",
                    &format!(
                        "'{value}' is not a valid value for the choice column 'leadqualitycode'."
                    ),
                );
            }
            continue;
        }
        if LEAD_BOOLEAN_COLUMNS.contains(&name.as_str()) {
            if !value.is_boolean() {
                found.push(format!("{name} is not a Boolean: {value}"));
                record_problems(state, id, &found);
                return error(
                    400,
                    "0x80048d19",
                    &format!(
                        "Error identified in Payload provided by the user for Entity :'leads'. \
                         Cannot convert the literal '{value}' to the expected type 'Edm.Boolean'."
                    ),
                );
            }
            continue;
        }
        let Some((_, max)) = LEAD_COLUMNS.iter().find(|(column, _)| column == name) else {
            found.push(format!("unknown column {name}"));
            record_problems(state, id, &found);
            return error(
                400,
                "0x80060888",
                &format!(
                    "The property '{name}' does not exist on type 'Microsoft.Dynamics.CRM.lead'. \
                     Make sure to only use property names that are defined by the type."
                ),
            );
        };
        let Some(text) = value.as_str() else {
            found.push(format!("{name} is not a string: {value}"));
            continue;
        };
        let length = text.chars().count();
        if length > *max {
            found.push(format!("{name} has {length} characters (max {max})"));
            record_problems(state, id, &found);
            return error(
                400,
                "0x80044331",
                &format!(
                    "A validation error occurred. The length of the '{name}' attribute of the \
                     'lead' entity exceeded the maximum allowed length of '{max}'."
                ),
            );
        }
    }
    record_problems(state, id, &found);

    let fault = state.lock().unwrap().faults.next(now);
    let hold = match fault {
        Fault::None => None,
        Fault::Hold(duration) => Some(duration),
        Fault::Unavailable => {
            return error(503, "0x80040216", "The service is temporarily unavailable.")
        }
        Fault::Throttled { retry_after } | Fault::ThrottledAfter { retry_after, .. } => {
            return error(
                429,
                "0x80072322",
                "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
            )
            .with_header("retry-after", retry_after.to_string())
        }
        Fault::Unauthorized => {
            return Answer::empty(401).with_header(
                "www-authenticate",
                format!(
                "Bearer authorization_uri={base}/{TENANT_ID}/oauth2/authorize, resource_id={base}/"
            ),
            )
        }
        Fault::Forbidden => {
            return error(
                403,
                "0x80040220",
                "Principal user (Id=5a1c7d1e-0000-0000-0000-000000000000, type=8, roleCount=0, \
                 privilegeCount=0, accessMode=4), is missing prvCreateLead privilege \
                 (Id=cd3e4f5a-0000-0000-0000-000000000000) on OTC=4 for entity 'lead'.",
            )
        }
    };

    let mut s = state.lock().unwrap();
    *s.by_kind.entry(kind).or_default() += 1;
    let create_only = incoming.header("if-none-match") == Some("*");
    let mut answer = if s.records.contains_key(&id) {
        if create_only {
            s.repeats += 1;
            error(
                412,
                "0x80040237",
                "A record with matching key values already exists.",
            )
        } else {
            // A plain upsert updates: what If-None-Match is there to stop.
            if let Some(record) = s.records.get_mut(&id) {
                record.columns.extend(columns);
            }
            entity_created(base, id)
        }
    } else {
        s.creates += 1;
        s.records.insert(
            id,
            LeadRecord {
                id,
                columns,
                created_at: now,
                created_with: kind,
            },
        );
        entity_created(base, id)
    };
    answer.hold = hold;
    answer
}

fn entity_created(base: &str, id: uuid::Uuid) -> Answer {
    Answer::empty(204)
        .with_header("odata-version", "4.0")
        .with_header("odata-entityid", format!("{base}{API}leads({id})"))
}

fn record_problems(state: &Mutex<State>, id: uuid::Uuid, found: &[String]) {
    for text in found {
        problem(state, format!("leads({id}): {text}"));
    }
}

impl FaultControls for DataverseFake {
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
