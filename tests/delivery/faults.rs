//! Deliveries under faults: a receiver down for a while, failing twice,
//! refusing for good (then fixed), a crash between sending and recording,
//! a crash between storing a lead and settling its first attempts, a
//! receiver that never answers.

use super::*;
use std::process::Command;
use testkit::shared_maildev;

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_everything_once() {
    let mut s = setup().await;
    s.webhook.stop();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(post(&s.app, lead(&format!("Down{i}"))).await);
    }
    // The first attempts fail (nothing listens) and wait for their retry.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(s.webhook.received().is_empty());
    assert_eq!(
        records(&s.app, "P", "webhook").await,
        6,
        "all still pending"
    );

    s.webhook.restart().await;
    until(&s.app, Duration::from_secs(60), async || {
        records(&s.app, "S", "webhook").await == 6
    })
    .await;
    let received = s.webhook.received();
    let by_id = by_webhook_id(&received);
    assert_eq!(by_id.len(), 6);
    assert!(by_id.values().all(|n| *n == 1), "each once: {by_id:?}");
    report!(
        "receiver down, then back: 6 leads, {} requests, {} ids",
        received.len(),
        by_id.len()
    );
    s.app.stop().await;
}

#[tokio::test]
async fn failing_twice_then_answering_delivers_under_one_id() {
    let s = setup().await;
    s.webhook
        .script([Answer::Status(500), Answer::RetryAfter(503, 1)]);
    post(&s.app, lead("Flaky")).await;
    until(&s.app, Duration::from_secs(60), async || {
        records(&s.app, "S", "webhook").await == 1
    })
    .await;
    let received = s.webhook.received();
    assert_eq!(received.len(), 3, "500, 503, then 200");
    let by_id = by_webhook_id(&received);
    assert_eq!(by_id.len(), 1, "the same webhook-id each time: {by_id:?}");
    for request in &received {
        super::destinations::verified(request);
    }
    report!(
        "500, 503 then 200: delivered after {} attempts, one webhook-id",
        received.len()
    );
    s.app.stop().await;
}

#[tokio::test]
async fn refused_for_good_is_dead_reported_and_delivered_once_fixed() {
    let s = setup().await;
    s.webhook.answer(Answer::Status(410));
    s.teams.answer(Answer::Status(401));
    let id = post(&s.app, lead("Gone")).await;
    until(&s.app, Duration::from_secs(30), async || {
        records(&s.app, "X", "webhook").await == 1 && records(&s.app, "X", "teams").await == 1
    })
    .await;
    assert_eq!(s.webhook.received().len(), 1, "a 410 is not retried");
    assert_eq!(s.teams.received().len(), 1, "a 401 is not retried");

    // The next digest says so.
    let report = s.app.run_digest().await.unwrap();
    assert!(matches!(
        report.outcome,
        marketplace_leads::digest::Outcome::Sent { .. }
    ));
    let digest = shared_maildev().emails_to(&s.app.recipient).await;
    let text = digest[0]["text"].as_str().unwrap();
    assert!(text.contains("could not be delivered (2)"), "{text}");
    assert!(
        text.contains(&id) && text.contains("HTTP 410") && text.contains("HTTP 401"),
        "{text}"
    );

    // Fixed: `deliveries retry` puts them back, and they go out, once.
    s.webhook.answer(Answer::Status(200));
    s.teams.answer(Answer::Status(202));
    let output = Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["deliveries", "retry", "--dead", "--since", "1h"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "LEADS_STORAGE",
            testkit::shared_azurite().connection_string(),
        )
        .env("LEADS_TABLE", &s.app.table)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("2 deliveries put back"), "{stdout}");
    until(&s.app, Duration::from_secs(30), async || {
        records(&s.app, "S", "webhook").await == 1 && records(&s.app, "S", "teams").await == 1
    })
    .await;
    assert_eq!(records(&s.app, "X", "webhook").await, 0);
    let by_id = by_webhook_id(&s.webhook.received());
    assert_eq!(
        by_id.len(),
        1,
        "the retry carries the same webhook-id: {by_id:?}"
    );
    report!("410/401: dead, in the digest, delivered after `deliveries retry`");
    s.app.stop().await;
}

#[tokio::test]
async fn a_crash_between_sending_and_recording_resends_under_the_same_id() {
    let s = setup().await;
    // Nothing is delivered until the test says so.
    refused_once(&s, "Crash").await;
    // A sweep claimed it, sent it, and died before recording the outcome:
    // the claim stays until its lease runs out.
    let store = s.app.store();
    let now = s.app.clock.now();
    let days = store
        .pending_days(marketplace_leads::store::Progress::Deliveries, now)
        .await
        .unwrap();
    use futures::TryStreamExt;
    let webhook = marketplace_leads::domain::DestinationName::parse("webhook").unwrap();
    let items: Vec<_> = store
        .deliveries()
        .pending_of(&webhook, days)
        .try_concat()
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    let batch = uuid::Uuid::new_v4();
    store
        .deliveries()
        .claim(
            &items[0],
            batch,
            now + marketplace_leads::delivery::lease::HTTP_LEASE,
        )
        .await
        .unwrap();
    s.webhook.answer(Answer::Status(200));
    // While claimed, no one else touches it.
    let report = deliverer(&s.app).sweep(now).await.unwrap();
    assert_eq!(report.delivered, 0);
    // After the lease, it goes out with the same key it was claimed under.
    until(&s.app, Duration::from_secs(30), async || {
        records(&s.app, "S", "webhook").await == 1
    })
    .await;
    let last = s.webhook.received().pop().unwrap();
    assert_eq!(
        last.header("webhook-id"),
        Some(format!("msg_{}", batch.simple()).as_str())
    );
    s.app.stop().await;
}

