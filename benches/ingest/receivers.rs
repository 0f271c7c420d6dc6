//! Local destinations for the delivery phase, in this process: a Standard
//! Webhooks receiver (`/hook`, answers 200 after checking the signature)
//! and a Teams Workflows receiver (`/teams`, answers 202 as Teams does).
//! Each notes when each lead first arrived, by lead id.

use bytes::Bytes;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use warp::http::{HeaderMap, StatusCode};
use warp::Filter;

/// Arrivals at one receiver.
#[derive(Default)]
pub struct Arrivals {
    /// Lead id → first arrival.
    pub first: HashMap<String, Instant>,
    /// Requests for a lead already received.
    pub repeats: usize,
    /// Requests whose signature did not verify, or whose lead id was
    /// unreadable.
    pub bad: usize,
}

impl Arrivals {
    fn note(&mut self, lead_id: Option<String>, at: Instant) {
        match lead_id {
            Some(id) if !id.is_empty() => match self.first.entry(id) {
                std::collections::hash_map::Entry::Occupied(_) => self.repeats += 1,
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(at);
                }
            },
            _ => self.bad += 1,
        }
    }
}

pub struct Receivers {
    pub port: u16,
    pub webhook: Arc<Mutex<Arrivals>>,
    pub teams: Arc<Mutex<Arrivals>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receivers {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
pub fn webhook_secret() -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = (0..2)
        .flat_map(|_| *uuid::Uuid::new_v4().as_bytes())
        .collect();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The lead id of a Teams card: the "Lead id" fact, its punctuation
/// escaped as the handler escapes it.
fn card_lead_id(card: &Value) -> Option<String> {
    let body = card["attachments"][0]["content"]["body"].as_array()?;
    body.iter()
        .filter_map(|block| block["facts"].as_array())
        .flatten()
        .find(|fact| fact["title"] == "Lead id")
        .and_then(|fact| fact["value"].as_str())
        .map(|v| v.replace('\\', ""))
}

impl Receivers {
    pub async fn start(secret: &str) -> Self {
        let webhook: Arc<Mutex<Arrivals>> = Arc::default();
        let teams: Arc<Mutex<Arrivals>> = Arc::default();
        let verifier = Arc::new(standardwebhooks::Webhook::new(secret).expect("a whsec_ secret"));
        let hook = {
            let webhook = webhook.clone();
            warp::post()
                .and(warp::path("hook"))
                .and(warp::header::headers_cloned())
                .and(warp::body::bytes())
                .map(move |headers: HeaderMap, body: Bytes| {
                    let at = Instant::now();
                    let signed = verifier.verify(&body, &headers).is_ok();
                    let lead_id = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| v["data"]["leadId"].as_str().map(str::to_owned))
                        .filter(|_| signed);
                    webhook.lock().expect("arrivals").note(lead_id, at);
                    StatusCode::OK
                })
        };
        let card = {
            let teams = teams.clone();
            warp::post()
                .and(warp::path("teams"))
                .and(warp::body::bytes())
                .map(move |body: Bytes| {
                    let at = Instant::now();
                    let lead_id = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|card| card_lead_id(&card));
                    teams.lock().expect("arrivals").note(lead_id, at);
                    StatusCode::ACCEPTED
                })
        };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the receivers");
        let port = listener.local_addr().expect("the receivers' port").port();
        let server = tokio::spawn(warp::serve(hook.or(card)).incoming(listener).run());
        Self {
            port,
            webhook,
            teams,
            server,
        }
    }

    pub fn webhook_url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn teams_url(&self) -> String {
        format!("http://127.0.0.1:{}/teams", self.port)
    }
}
