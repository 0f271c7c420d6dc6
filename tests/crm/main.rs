//! Writing each lead into the CRMs, end to end against real Azurite (and
//! MailDev for the digest), with local fakes of Dataverse (and its identity
//! platform: client credentials and the managed-identity endpoint) and of
//! HubSpot that check every request as Microsoft and HubSpot document it and
//! answer with their documented statuses and bodies.
//!
//! What it shows, with counts printed: 500 leads each exactly once in each
//! CRM; under 503 for a minute, 429 bursts and a SIGKILL in mid-delivery,
//! still one record per lead; a repeated create is 412 (Dataverse) or
//! 409-then-update (HubSpot) and counts as delivered; a refused identity is
//! dead, listed and in the digest; test leads stay out unless asked for; a
//! HubSpot lead needs an email; hostile text stays literal; `deliveries
//! backfill` loads earlier leads once; the managed identity gets the token.

mod backfill;
mod fakes;
mod faults;
mod leads;
mod load;
mod processes;
mod refusals;
mod salesforce_marketo;

use ::testkit::fakes::{DataverseFake, HubSpotFake};
use marketplace_leads::delivery::Deliverer;
use serde_json::{Map, Value};
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testkit::fakes::FaultControls;
use testkit::{spawn_app_with, AppOptions, TestApp};

pub(crate) use testkit::report;

/// A lead whose customer says who it is (`<name>@contoso.example`).
pub fn lead(name: &str) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"{name}","LastName":"Buyer","Email":"{name}@contoso.example",
"Company":"Contoso","Title":"CTO","Country":"Japan","Phone":"+81 3-1234-5678"}},
"LeadSource":"SPZA-PLT|fabrikam.analytics","ActionCode":"PLT","OfferTitle":"Contoso Analytics",
"Description":"Please call {name}"}}"#
    )
}

/// The email a [`lead`] has, as HubSpot keys it.
pub fn email(name: &str) -> String {
    format!("{name}@contoso.example").to_lowercase()
}

/// The Dataverse record key of a lead id.
pub fn record_id(lead_id: &str) -> uuid::Uuid {
    marketplace_leads::delivery::destinations::dataverse::record_id(lead_id)
}

/// Both CRM fakes and an app that writes to them.
pub struct Crm {
    pub app: TestApp,
    pub dataverse: DataverseFake,
    pub hubspot: HubSpotFake,
}

impl Crm {
    /// Neither fake saw a request break a documented rule.
    pub fn assert_clean(&self) {
        let problems: Vec<String> = self
            .dataverse
            .problems()
            .into_iter()
            .chain(self.hubspot.problems())
            .collect();
        assert!(
            problems.is_empty(),
            "requests broke the rules: {problems:#?}"
        );
    }

    /// Whether each CRM has exactly `n` delivered records (one read of
    /// the table for both).
    pub async fn delivered_to_both(&self, n: usize) -> bool {
        let rows = self.app.rows().await;
        let delivered = |destination| records_in(&rows, "S", destination).count();
        delivered("dataverse") == n && delivered("hubspot") == n
    }

    pub fn summary(&self) -> String {
        format!("{}; {}", self.dataverse.summary(), self.hubspot.summary())
    }
}

/// An app with Dataverse (app registration) and HubSpot switched on.
pub async fn setup() -> Crm {
    setup_with(Vec::new()).await
}

/// Later settings win over the defaults.
pub async fn setup_with(extra: Vec<(&str, String)>) -> Crm {
    let dataverse = DataverseFake::start().await;
    let hubspot = HubSpotFake::start().await;
    let mut settings = dataverse.app_registration_settings();
    settings.extend(hubspot.settings());
    settings.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let app = spawn_app_with(AppOptions {
        extra: settings,
        ..AppOptions::default()
    })
    .await;
    dataverse.set_clock(app.clock.clone());
    hubspot.set_clock(app.clock.clone());
    Crm {
        app,
        dataverse,
        hubspot,
    }
}