/// Ingest writes a lead's deliveries as one bundle, claimed by the first
/// attempts about to run; an instance that dies before settling them
/// leaves the bundle claimed. Once the claims run out, a sweep unpacks
/// it and delivers each destination once, under the key it was claimed
/// with.
#[tokio::test]
async fn a_crash_between_storing_and_settling_a_bundle_delivers_after_its_claims() {
    let s = setup().await;
    let deliverer = deliverer(&s.app);
    let names = deliverer.names();
    let now = s.app.clock.now();
    let reservation = deliverer.reserve(&names, now);
    let lead = marketplace_leads::domain::Lead::parse(lead("Died").as_bytes()).unwrap();
    // Stored as LeadIngest stores it; the first attempts never run.
    let saved = s
        .app
        .store()
        .save_lead(&lead, now, |place| {
            deliverer.new_records(&names, &reservation, place)
        })
        .await
        .unwrap();
    drop(reservation);
    let keys: Vec<_> = saved.deliveries.iter().map(|d| d.claim_batch).collect();
    assert_eq!(keys.len(), 3, "{keys:?}");
    assert!(keys.iter().all(Option::is_some), "all claimed: {keys:?}");
    let bundles = s
        .app
        .rows()
        .await
        .into_iter()
        .filter(|r| r["RowKey"].as_str().is_some_and(|k| k.starts_with("P.*.L")))
        .count();
    assert_eq!(bundles, 1, "one pending record for the three destinations");

    // While its claims last, a sweep leaves it to the first attempts.
    let report = deliverer.sweep(now).await.unwrap();
    assert_eq!(report.delivered, 0, "{report:?}");
    assert!(s.webhook.received().is_empty());
    for destination in ["webhook", "teams", "email"] {
        assert_eq!(records(&s.app, "P", destination).await, 1, "{destination}");
    }

    // Then the sweep delivers it, once per destination.
    let held_until = saved
        .deliveries
        .iter()
        .filter_map(|d| d.claimed_until)
        .max();
    let later = held_until.unwrap() + Duration::from_secs(1);
    let report = deliverer.sweep(later).await.unwrap();
    assert_eq!(report.delivered, 3, "{report:?}");
    for destination in ["webhook", "teams", "email"] {
        assert_eq!(records(&s.app, "S", destination).await, 1, "{destination}");
        assert_eq!(records(&s.app, "P", destination).await, 0, "{destination}");
    }
    let received = s.webhook.received();
    assert_eq!(received.len(), 1);
    let webhook = saved
        .deliveries
        .iter()
        .find(|d| d.destination.as_str() == "webhook")
        .and_then(|d| d.claim_batch)
        .unwrap();
    assert_eq!(
        received[0].header("webhook-id"),
        Some(format!("msg_{}", webhook.simple()).as_str()),
        "the key it was claimed with at ingest"
    );
    assert_eq!(s.teams.received().len(), 1);
    // Nothing left to deliver, nothing twice.
    let report = deliverer.sweep(later).await.unwrap();
    assert_eq!(report, Default::default());
    assert_eq!(s.webhook.received().len(), 1);
    report!("a bundle claimed by a first attempt that died: delivered to 3 destinations once, after its claims");
    s.app.stop().await;
}

