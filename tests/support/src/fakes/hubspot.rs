//! A fake HubSpot CRM (v3 contacts API) on a loopback port, for
//! `HUBSPOT_API_URL`:
//!
//! - `POST /crm/v3/objects/contacts` with `{"properties":{…}}` → `201` with
//!   `{"id","properties","createdAt","updatedAt","archived":false}`; a contact
//!   with that email already there → `409` `{"status":"error","message":
//!   "Contact already exists. Existing ID: <id>","correlationId",…,
//!   "category":"CONFLICT"}` (HubSpot de-duplicates contacts by email).
//! - `PATCH /crm/v3/objects/contacts/{email}?idProperty=email` → `200` with
//!   the contact; no such contact → `404` `OBJECT_NOT_FOUND`.
//!
//! Every request is checked as HubSpot documents it: `Authorization: Bearer
//! <private app token>` (else `401` `INVALID_AUTHENTICATION`), a JSON body of
//! known contact properties, a dropdown's value one of its options (else
//! `400` `VALIDATION_ERROR`, and a problem
//! listed in [`HubSpotFake::problems`]). Faults: `429` with `Retry-After` and
//! the `RATE_LIMIT` body of the secondly limit, `503`, `401`, `403`
//! `MISSING_SCOPES`, answers held after the write took effect.

use super::crm::{
    iso_millis, Answer, Fault, FaultControls, Faults, Incoming, Request, Server, SharedClock,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// The private app's access token the fake accepts.
pub const TOKEN: &str = "pat-na1-7c1f2e3d-fake-4b5a-9c8d-0e1f2a3b4c5d";
const CONTACTS: &str = "/crm/v3/objects/contacts";

/// The contact properties the handler writes (HubSpot's internal names).
pub const CONTACT_PROPERTIES: &[&str] = &[
    "email",
    "firstname",
    "lastname",
    "phone",
    "company",
    "jobtitle",
    "country",
    "message",
];
/// HubSpot's single-line and multi-line text properties hold this many
/// characters at most.
pub const MAX_VALUE_CHARS: usize = 65_536;

/// A contact as stored.
#[derive(Debug, Clone)]
pub struct Contact {
    pub id: u64,
    pub properties: Map<String, Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Updates after its creation.
    pub updates: usize,
}

#[derive(Debug, Default)]
struct State {
    requests: Vec<Request>,
    problems: Vec<String>,
    /// By email, lowercased (HubSpot's e-mail uniqueness ignores case).
    contacts: BTreeMap<String, Contact>,
    next_id: u64,
    creates: usize,
    conflicts: usize,
    updates: usize,
    faults: Faults,
    /// Dropdown (enumeration) properties the portal's admin created, with
    /// their options' internal values.
    enumerations: BTreeMap<String, Vec<String>>,
}

pub struct HubSpotFake {
    server: Server,
    state: Arc<Mutex<State>>,
    clock: SharedClock,
}

impl HubSpotFake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            next_id: 51_201,
            ..State::default()
        }));
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

    /// `HUBSPOT_API_URL`.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// `HUBSPOT_TOKEN` and `HUBSPOT_API_URL`.
    pub fn settings(&self) -> Vec<(String, String)> {
        self.settings_with_token(TOKEN)
    }

    pub fn settings_with_token(&self, token: &str) -> Vec<(String, String)> {
        vec![
            ("HUBSPOT_TOKEN".into(), token.into()),
            ("HUBSPOT_API_URL".into(), self.url()),
        ]
    }

    /// The admin creates a dropdown contact property `name` with these
    /// options' internal values.
    pub fn create_dropdown(&self, name: &str, options: &[&str]) {
        self.state.lock().unwrap().enumerations.insert(
            name.to_owned(),
            options.iter().map(|o| o.to_string()).collect(),
        );
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    /// Contacts by lowercased email.
    pub fn contacts(&self) -> BTreeMap<String, Contact> {
        self.state.lock().unwrap().contacts.clone()
    }

    pub fn contact(&self, email: &str) -> Option<Contact> {
        self.state
            .lock()
            .unwrap()
            .contacts
            .get(&email.to_lowercase())
            .cloned()
    }

    /// Contacts created (`201`).
    pub fn creates(&self) -> usize {
        self.state.lock().unwrap().creates
    }

    /// Creates refused because the email existed (`409`).
    pub fn conflicts(&self) -> usize {
        self.state.lock().unwrap().conflicts
    }

    /// Contacts updated by email (`200`).
    pub fn updates(&self) -> usize {
        self.state.lock().unwrap().updates
    }

    pub fn answered(&self, status: u16) -> usize {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.status == status)
            .count()
    }

    pub fn summary(&self) -> String {
        let state = self.state.lock().unwrap();
        let mut by_status: BTreeMap<u16, usize> = BTreeMap::new();
        for request in &state.requests {
            *by_status.entry(request.status).or_default() += 1;
        }
        format!(
            "hubspot: {} contacts, {} creates, {} conflicts (409), {} updates, {} requests {:?}, {} problems",
            state.contacts.len(),
            state.creates,
            state.conflicts,
            state.updates,
            state.requests.len(),
            by_status,
            state.problems.len()
        )
    }
}

