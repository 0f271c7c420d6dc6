//! Acting on each lead, end to end against real Azurite and a real MailDev,
//! with local receivers for the Teams Workflows URL and the webhook that
//! check requests as documented: the Standard Webhooks signature verified
//! with the `standardwebhooks` crate's own verifier, the Adaptive Card
//! envelope and element types, every lead delivered once to every
//! destination; and under faults — a receiver down for a while, failing a
//! few times, refusing for good, hanging; a SIGKILL with deliveries pending;
//! two instances on one table. Counts are printed.

mod bundles;
mod destinations;
mod faults;
mod hostile;
mod processes;
mod regressions;
mod routing;

use marketplace_leads::delivery::Deliverer;
use serde_json::Value;
use std::time::{Duration, Instant};
use testkit::fakes::{Answer, Receiver};
use testkit::{spawn_app_with, AppOptions, TestApp};

/// A Standard Webhooks secret (32 bytes, base64), as a user would make one.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwZ2xKZVdZdjA=";

pub(crate) use testkit::report;

/// A lead whose customer says who it is.
pub fn lead(name: &str) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"{name}","LastName":"Buyer","Email":"{name}@contoso.example",
"Company":"Contoso","Title":"CTO","Country":"Japan","Phone":"+81 3"}},
"LeadSource":"SPZA-PLT|fabrikam.analytics","ActionCode":"PLT","OfferTitle":"Contoso Analytics",
"Description":"Please call {name}"}}"#
    )
}

/// The receivers and the app that delivers to them.
pub struct Setup {
    pub app: TestApp,
    pub webhook: Receiver,
    pub teams: Receiver,
    /// Who gets the per-lead emails.
    pub notify_to: String,
}

/// An app with every destination switched on: email per lead (MailDev),
/// Teams, and the signed webhook.
pub async fn setup() -> Setup {
    setup_with(Vec::new()).await
}

pub async fn setup_with(extra: Vec<(&str, String)>) -> Setup {
    let webhook = Receiver::start().await;
    let teams = Receiver::start().await;
    teams.answer(Answer::Status(202));
    let notify_to = format!("sales-{}@example.com", uuid::Uuid::new_v4().simple());
    let mut settings: Vec<(String, String)> = vec![
        ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
        ("WEBHOOK_SECRET".into(), SECRET.into()),
        (
            "TEAMS_WEBHOOK_URL".into(),
            teams.url("/workflows/leads?sig=s3cr3t"),
        ),
        ("NOTIFY_TO".into(), notify_to.clone()),
    ];
    settings.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let app = spawn_app_with(AppOptions {
        extra: settings,
        ..AppOptions::default()
    })
    .await;
    Setup {
        app,
        webhook,
        teams,
        notify_to,
    }
}

pub fn deliverer(app: &TestApp) -> Deliverer {
    app.deliverer().expect("destinations are configured")
}

/// Posts a lead and returns its id.
pub async fn post(app: &TestApp, body: String) -> String {
    let response = app.post_lead(body).await;
    assert_eq!(response.status(), 201);
    let answer: Value = response.json().await.unwrap();
    answer["id"].as_str().unwrap().to_owned()
}

/// Waits until `done` holds, sweeping now and then with the test clock
/// moved on (so retries fall due), for at most `bound`.
pub async fn until(app: &TestApp, bound: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    loop {
        if done().await {
            return;
        }
        assert!(started.elapsed() < bound, "not done within {bound:?}");
        {
            // A claim in flight must not look expired to this sweep.
            let _quiet = deliverer(app).quiesce().await;
            app.clock.advance(Duration::from_secs(60));
            let _ = deliverer(app).sweep(app.clock.now()).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Delivery records in the leads table, by state prefix (`P`, `S`, `X`)
/// and destination; a pending delivery still in its lead's bundle counts.
pub async fn records(app: &TestApp, state: &str, destination: &str) -> usize {
    let prefix = format!("{state}.{destination}.L");
    let rows = app.rows().await;
    let own = rows
        .iter()
        .filter(|r| r["RowKey"].as_str().is_some_and(|k| k.starts_with(&prefix)))
        .count();
    let bundled = match state {
        "P" => testkit::tables::bundled(&rows, destination),
        _ => 0,
    };
    own + bundled
}

/// The webhook requests a receiver got, by `webhook-id`.
pub fn by_webhook_id(
    received: &[testkit::fakes::receiver::Received],
) -> std::collections::BTreeMap<String, usize> {
    let mut ids = std::collections::BTreeMap::new();
    for request in received {
        *ids.entry(request.header("webhook-id").unwrap_or_default().to_owned())
            .or_default() += 1;
    }
    ids
}

/// The handler's command line on `app`'s table; stdout (success asserted).
pub fn cli(app: &TestApp, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "LEADS_STORAGE",
            testkit::shared_azurite().connection_string(),
        )
        .env("LEADS_TABLE", &app.table)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