#[tokio::test]
async fn a_receiver_that_never_answers_does_not_slow_ingest() {
    async fn p99(app: &TestApp, label: &str) -> Duration {
        let mut times = Vec::new();
        for i in 0..100 {
            let started = Instant::now();
            assert_eq!(
                app.post_lead(lead(&format!("{label}{i}"))).await.status(),
                201
            );
            times.push(started.elapsed());
        }
        times.sort();
        times[98]
    }
    let plain = spawn_app_with(AppOptions::default()).await;
    let baseline = p99(&plain, "Plain").await;
    plain.stop().await;

    // Only destinations that never answer: what is measured is their effect.
    let webhook = Receiver::start().await;
    let teams = Receiver::start().await;
    webhook.answer(Answer::Hang);
    teams.answer(Answer::Hang);
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
            ("TEAMS_WEBHOOK_URL".into(), teams.url("/workflows/leads")),
            // No standalone sweep at a minute's turn: what is counted is
            // the first attempts alone.
            ("DELIVERY_SCHEDULE".into(), "0 0 0 1 1 *".into()),
        ],
        ..AppOptions::default()
    })
    .await;
    let posting = Instant::now();
    let hanging = p99(&app, "Hang").await;
    let posted_in = posting.elapsed();
    report!(
        "LeadIngest p99 with receivers that never answer: {hanging:?} against {baseline:?} with no destination (×{:.2})",
        hanging.as_secs_f64() / baseline.as_secs_f64()
    );
    assert!(
        hanging < baseline * 3 + Duration::from_millis(50),
        "{hanging:?} against {baseline:?}"
    );
    // First attempts started at once, but no more than the destination's
    // lane holds (4 at a time, each given 15 s): the rest wait for the
    // sweep instead of piling up connections to a receiver that hangs.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attempted = webhook.received().len();
    let lane_turns = 1 + (posted_in.as_secs_f64() / 15.0).floor() as usize;
    assert!(
        (1..=4 * lane_turns).contains(&attempted),
        "{attempted} webhook attempts in {posted_in:?}"
    );
    // And no lead is lost: every one still waits for each destination.
    assert_eq!(records(&app, "P", "webhook").await, 100);
    assert_eq!(records(&app, "P", "teams").await, 100);
    report!(
        "hanging receivers: {attempted} first attempts in flight, 100 + 100 deliveries waiting"
    );
    app.stop().await;
}

/// A sweep against a receiver that never answers starts no attempt after
/// its budget: it ends within the budget plus one attempt, leaves the rest
/// due for the next sweep, and so never outlives the claims it made.
#[tokio::test]
async fn a_sweep_against_a_hanging_receiver_ends_within_its_budget() {
    use marketplace_leads::delivery::lease::{HTTP_LEASE as CLAIM_LEASE, SWEEP_BUDGET};
    let webhook = Receiver::start().await;
    webhook.answer(Answer::Hang);
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..AppOptions::default()
    })
    .await;
    let leads = 40;
    for i in 0..leads {
        post(&app, lead(&format!("Budget{i}"))).await;
    }
    let started = Instant::now();
    let report = deliverer(&app).sweep(app.clock.now()).await.unwrap();
    let took = started.elapsed();
    report!(
        "sweep against a hanging receiver: {leads} due, ended after {:.1} s \
         (budget {SWEEP_BUDGET:?}, lease {CLAIM_LEASE:?}): {report:?}",
        took.as_secs_f64()
    );
    // One attempt at an HTTP destination is given 15 s by its client.
    assert!(
        took < SWEEP_BUDGET + Duration::from_secs(20),
        "the sweep took {took:?}"
    );
    assert!(took < CLAIM_LEASE, "its claims outlive it: {took:?}");
    assert_eq!(report.delivered, 0);
    assert!(
        report.waiting > 0,
        "what it did not start stays due: {report:?}"
    );
    assert_eq!(
        report.retrying + report.waiting,
        leads,
        "every due lead is counted: {report:?}"
    );
    assert_eq!(records(&app, "P", "webhook").await, leads, "none lost");
    app.stop().await;
}

/// A destination switched off while a delivery to it is still pending:
/// the delivery waits (the setting may come back) and dies at the maximum
/// age, claimed like any other, with the digest's dead letter — never
/// dropped silently, never left pending for good.
#[tokio::test]
async fn a_delivery_to_a_destination_removed_since_dies_at_its_maximum_age() {
    let s = setup().await;
    refused_once(&s, "Orphan").await;
    let _quiet = deliverer(&s.app).quiesce().await;
    // An instance deployed without the webhook, on the same table.
    let other = spawn_app_with(AppOptions {
        extra: vec![
            ("LEADS_TABLE".into(), s.app.table.clone()),
            ("NOTIFY_TO".into(), s.notify_to.clone()),
        ],
        ..AppOptions::default()
    })
    .await;
    let now = s.app.clock.now();
    let report = deliverer(&other).sweep(now).await.unwrap();
    assert!(report.waiting >= 1, "young: it waits: {report:?}");
    assert_eq!(records(&s.app, "P", "webhook").await, 1);

    let later = now + Duration::from_secs(25 * 3_600);
    deliverer(&other).sweep(later).await.unwrap();
    assert_eq!(records(&s.app, "P", "webhook").await, 0);
    assert_eq!(records(&s.app, "X", "webhook").await, 1, "dead, kept");
    let rows = s.app.rows().await;
    let letter = rows
        .iter()
        .find(|r| {
            r["RowKey"]
                .as_str()
                .is_some_and(|k| k.starts_with("P.digest.X.webhook."))
        })
        .expect("the digest's dead letter");
    assert!(
        letter["DeadExcerpt"]
            .as_str()
            .is_some_and(|e| e.contains("no longer configured")),
        "{letter:?}"
    );
    other.stop().await;
    s.app.stop().await;
}

/// Posts a lead while the webhook answers 503, and waits until its first
/// attempt has reached the webhook (and failed).
async fn refused_once(s: &Setup, first_name: &str) {
    s.webhook.answer(Answer::Status(503));
    post(&s.app, lead(first_name)).await;
    until(&s.app, Duration::from_secs(30), async || {
        !s.webhook.received().is_empty()
    })
    .await;
}
