//! The managed-identity endpoint the Functions platform gives an app
//! (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`): `GET
//! <endpoint>?resource=<uri>&api-version=2019-08-01` with the header
//! `X-IDENTITY-HEADER`, answered `{"access_token", "expires_on", "resource",
//! "token_type"}` as App Service documents it. It issues a token for any
//! of the resources it was started with and remembers which, so the fakes
//! of those services can check a bearer token as their real counterparts
//! would.

use super::crm::{Answer, Incoming, Server};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// The `IDENTITY_HEADER` secret the platform gives the app.
pub const IDENTITY_HEADER: &str = "7d1e5f3a-fake-platform-identity-header";
const API_VERSION: &str = "2019-08-01";

#[derive(Debug, Default)]
struct State {
    /// token → the resource it was issued for.
    issued: HashMap<String, String>,
    problems: Vec<String>,
}

/// A running managed-identity endpoint; clones share it.
#[derive(Clone)]
pub struct ManagedIdentityFake {
    server: Arc<Server>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for ManagedIdentityFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManagedIdentityFake")
    }
}

impl ManagedIdentityFake {
    /// Issues tokens for `resources` (`https://communication.azure.com`,
    /// a Dataverse organization URL…), refuses any other.
    pub async fn start(resources: &[&str]) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let allowed: Arc<Vec<String>> = Arc::new(
            resources
                .iter()
                .map(|r| r.trim_end_matches('/').to_owned())
                .collect(),
        );
        let server = {
            let (state, allowed) = (state.clone(), allowed.clone());
            Server::start(move |incoming: Incoming| {
                let (state, allowed) = (state.clone(), allowed.clone());
                async move { answer(&state, &allowed, &incoming) }
            })
            .await
        };
        Self {
            server: Arc::new(server),
            state,
        }
    }

    /// The environment the platform gives an app with a managed identity.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "IDENTITY_ENDPOINT".into(),
                format!("{}/msi/token", self.server.url()),
            ),
            ("IDENTITY_HEADER".into(), IDENTITY_HEADER.into()),
        ]
    }

    /// The resource `token` was issued for, if this endpoint issued it.
    pub fn issued_for(&self, token: &str) -> Option<String> {
        self.state.lock().unwrap().issued.get(token).cloned()
    }

    /// Requests that were not as the platform's endpoint expects.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }
}

fn answer(state: &Mutex<State>, allowed: &[String], incoming: &Incoming) -> Answer {
    let mut state = state.lock().unwrap();
    let pairs: HashMap<String, String> = incoming.query_pairs().into_iter().collect();
    if incoming.method != "GET" || incoming.path != "/msi/token" {
        state.problems.push(format!(
            "{} {}: no such route",
            incoming.method, incoming.path
        ));
        return Answer::json(404, json!({"statusCode": 404, "message": "Not found."}));
    }
    if incoming.header("x-identity-header") != Some(IDENTITY_HEADER) {
        state
            .problems
            .push("a token request without the right X-IDENTITY-HEADER".into());
        return Answer::json(
            401,
            json!({"statusCode": 401, "message": "Unauthorized: X-IDENTITY-HEADER missing or wrong."}),
        );
    }
    if pairs.get("api-version").map(String::as_str) != Some(API_VERSION) {
        state
            .problems
            .push(format!("api-version {:?}", pairs.get("api-version")));
        return Answer::json(
            400,
            json!({"statusCode": 400, "message": "api-version 2019-08-01 is required."}),
        );
    }
    let resource = pairs.get("resource").cloned().unwrap_or_default();
    if !allowed.iter().any(|r| *r == resource.trim_end_matches('/')) {
        state
            .problems
            .push(format!("a token for an unknown resource {resource:?}"));
        return Answer::json(
            400,
            json!({
                "error": "invalid_resource",
                "error_description": format!("AADSTS500011: The resource principal named {resource} was not found in the tenant."),
            }),
        );
    }
    let token = format!(
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.fake-platform-msi.{}",
        uuid::Uuid::new_v4().simple()
    );
    state.issued.insert(token.clone(), resource.clone());
    let expires_on = (OffsetDateTime::now_utc() + time::Duration::hours(24)).unix_timestamp();
    Answer::json(
        200,
        json!({
            "access_token": token,
            "expires_on": expires_on.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": "5e6f7a8b-fake-system-assigned",
        }),
    )
}
