//! Promises an attacker and a new user found broken, each shown kept: a
//! delivery pending in an old partition is still swept after a digest; a
//! receiver echoing our credentials stores none of them; a burst spends
//! the hour's email budget on emails, not on lost races; the budget's row
//! holds the highest rate allowed; a dead delivery put back and delivered
//! is no longer reported as failed; shutdown waits for a first attempt in
//! flight.

use super::*;
use marketplace_leads::store::rate::SendLog;
use testkit::shared_maildev;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// Before: a successful digest moved the shared outbox cursor to
/// yesterday, and a delivery still pending two days back was never read
/// again. Now each consumer keeps its own, and the digest never passes a
/// day where a delivery is pending.
#[tokio::test]
async fn a_digest_never_strands_a_delivery_pending_in_an_older_partition() {
    let webhook = Receiver::start().await;
    webhook.answer(Answer::Status(503));
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
            ("DELIVERY_MAX_AGE_HOURS".into(), "72".into()),
        ],
        ..AppOptions::default()
    })
    .await;
    let id = post(&app, lead("Stranded")).await;
    until(&app, Duration::from_secs(30), async || {
        !webhook.received().is_empty()
    })
    .await;
    {
        let _quiet = deliverer(&app).quiesce().await;
        // Two days without a sweep (the receiver down all along); then the
        // digest reports the lead and moves its cursor.
        app.clock.advance(2 * DAY);
        let report = app.run_digest().await.unwrap();
        assert!(
            matches!(
                report.outcome,
                marketplace_leads::digest::Outcome::Sent { .. }
            ),
            "{report:?}"
        );
    }
    webhook.answer(Answer::Status(200));
    let report = deliverer(&app).sweep(app.clock.now()).await.unwrap();
    assert_eq!(
        report.delivered, 1,
        "the old record is still read: {report:?}"
    );
    assert_eq!(records(&app, "S", "webhook").await, 1);
    // (Signed two days after now by the moved clock: its signature would
    // be refused as from the future, so only the body is read.)
    let last = webhook.received().pop().unwrap();
    assert_eq!(last.json()["data"]["leadId"], id.as_str());
    report!("a delivery pending 2 days behind a digest's cursor: read and delivered");
    app.stop().await;
}

/// Before: a receiver's 400 body quoting our request put the HubSpot
/// token, the webhook URL's `Basic` credentials and its token, and the
/// Teams `sig=` into the table, the command line and the digest.
#[tokio::test]
async fn credentials_a_receiver_echoes_are_stored_nowhere() {
    let webhook = Receiver::start().await;
    let teams = Receiver::start().await;
    let hubspot = Receiver::start().await;
    for receiver in [&webhook, &teams, &hubspot] {
        receiver.answer(Answer::Echo(400));
    }
    let password = "hunter2-pass-word";
    let token = "t0k3n-in-the-query";
    let sig = "s1gnature-of-the-flow";
    let hubspot_token = "pat-na1-0123-secret-token";
    let webhook_url = webhook
        .url(&format!("/hooks/leads?token={token}"))
        .replace("http://", &format!("http://zapier:{password}@"));
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), webhook_url),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
            (
                "TEAMS_WEBHOOK_URL".into(),
                teams.url(&format!("/workflows/x?api-version=1&sig={sig}")),
            ),
            ("HUBSPOT_TOKEN".into(), hubspot_token.into()),
            ("HUBSPOT_API_URL".into(), hubspot.url("")),
        ],
        ..AppOptions::default()
    })
    .await;
    let id = post(&app, lead("Echo")).await;
    until(&app, Duration::from_secs(30), async || {
        records(&app, "X", "webhook").await == 1
            && records(&app, "X", "teams").await == 1
            && records(&app, "X", "hubspot").await == 1
    })
    .await;
    // The receivers did get the credentials (and said them back).
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("zapier:{password}"),
    );
    assert_eq!(
        webhook.received()[0].header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    let secrets = [password, token, sig, hubspot_token, basic.as_str(), SECRET];
    let leaked = |what: &str, text: &str| {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} is in the {what}: {text}");
        }
    };
    let rows = app.rows().await;
    let records: Vec<_> = rows
        .iter()
        .filter(|r| {
            let key = r["RowKey"].as_str().unwrap_or_default();
            key.starts_with("X.") || key.starts_with("P.digest.X.")
        })
        .collect();
    assert_eq!(
        records.len(),
        6,
        "three dead records and three dead letters"
    );
    for record in &records {
        leaked("table", &serde_json::to_string(record).unwrap());
    }
    let said = records
        .iter()
        .find_map(|r| r.get("LastError").and_then(Value::as_str))
        .unwrap_or_default();
    assert!(
        said.contains("REDACTED"),
        "the echo is kept, redacted: {said}"
    );
    leaked(
        "list",
        &cli(&app, &["deliveries", "list", "--status", "dead"]),
    );
    let shown = cli(&app, &["deliveries", "show", &id]);
    assert!(
        shown.contains("dead") && shown.contains("HTTP 400"),
        "{shown}"
    );
    leaked("show", &shown);
    app.run_digest().await.unwrap();
    let digest = &shared_maildev().emails_to(&app.recipient).await[0];
    assert!(digest["text"]
        .as_str()
        .unwrap()
        .contains("could not be delivered"));
    leaked("digest", &digest["text"].to_string());
    leaked("digest", &digest["html"].to_string());
    report!("receivers echoing the request: 6 records, the CLI and the digest hold no credential");
    app.stop().await;
}