/// HubSpot's error body.
fn error(status: u16, category: &str, message: &str) -> Answer {
    Answer::json(
        status,
        json!({
            "status": "error",
            "message": message,
            "correlationId": uuid::Uuid::new_v4(),
            "category": category,
        }),
    )
}

fn unauthorized() -> Answer {
    error(
        401,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and \
         you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
}

fn handle(state: &Mutex<State>, clock: &SharedClock, incoming: Incoming) -> Answer {
    let now = clock.now();
    let answer = contacts_api(state, &incoming, now);
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

fn contact_json(contact: &Contact) -> Value {
    let mut properties = contact.properties.clone();
    properties.insert("hs_object_id".into(), json!(contact.id.to_string()));
    properties.insert("createdate".into(), json!(iso_millis(contact.created_at)));
    properties.insert(
        "lastmodifieddate".into(),
        json!(iso_millis(contact.updated_at)),
    );
    json!({
        "id": contact.id.to_string(),
        "properties": properties,
        "createdAt": iso_millis(contact.created_at),
        "updatedAt": iso_millis(contact.updated_at),
        "archived": false,
    })
}

fn contacts_api(state: &Mutex<State>, incoming: &Incoming, now: OffsetDateTime) -> Answer {
    let target = incoming.path.as_str();
    let key = target
        .strip_prefix(CONTACTS)
        .and_then(|rest| rest.strip_prefix('/'))
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        });
    match (incoming.method.as_str(), target == CONTACTS, &key) {
        ("POST", true, _) | ("PATCH", false, Some(_)) => {}
        _ => {
            problem(
                state,
                format!("{} {}: not a contacts call", incoming.method, target),
            );
            return error(404, "OBJECT_NOT_FOUND", "Resource not found.");
        }
    }

    // A private app's token, as a bearer token.
    match incoming.header("authorization") {
        Some(value) if value == format!("Bearer {TOKEN}") => {}
        Some(value) if value.starts_with("Bearer ") => return unauthorized(),
        other => {
            problem(
                state,
                format!("{} {target}: Authorization {other:?}", incoming.method),
            );
            return unauthorized();
        }
    }

    let mut found = Vec::new();
    if !incoming.is_json() {
        found.push(format!(
            "content-type: {:?}",
            incoming.header("content-type")
        ));
    }
    let properties = match serde_json::from_slice::<Value>(&incoming.body) {
        Ok(Value::Object(mut body)) => {
            let properties = body.remove("properties");
            if !body.is_empty() {
                found.push(format!(
                    "keys besides properties: {:?}",
                    body.keys().collect::<Vec<_>>()
                ));
            }
            match properties {
                Some(Value::Object(properties)) => properties,
                other => {
                    found.push(format!("properties is not an object: {other:?}"));
                    Map::new()
                }
            }
        }
        other => {
            found.push(format!("a body that is not a JSON object: {other:?}"));
            Map::new()
        }
    };
    let mut invalid = Vec::new();
    let enumerations = state.lock().unwrap().enumerations.clone();
    for (name, value) in &properties {
        if let Some(options) = enumerations.get(name) {
            // A dropdown takes an option's internal value, nothing else.
            let text = value.as_str().unwrap_or_default();
            if !options.iter().any(|o| o == text) {
                found.push(format!("{name} {value} is not one of its options"));
                invalid.push(json!({"isValid": false,
                    "message": format!("{value} was not one of the allowed options: {options:?}"),
                    "error": "INVALID_OPTION", "name": name}));
            }
            continue;
        }
        if !CONTACT_PROPERTIES.contains(&name.as_str()) {
            found.push(format!("unknown property {name}"));
            invalid.push(
                json!({"isValid": false, "message": format!("Property \"{name}\" does not exist"),
                "error": "PROPERTY_DOESNT_EXIST", "name": name}),
            );
            continue;
        }
        match value.as_str() {
            None => found.push(format!("{name} is not a string: {value}")),
            Some(text) if text.chars().count() > MAX_VALUE_CHARS => {
                found.push(format!(
                    "{name} is longer than {MAX_VALUE_CHARS} characters"
                ));
                invalid.push(
                    json!({"isValid": false, "message": format!("{name} is too long"),
                    "error": "INVALID_STRING", "name": name}),
                );
            }
            Some(_) => {}
        }
    }
    let email = properties
        .get("email")
        .and_then(Value::as_str)
        .map(str::to_lowercase);
    match &email {
        None => found.push("no email property".into()),
        Some(email) if !email.contains('@') => {
            found.push(format!("email {email:?} is not an address"));
            invalid.push(
                json!({"isValid": false, "message": format!("Email address {email} is invalid"),
                "error": "INVALID_EMAIL", "name": "email"}),
            );
        }
        Some(_) => {}
    }
    if incoming.method == "PATCH" {
        let by_email = incoming
            .query_pairs()
            .iter()
            .any(|(name, value)| name == "idProperty" && value == "email");
        if !by_email {
            found.push(format!(
                "PATCH without idProperty=email: {}",
                incoming.query
            ));
        }
        if key.as_deref().map(str::to_lowercase) != email {
            found.push(format!(
                "PATCH of {:?} with email {:?}: would change the contact's email",
                key, email
            ));
        }
    }
    for text in &found {
        problem(state, format!("{} {target}: {text}", incoming.method));
    }
    if !invalid.is_empty() {
        return error(
            400,
            "VALIDATION_ERROR",
            &format!("Property values were not valid: {}", Value::Array(invalid)),
        );
    }

    let fault = state.lock().unwrap().faults.next(now);
    let hold = match fault {
        Fault::None => None,
        Fault::Hold(duration) => Some(duration),
        Fault::Unavailable => {
            return Answer::json(
                503,
                json!({"status": "error", "message": "Service Unavailable",
                       "correlationId": uuid::Uuid::new_v4(), "category": "SERVICE_UNAVAILABLE"}),
            )
        }
        Fault::Throttled { retry_after } | Fault::ThrottledAfter { retry_after, .. } => {
            let mut answer = Answer::json(
                429,
                json!({
                    "status": "error",
                    "message": "You have reached your secondly limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": uuid::Uuid::new_v4(),
                    "policyName": "SECONDLY",
                    "groupName": "publicapi:private-app:fake",
                }),
            )
            .with_header("retry-after", retry_after.to_string())
            .with_header("x-hubspot-ratelimit-secondly-remaining", "0");
            if let Fault::ThrottledAfter { after, .. } = fault {
                answer.hold = Some(after);
            }
            return answer;
        }
        Fault::Unauthorized => return unauthorized(),
        Fault::Forbidden => {
            return Answer::json(
                403,
                json!({
                    "status": "error",
                    "message": "This app hasn't been granted all required scopes to make this call. \
                                Read more about required scopes here: https://developers.hubspot.com/scopes.",
                    "correlationId": uuid::Uuid::new_v4(),
                    "errors": [{"message": "One or more of the following scopes are required.",
                                "context": {"requiredGranularScopes": ["crm.objects.contacts.write"]}}],
                    "links": {"scopes": "https://developers.hubspot.com/scopes"},
                    "category": "MISSING_SCOPES",
                }),
            )
        }
    };
    let Some(email) = email else {
        return error(400, "VALIDATION_ERROR", "An email is required here.");
    };

    let mut s = state.lock().unwrap();
    let mut answer = if incoming.method == "POST" {
        if let Some(existing) = s.contacts.get(&email) {
            let id = existing.id;
            s.conflicts += 1;
            error(
                409,
                "CONFLICT",
                &format!("Contact already exists. Existing ID: {id}"),
            )
        } else {
            let id = s.next_id;
            s.next_id += 1;
            s.creates += 1;
            let contact = Contact {
                id,
                properties,
                created_at: now,
                updated_at: now,
                updates: 0,
            };
            let body = contact_json(&contact);
            s.contacts.insert(email, contact);
            Answer::json(201, body)
        }
    } else {
        match s.contacts.get_mut(&email) {
            Some(contact) => {
                contact.properties.extend(properties);
                contact.updated_at = now;
                contact.updates += 1;
                let body = contact_json(contact);
                s.updates += 1;
                Answer::json(200, body)
            }
            None => Answer::json(
                404,
                json!({
                    "status": "error",
                    "message": "resource not found",
                    "correlationId": uuid::Uuid::new_v4(),
                    "context": {"id": [key.clone().unwrap_or_default()]},
                    "category": "OBJECT_NOT_FOUND",
                }),
            ),
        }
    };
    answer.hold = hold;
    answer
}

impl FaultControls for HubSpotFake {
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
