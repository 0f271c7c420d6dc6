//! What only the real binary shows: a SIGKILL in mid-delivery (the CRM has
//! written the record, the handler never heard back), and the managed
//! identity's token from the platform's endpoint.

use super::*;
use std::path::Path;
use testkit::fakes::crm::Fault;
use testkit::fakes::dataverse::TokenKind;
use testkit::process::{post_lead, HandlerProcess};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_handler"))
}

fn env(app: &TestApp, settings: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        (
            "LEADS_STORAGE".into(),
            testkit::shared_azurite().connection_string(),
        ),
        ("LEADS_TABLE".into(), app.table.clone()),
        ("DELIVERY_SCHEDULE".into(), "*/2 * * * * *".into()),
        ("RUST_LOG".into(), "error".into()),
    ];
    env.extend(settings);
    env
}

async fn wait_for(what: &str, bound: Duration, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(started.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_sigkill_in_mid_delivery_leaves_one_record_per_lead() {
    // The app only gives the test its table; the processes do the work.
    let app = spawn_app_with(AppOptions::default()).await;
    let dataverse = DataverseFake::start().await;
    let hubspot = HubSpotFake::start().await;
    // Each write lands, and its answer never comes back before the kill.
    dataverse.set_fault(Fault::Hold(Duration::from_secs(120)));
    hubspot.set_fault(Fault::Hold(Duration::from_secs(120)));
    let mut settings = dataverse.app_registration_settings();
    settings.extend(hubspot.settings());
    let env = env(&app, settings);
    let first = HandlerProcess::start(binary(), &env);
    let client = reqwest::Client::new();
    // As many as may have their first attempts in flight at once, each
    // held until the kill: a lead beyond them waits for a sweep, which a
    // held write keeps busy for its 30 s bound (a sweep starting between
    // two posts once left the last leads unsent past the wait below).
    let leads = marketplace_leads::delivery::lanes::FAST_LANE;
    for i in 0..leads {
        assert_eq!(
            post_lead(&client, &first.address(), lead(&format!("Kill{i}"))).await,
            201
        );
    }
    // The first attempts have written every Dataverse record and contact.
    wait_for("writes in flight", Duration::from_secs(12), async || {
        dataverse.creates() == leads && hubspot.creates() >= 1
    })
    .await;
    assert_eq!(
        records(&app, "S", "dataverse").await,
        0,
        "none recorded yet"
    );
    assert_eq!(records(&app, "S", "hubspot").await, 0, "none recorded yet");
    first.kill();
    let in_flight = (dataverse.creates(), hubspot.creates());

    dataverse.set_fault(Fault::None);
    hubspot.set_fault(Fault::None);
    dataverse.release_holds();
    hubspot.release_holds();
    let restarted = Instant::now();
    let second = HandlerProcess::start(binary(), &env);
    // The dead instance's claims run out (60 s), then the sweep goes on.
    wait_for(
        "delivered after the restart",
        Duration::from_secs(120),
        async || {
            records(&app, "S", "dataverse").await == leads
                && records(&app, "S", "hubspot").await == leads
        },
    )
    .await;
    let took = restarted.elapsed();
    // Let it sweep a little more: nothing changes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(second);

    assert_eq!(dataverse.records().len(), leads, "one record per lead");
    assert_eq!(dataverse.creates(), leads);
    assert_eq!(
        dataverse.repeats(),
        leads,
        "each record written before the kill was answered 412 after it"
    );
    assert_eq!(hubspot.contacts().len(), leads, "one contact per lead");
    assert_eq!(hubspot.creates(), leads);
    assert_eq!(
        hubspot.conflicts(),
        in_flight.1,
        "each contact written before the kill was found by email after it"
    );
    assert_eq!(hubspot.updates(), in_flight.1);
    for destination in ["dataverse", "hubspot"] {
        assert_eq!(records(&app, "P", destination).await, 0);
        assert_eq!(records(&app, "X", destination).await, 0);
    }
    let problems: Vec<String> = dataverse
        .problems()
        .into_iter()
        .chain(hubspot.problems())
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    report!(
        "SIGKILL with {} Dataverse and {} HubSpot writes in flight ({leads} leads): after the \
         restart ({took:?}) one record per lead; {}; {}",
        in_flight.0,
        in_flight.1,
        dataverse.summary(),
        hubspot.summary()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_managed_identity_gets_the_dataverse_token_from_the_platform() {
    let app = spawn_app_with(AppOptions::default()).await;
    let dataverse = DataverseFake::start().await;
    let process = HandlerProcess::start(binary(), &env(&app, dataverse.managed_identity_env()));
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for i in 0..3 {
        let response = client
            .post(format!("{}/api/LeadIngest", process.address()))
            .body(lead(&format!("Identity{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let answer: Value = response.json().await.unwrap();
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }
    wait_for("delivered", Duration::from_secs(30), async || {
        records(&app, "S", "dataverse").await == 3
    })
    .await;
    drop(process);

    let tokens = dataverse.token_requests();
    assert!(!tokens.is_empty());
    for token in &tokens {
        assert_eq!(token.kind, TokenKind::ManagedIdentity);
        assert_eq!(token.request.status, 200);
        assert_eq!(token.request.method, "GET");
        assert_eq!(
            token.request.header("x-identity-header"),
            Some(testkit::fakes::dataverse::IDENTITY_HEADER)
        );
        let query: std::collections::HashMap<String, String> =
            url::Url::parse(&format!("http://x{}", token.request.path))
                .unwrap()
                .query_pairs()
                .into_owned()
                .collect();
        assert_eq!(query["api-version"], "2019-08-01");
        assert_eq!(query["resource"], dataverse.url());
    }
    assert_eq!(dataverse.requests_with(TokenKind::ManagedIdentity), 3);
    assert_eq!(dataverse.requests_with(TokenKind::ClientCredentials), 0);
    for id in &ids {
        let record = dataverse.record(record_id(id)).expect("a record");
        assert_eq!(record.created_with, TokenKind::ManagedIdentity);
    }
    assert!(
        dataverse.problems().is_empty(),
        "{:#?}",
        dataverse.problems()
    );
    report!(
        "managed identity: {} token request(s) to IDENTITY_ENDPOINT, 3 records; {}",
        tokens.len(),
        dataverse.summary()
    );
    app.stop().await;
}
