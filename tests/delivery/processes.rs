//! What only real processes show: a SIGKILL with deliveries pending, and
//! two instances delivering from one table.

use super::*;
use testkit::process::{post_lead, HandlerProcess};

fn env(app: &TestApp, webhook: &Receiver, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        (
            "LEADS_STORAGE".into(),
            testkit::shared_azurite().connection_string(),
        ),
        ("LEADS_TABLE".into(), app.table.clone()),
        ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
        ("WEBHOOK_SECRET".into(), SECRET.into()),
        ("RUST_LOG".into(), "warn".into()),
    ];
    env.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    env
}

#[tokio::test]
async fn a_sigkill_with_deliveries_pending_loses_none() {
    // The app only gives the test its table; the processes do the work.
    let app = spawn_app_with(AppOptions::default()).await;
    let webhook = Receiver::start().await;
    webhook.answer(Answer::Status(503));
    let client = reqwest::Client::new();
    let first = HandlerProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_handler")),
        &env(&app, &webhook, &[]),
    );
    for i in 0..10 {
        assert_eq!(
            post_lead(&client, &first.address(), lead(&format!("Kill{i}"))).await,
            201
        );
    }
    first.kill();

    webhook.answer(Answer::Status(200));
    let second = HandlerProcess::start(
        std::path::Path::new(env!("CARGO_BIN_EXE_handler")),
        &env(&app, &webhook, &[("DELIVERY_SCHEDULE", "*/2 * * * * *")]),
    );
    // A delivery the killed process had claimed waits for its claim's
    // lease to run out; the rest are due within the first backoff.
    let bound = marketplace_leads::delivery::lease::HTTP_LEASE + Duration::from_secs(30);
    let started = Instant::now();
    while records(&app, "S", "webhook").await < 10 {
        assert!(
            started.elapsed() < bound,
            "not all delivered within {bound:?} of the restart"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let took = started.elapsed();
    let by_id = by_webhook_id(&webhook.received());
    let delivered_ok = webhook.received().len();
    assert_eq!(by_id.len(), 10);
    report!(
        "SIGKILL with 10 deliveries pending: all 10 delivered {:.1} s after the restart \
         ({delivered_ok} requests in all, failures before the kill included)",
        took.as_secs_f64()
    );
    drop(second);
    app.stop().await;
}

#[tokio::test]
async fn two_instances_on_one_table_deliver_nothing_twice() {
    let app = spawn_app_with(AppOptions::default()).await;
    let webhook = Receiver::start().await;
    let fast_sweeps = [("DELIVERY_SCHEDULE", "* * * * * *")];
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_handler"));
    let a = HandlerProcess::start(binary, &env(&app, &webhook, &fast_sweeps));
    let b = HandlerProcess::start(binary, &env(&app, &webhook, &fast_sweeps));
    let client = reqwest::Client::new();
    let leads = 30;
    for i in 0..leads {
        let address = if i % 2 == 0 { a.address() } else { b.address() };
        assert_eq!(
            post_lead(&client, &address, lead(&format!("Twin{i}"))).await,
            201
        );
    }
    let started = Instant::now();
    while records(&app, "S", "webhook").await < leads {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "not all delivered"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Let both go on sweeping a little: nothing more may go out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let received = webhook.received();
    let by_id = by_webhook_id(&received);
    report!(
        "two instances, {leads} leads: {} requests, {} distinct webhook-ids",
        received.len(),
        by_id.len()
    );
    assert_eq!(by_id.len(), leads);
    assert_eq!(received.len(), leads, "nothing delivered twice: {by_id:?}");
    drop((a, b));
    app.stop().await;
}