/// The leads of a burst, each in exactly one email, and how many emails.
async fn burst(leads: usize, cap: u32) -> (usize, usize, Duration) {
    let notify_to = format!("burst-{}@example.com", uuid::Uuid::new_v4().simple());
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("NOTIFY_TO".into(), notify_to.clone()),
            ("NOTIFY_MAX_PER_HOUR".into(), cap.to_string()),
        ],
        ..AppOptions::default()
    })
    .await;
    let names: Vec<String> = (0..leads).map(|i| format!("Burst{i:04}")).collect();
    // At most 64 at once: the server bounds its connections, as Partner
    // Center's side would meet it.
    use futures::StreamExt;
    futures::stream::iter(names.iter().map(|name| post(&app, lead(name))))
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    let started = app.clock.now();
    let covered = |emails: &[Value]| {
        names
            .iter()
            .filter(|name| {
                emails.iter().any(|e| {
                    e["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(name.as_str())
                })
            })
            .count()
    };
    // Sweeps a minute apart (the clock moved), for up to an hour.
    let mut emails = Vec::new();
    for _ in 0..59 {
        {
            let _quiet = deliverer(&app).quiesce().await;
            app.clock.advance(Duration::from_secs(60));
            let _ = deliverer(&app).sweep(app.clock.now()).await;
        }
        emails = shared_maildev().emails_to(&notify_to).await;
        if covered(&emails) == leads.min(cap as usize - 2 + 200) {
            break;
        }
    }
    let took: Duration = (app.clock.now() - started).try_into().unwrap_or_default();
    // The digest shares the sending domain's budget: it goes out, and the
    // domain has then sent exactly its cap in the hour.
    app.run_digest().await.expect("the digest runs");
    assert_eq!(shared_maildev().emails_to(&app.recipient).await.len(), 1);
    let from_domain = app.store().send_log(&budget_of(&app)).await.unwrap();
    assert_eq!(
        from_domain.used(Duration::from_secs(3600), app.clock.now()),
        cap as usize,
        "per-lead emails and the digest together"
    );
    let result = (emails.len(), covered(&emails), took);
    app.stop().await;
    result
}

/// The send budget row of the test app's sending domain.
fn budget_of(app: &testkit::TestApp) -> String {
    let from = app.settings.email.from.as_ref().expect("DIGEST_FROM");
    marketplace_leads::store::rate::sending_domain_budget(from.domain())
}