pub fn deliverer(app: &TestApp) -> Deliverer {
    app.deliverer().expect("destinations are configured")
}

/// Posts a lead and returns its id.
pub async fn post(app: &TestApp, body: impl Into<reqwest::Body>) -> String {
    let response = app.post_lead(body).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    answer["id"].as_str().unwrap().to_owned()
}

/// Sweeps, moving the test clock on by `step` before each sweep (so that
/// retries fall due), until `done` holds; for at most `bound` of real time.
/// Returns the sweeps it took.
pub async fn until(
    app: &TestApp,
    step: Duration,
    bound: Duration,
    mut done: impl AsyncFnMut() -> bool,
) -> usize {
    let started = Instant::now();
    let mut sweeps = 0;
    loop {
        if done().await {
            return sweeps;
        }
        assert!(
            started.elapsed() < bound,
            "not done within {bound:?} ({sweeps} sweeps)"
        );
        sweep_after(app, step).await;
        sweeps += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One sweep, `step` later by the test clock, with no first attempt in
/// flight (its claim must not look expired to the sweep).
pub async fn sweep_after(app: &TestApp, step: Duration) {
    let _quiet = deliverer(app).quiesce().await;
    app.clock.advance(step);
    deliverer(app)
        .sweep(app.clock.now())
        .await
        .expect("a sweep");
}

/// Delivery records in the leads table, by state (`P`, `S`, `X`) and
/// destination.
pub async fn rows(app: &TestApp, state: &str, destination: &str) -> Vec<Map<String, Value>> {
    records_in(&app.rows().await, state, destination)
        .cloned()
        .collect()
}

/// The delivery records of `destination` in `state` among `rows` (a
/// pending one may still be in its lead's bundle).
fn records_in<'a>(
    rows: &'a [Map<String, Value>],
    state: &str,
    destination: &str,
) -> impl Iterator<Item = &'a Map<String, Value>> {
    let prefix = format!("{state}.{destination}.L");
    let pending = state == "P";
    let destination = destination.to_owned();
    rows.iter().filter(move |r| {
        r["RowKey"].as_str().is_some_and(|k| k.starts_with(&prefix))
            || (pending && testkit::tables::bundles(r, &destination))
    })
}

pub async fn records(app: &TestApp, state: &str, destination: &str) -> usize {
    rows(app, state, destination).await.len()
}

/// Every lead delivered once to each CRM, nothing pending or dead, and
/// each fake holding exactly one record per lead, created once.
pub async fn assert_each_once(crm: &Crm, ids: &[String], names: &[String]) {
    let n = ids.len();
    for destination in ["dataverse", "hubspot"] {
        assert_eq!(
            records(&crm.app, "S", destination).await,
            n,
            "{destination}"
        );
        assert_eq!(
            records(&crm.app, "P", destination).await,
            0,
            "{destination}"
        );
        assert_eq!(
            records(&crm.app, "X", destination).await,
            0,
            "{destination}"
        );
    }
    let dataverse = crm.dataverse.records();
    assert_eq!(dataverse.len(), n, "one Dataverse record per lead");
    assert_eq!(crm.dataverse.creates(), n, "each record created once");
    for id in ids {
        assert!(dataverse.contains_key(&record_id(id)), "no record for {id}");
    }
    let contacts = crm.hubspot.contacts();
    assert_eq!(contacts.len(), n, "one HubSpot contact per lead");
    assert_eq!(crm.hubspot.creates(), n, "each contact created once");
    for name in names {
        assert!(contacts.contains_key(&email(name)), "no contact for {name}");
    }
    crm.assert_clean();
}

/// The `handler` binary with the app's storage and table, and `env`.
pub fn handler_cli(app: &TestApp, args: &[&str], env: &[(String, String)]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "LEADS_STORAGE",
            testkit::shared_azurite().connection_string(),
        )
        .env("LEADS_TABLE", &app.table)
        .env("RUST_LOG", "error")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("run the handler");
    assert!(
        output.status.success(),
        "handler {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