/// Before: concurrent first attempts each took a send and then lost the
/// claim race: 30 leads at once with a cap of 10 made 3 to 7 emails in
/// the hour. Now a send is taken only by the attempt that sends, and the
/// hour's last send combines what still waits. One of the domain's 10 is
/// the digest's.
#[tokio::test]
async fn a_burst_spends_the_hours_budget_on_emails() {
    let (emails, covered, took) = burst(30, 10).await;
    report!(
        "30 leads at once, 10 emails an hour: {emails} per-lead emails in the first hour \
         carrying {covered} leads (all by {took:?}), and the digest"
    );
    assert_eq!(emails, 9);
    assert_eq!(covered, 30);
    assert!(took < Duration::from_secs(3600));
}

/// The same for 2,000 leads (about 40 s): `cargo test --test delivery
/// -- --ignored a_large_burst`.
#[tokio::test]
#[ignore]
async fn a_large_burst_spends_the_hours_budget_on_emails() {
    let (emails, covered, took) = burst(2_000, 10).await;
    report!(
        "2,000 leads at once, 10 emails an hour: {emails} per-lead emails in the first hour \
         carrying {covered} leads ({took:?}), and the digest"
    );
    assert_eq!(emails, 9);
    assert_eq!(covered, 8 + 200, "8 alone, then the most one email carries");
}

/// Before: every send's time in one property, past Table storage's 64 KiB
/// at about 2,978 sends. The row at the highest cap the settings allow.
#[tokio::test]
async fn the_budget_row_holds_the_highest_rate_allowed() {
    let app = testkit::spawn_app().await;
    let store = app.store();
    store.ensure_tables().await.unwrap();
    let start = app.clock.now();
    let mut log = SendLog::default();
    for i in 0..10_000u64 {
        log.record(
            "email",
            Duration::from_secs(3600),
            start + Duration::from_millis(i * 359),
        );
    }
    let written = store.write_send_log("email", &log, start).await.unwrap();
    let read = store.send_log("email").await.unwrap();
    let end = start + Duration::from_secs(3590);
    assert_eq!(read.used(Duration::from_secs(3600), end), 10_000);
    assert_eq!(read, written);
    let rows = app.digest_rows().await;
    let row = rows.iter().find(|r| r["PartitionKey"] == "rate").unwrap();
    let bytes = serde_json::to_string(row).unwrap().len();
    report!("10,000 sends in the hour: the budget row is {bytes} bytes");
    assert!(bytes < 4_096);
    app.stop().await;
}

/// Before: a dead delivery put back with `deliveries retry` and delivered
/// was still listed as failed in the next digest.
#[tokio::test]
async fn a_delivery_retried_and_delivered_is_not_reported_as_failed() {
    let webhook = Receiver::start().await;
    webhook.answer(Answer::Status(410));
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..AppOptions::default()
    })
    .await;
    let id = post(&app, lead("Back")).await;
    until(&app, Duration::from_secs(30), async || {
        records(&app, "X", "webhook").await == 1
    })
    .await;
    webhook.answer(Answer::Status(200));
    let out = cli(&app, &["deliveries", "retry", &id]);
    assert!(out.contains("1 delivery put back"), "{out}");
    until(&app, Duration::from_secs(30), async || {
        records(&app, "S", "webhook").await == 1
    })
    .await;
    app.run_digest().await.unwrap();
    let digest = &shared_maildev().emails_to(&app.recipient).await[0];
    let text = digest["text"].as_str().unwrap();
    assert!(text.contains("Back"), "the lead is reported: {text}");
    assert!(!text.contains("could not be delivered"), "{text}");
    app.stop().await;
}

/// Leads posted one after another each get their first attempts at once:
/// a lane is held for the attempt, not until the slowest destination of
/// the lead has answered and every outcome is written. (The benchmark
/// found 4 of 20 leads delivered at once: the lanes stayed taken.)
#[tokio::test]
async fn leads_posted_one_after_another_are_each_delivered_at_once() {
    let s = setup().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(post(&s.app, lead(&format!("Seq{i}"))).await);
    }
    // No sweep: only first attempts deliver.
    let started = Instant::now();
    while (s.webhook.received().len() < 20 || s.teams.received().len() < 20)
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        (s.webhook.received().len(), s.teams.received().len()),
        (20, 20),
        "first attempts left leads to the sweep"
    );
    report!(
        "20 leads posted one after another: all at the webhook and Teams by their first attempt in {:.1?}",
        started.elapsed()
    );
    s.app.stop().await;
}

/// Before: each email destination had its own 10 an hour, so two named
/// email destinations sent 20 from a domain ACS allows 10. Now the
/// sending domain's budget is shared: the two together send at most 9
/// in the hour (one kept for the digest), and each still gets every lead.
#[tokio::test]
async fn two_email_destinations_share_their_domains_budget() {
    let (sales, backup) = (
        format!("sales-{}@example.com", uuid::Uuid::new_v4().simple()),
        format!("backup-{}@example.com", uuid::Uuid::new_v4().simple()),
    );
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("NOTIFY_TO".into(), sales.clone()),
            ("NOTIFY_TO__backup".into(), backup.clone()),
        ],
        ..AppOptions::default()
    })
    .await;
    let names: Vec<String> = (0..12).map(|i| format!("Shared{i:02}")).collect();
    for name in &names {
        post(&app, lead(name)).await;
    }
    let covered = |emails: &[Value]| {
        names
            .iter()
            .filter(|name| {
                emails.iter().any(|e| {
                    e["text"]
                        .as_str()
                        .unwrap_or_default()
                        .contains(name.as_str())
                })
            })
            .count()
    };
    let mut in_first_hour = None;
    let started = app.clock.now();
    for _ in 0..150 {
        {
            let _quiet = deliverer(&app).quiesce().await;
            app.clock.advance(Duration::from_secs(60));
            let _ = deliverer(&app).sweep(app.clock.now()).await;
        }
        let (a, b) = (
            shared_maildev().emails_to(&sales).await,
            shared_maildev().emails_to(&backup).await,
        );
        if in_first_hour.is_none() && app.clock.now() - started >= time::Duration::minutes(59) {
            in_first_hour = Some(a.len() + b.len());
        }
        if covered(&a) == names.len() && covered(&b) == names.len() {
            break;
        }
    }
    let (a, b) = (
        shared_maildev().emails_to(&sales).await,
        shared_maildev().emails_to(&backup).await,
    );
    let first_hour = in_first_hour.unwrap_or(a.len() + b.len());
    report!(
        "two email destinations, 12 leads: {first_hour} emails from the domain in the first \
         hour ({} + {} in all), every lead at both",
        a.len(),
        b.len()
    );
    assert!(first_hour <= 9, "{first_hour} emails in the hour");
    assert_eq!((covered(&a), covered(&b)), (names.len(), names.len()));
    app.stop().await;
}

/// Before: shutdown ended while a new lead's first attempt was still in
/// flight; on Flex Consumption the instance may then be gone before the
/// answer is recorded, and the sweep sends the receiver the lead again.
/// Now shutdown waits (bounded) for first attempts to finish and record.
#[tokio::test]
async fn shutdown_waits_for_a_first_attempt_in_flight() {
    let webhook = Receiver::start().await;
    webhook.answer(Answer::After(Duration::from_millis(1_500), 200));
    let mut app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..AppOptions::default()
    })
    .await;
    post(&app, lead("Late")).await;
    let started = Instant::now();
    while webhook.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no first attempt"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SIGTERM while the receiver is still answering.
    app.begin_shutdown();
    let stopping = Instant::now();
    while !app.has_stopped() {
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "shutdown is bounded"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let waited = stopping.elapsed();
    assert_eq!(
        records(&app, "S", "webhook").await,
        1,
        "recorded as delivered"
    );
    assert_eq!(
        records(&app, "P", "webhook").await,
        0,
        "nothing left to send again"
    );
    assert_eq!(webhook.received().len(), 1);
    report!(
        "shutdown waited {waited:?} for a first attempt in flight (receiver answering after 1.5 s)"
    );
}
