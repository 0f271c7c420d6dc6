//! Personal data, end to end against real Azurite: `handler leads forget`
//! erases a person stored through every path — posted, posted again,
//! refused, echoed back by a receiver into a dead letter, imported, with a
//! delivery still pending — and leaves everyone else's leads as they were;
//! retention deletes what is older than kept, a bounded amount per run,
//! never what is young or still pending. Figures for a 10,000-lead table
//! and 100 old day partitions are printed.

use marketplace_leads::domain::Lead;
use marketplace_leads::retention::Retention;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testkit::fakes::{Answer, Receiver};
use testkit::faults::StorageProxy;
use testkit::{read_table, report, shared_azurite, spawn_app_with, AppOptions, TestApp};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwZ2xKZVdZdjA=";

fn handler(app: &TestApp, args: &[&str]) -> (i32, String) {
    let output = app.run_cli(env!("CARGO_BIN_EXE_handler"), args);
    (output.status.code().unwrap_or(-1), testkit::said(&output))
}

fn person(first: &str, last: &str, email: &str, phone: &str, note: &str) -> Value {
    json!({
        "UserDetails": {"FirstName": first, "LastName": last, "Email": email, "Phone": phone,
            "Country": "Japan", "Company": "Fabrikam", "Title": "CTO"},
        "LeadSource": "SPZA-PLT|fabrikam.analytics", "ActionCode": "PLT",
        "OfferTitle": "Contoso Analytics", "Description": note,
    })
}

/// Every row of both tables the service owns, as text.
async fn everything(app: &TestApp) -> String {
    let leads = read_table(&app.tables.table_client(&app.table)).await;
    let digest = read_table(&app.tables.table_client(format!("{}Digest", app.table))).await;
    serde_json::to_string(&(leads, digest))
        .unwrap()
        .to_lowercase()
}

#[tokio::test]
async fn forget_erases_a_person_from_every_path_and_nobody_else() {
    let teams = Receiver::start().await;
    // A webhook that refuses, quoting the payload back: a dead letter
    // holding the customer's details.
    let webhook = Receiver::start().await;
    webhook.answer(Answer::EchoBody(400));
    // And one that is down: a delivery still pending at erasure.
    let down = Receiver::start().await;
    down.answer(Answer::Status(503));
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("TEAMS_WEBHOOK_URL".into(), teams.url("/teams")),
            ("WEBHOOK_URL".into(), webhook.url("/hook")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
            ("WEBHOOK_URL__crm".into(), down.url("/crm")),
            ("WEBHOOK_SECRET__crm".into(), SECRET.into()),
        ],
        ..AppOptions::default()
    })
    .await;
    let aiko = person(
        "Aiko",
        "Tanakawa",
        "Aiko.Tanakawa@fabrikam.example",
        "+81 3-9876-5432",
        "Please call Aiko",
    );
    let other = person(
        "Ben",
        "Okafor",
        "ben.okafor@contoso.example",
        "+1 425 555 0100",
        "Ben would like a demo",
    );
    // Posted, and posted again (a duplicate).
    assert_eq!(app.post_lead(aiko.to_string()).await.status(), 201);
    assert_eq!(app.post_lead(aiko.to_string()).await.status(), 200);
    assert_eq!(app.post_lead(other.to_string()).await.status(), 201);
    // Refused: not JSON, but her address in it.
    let refused = app
        .post_lead("{\"UserDetails\": {\"Email\": \"aiko.tanakawa@fabrikam.example\",")
        .await;
    assert_eq!(refused.status(), 400);
    // Imported: an older lead of hers, from a JSON Lines file.
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("old.jsonl");
    let older = person(
        "Aiko",
        "Tanakawa",
        "aiko.tanakawa@fabrikam.example",
        "+81 3-9876-5432",
        "From last year",
    );
    let received = (time::OffsetDateTime::now_utc() - time::Duration::days(40))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    std::fs::write(
        &jsonl,
        format!(
            "{}\n",
            json!({"RawBody": older.to_string(), "ReceivedAt": received})
        ),
    )
    .unwrap();
    let (code, said) = handler(
        &app,
        &["leads", "import", "--jsonl", jsonl.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{said}");
    // Deliveries: Teams delivered, the webhook dead with the echo, the
    // other webhook pending.
    let deliverer = app.deliverer().expect("destinations");
    drop(deliverer.quiesce().await);
    deliverer.sweep(app.clock.now()).await.unwrap();
    let before = everything(&app).await;
    for trace in ["aiko.tanakawa@fabrikam.example", "tanakawa", "9876-5432"] {
        assert!(before.contains(trace), "stored before: {trace}");
    }
    assert!(before.contains("\"x.webhook."), "a dead delivery");

    let (code, dry) = handler(
        &app,
        &[
            "leads",
            "forget",
            "--email",
            "AIKO.TANAKAWA@fabrikam.example",
            "--dry-run",
        ],
    );
    assert_eq!(code, 0, "{dry}");
    assert!(
        dry.contains("2 leads") && dry.contains("would remove"),
        "{dry}"
    );
    assert_eq!(everything(&app).await, before, "a dry run removes nothing");

    let (code, forgot) = handler(
        &app,
        &[
            "leads",
            "forget",
            "--email",
            "AIKO.TANAKAWA@fabrikam.example",
        ],
    );
    report!("handler leads forget:\n{forgot}");
    assert_eq!(code, 0, "{forgot}");
    for expected in [
        "lead rows (raw body included)",
        "pending deliveries (cancelled)",
        "dead letters",
        "refused bodies",
        "already delivered to these destinations",
        ": teams",
    ] {
        assert!(forgot.contains(expected), "{expected:?} in {forgot}");
    }
    let after = everything(&app).await;
    for trace in [
        "aiko",
        "tanakawa",
        "9876-5432",
        "9876 5432",
        "fabrikam.example",
    ] {
        assert!(!after.contains(trace), "{trace} is still stored");
    }
    // Everyone else is untouched: listed, exported, delivered.
    assert!(after.contains("ben.okafor@contoso.example"));
    let (_, listed) = handler(&app, &["leads", "list", "--since", "60d"]);
    assert!(
        listed.contains("Ben Okafor") && listed.contains("1 lead"),
        "{listed}"
    );
    let (_, exported) = handler(
        &app,
        &["leads", "export", "--format", "jsonl", "--since", "60d"],
    );
    assert_eq!(exported.lines().filter(|l| l.starts_with('{')).count(), 1);
    assert!(after.contains("\"s.teams."), "Ben's delivery record stays");

    // The cancelled delivery is not sent once its destination is back.
    let tried_before = down.received().len();
    down.answer(Answer::Status(200));
    app.clock.advance(Duration::from_secs(3_600));
    deliverer.sweep(app.clock.now()).await.unwrap();
    let to_crm: Vec<String> = down.received()[tried_before..]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).to_lowercase())
        .collect();
    assert!(
        to_crm.iter().all(|body| !body.contains("aiko")),
        "sent after erasure"
    );

    let (code, again) = handler(
        &app,
        &[
            "leads",
            "forget",
            "--email",
            "aiko.tanakawa@fabrikam.example",
        ],
    );
    assert_eq!(code, 0);
    assert!(again.contains("nothing kept"), "{again}");
    app.stop().await;
}

/// Stores `lead` as received at `at`, as LeadIngest would (no records).
async fn seed(app: &TestApp, body: &Value, at: time::OffsetDateTime) {
    let lead = Lead::parse(body.to_string().as_bytes()).unwrap();
    app.store().save(&lead, at, &[]).await.unwrap();
}

/// A lead a day, `days` before `now`, each from `<prefix><days>@contoso.example`.
async fn seed_days_back(
    app: &TestApp,
    days: impl Iterator<Item = i64>,
    prefix: &str,
    now: time::OffsetDateTime,
) {
    use futures::StreamExt;
    futures::stream::iter(days)
        .map(|days| {
            let body = person(
                &format!("Old{days}"),
                "Lead",
                &format!("{prefix}{days}@contoso.example"),
                "",
                "",
            );
            async move { seed(app, &body, now - time::Duration::days(days)).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
}

#[tokio::test]
async fn retention_deletes_old_partitions_a_bounded_amount_at_a_time() {
    let down = Receiver::start().await;
    down.answer(Answer::Status(503));
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), down.url("/hook")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
            ("LEADS_RETENTION_DAYS".into(), "30".into()),
        ],
        ..AppOptions::default()
    })
    .await;
    let store = app.store();
    store.ensure_tables().await.unwrap();
    let now = app.clock.now();
    // A lead a day for 400 days, and a refused body 200 days old.
    seed_days_back(&app, 1..=400, "old", now).await;
    store
        .quarantine(now - time::Duration::days(200), 400, "old", 3, b"old")
        .await
        .unwrap();
    // Today: a lead whose delivery is pending (the receiver is down).
    assert_eq!(
        app.post_lead(person("Today", "Pending", "today@contoso.example", "", "").to_string())
            .await
            .status(),
        201
    );
    app.run_digest().await.unwrap();
    let deliverer = app.deliverer().unwrap();
    drop(deliverer.quiesce().await);
    deliverer.sweep(now).await.unwrap();

    let retention = Retention::from_settings(store.clone(), &app.settings).unwrap();
    let rows_before = app.rows().await.len();
    let mut runs = Vec::new();
    loop {
        let pruned = retention.run_with_budget(now, 200).await.unwrap();
        assert!(pruned.deleted <= 200, "within the bound");
        runs.push(pruned.deleted);
        if !pruned.more {
            break;
        }
        assert!(runs.len() < 20, "it ends");
    }
    let rows = app.rows().await;
    report!(
        "retention (30 days) over 400 days of leads: {} rows, then {}; runs of at most 200 deleted {runs:?}",
        rows_before,
        rows.len()
    );
    let days: std::collections::BTreeSet<String> = rows
        .iter()
        .filter_map(|r| r["PartitionKey"].as_str().map(str::to_owned))
        .collect();
    let oldest_kept = (now - time::Duration::days(30)).date();
    for day in days.iter().filter(|d| d.as_str() != "quarantine") {
        assert!(
            day.as_str() >= marketplace_leads::store::keys::day_key(oldest_kept).as_str(),
            "{day} is older than kept"
        );
    }
    let yesterday = marketplace_leads::store::keys::day_key((now - time::Duration::days(1)).date());
    assert!(days.contains(&yesterday), "yesterday's lead is kept");
    assert!(
        rows.iter().any(|r| r["RowKey"]
            .as_str()
            .is_some_and(|k| k.starts_with("P.webhook.") || k.starts_with("P.*."))),
        "today's pending delivery is kept"
    );
    assert!(
        !rows
            .iter()
            .any(|r| r.get("Reason").and_then(Value::as_str) == Some("old")),
        "the old refused body is gone"
    );
    let digest = app.digest_rows().await;
    assert!(
        digest.iter().any(|r| r["PartitionKey"] == "cursor"),
        "cursors intact"
    );
    assert!(
        digest.iter().any(|r| r["PartitionKey"] == "checkpoint"),
        "checkpoint intact"
    );
    app.stop().await;
}

/// Figures: forgetting one person in a table of 10,000 leads, and one
/// retention run over 100 old day partitions — time and storage requests,
/// counted by a proxy in front of Azurite.
#[tokio::test]
async fn figures_for_forgetting_and_retention() {
    let proxy = StorageProxy::start(shared_azurite().port).await;
    let app = spawn_app_with(AppOptions {
        storage: proxy.connection_string(),
        extra: vec![("LEADS_RETENTION_DAYS".into(), "30".into())],
        ..AppOptions::default()
    })
    .await;
    let store = app.store();
    store.ensure_tables().await.unwrap();
    let now = app.clock.now();
    use futures::StreamExt;
    // 10,000 leads over the last 20 days; one of them is Carol's.
    futures::stream::iter(0..10_000i64)
        .map(|i| {
            let email = if i == 4_321 {
                "carol@fabrikam.example".to_owned()
            } else {
                format!("lead{i}@contoso.example")
            };
            let body = person(&format!("L{i}"), "Lead", &email, "", "");
            let app = &app;
            async move { seed(app, &body, now - time::Duration::seconds(i * 170)).await }
        })
        .buffer_unordered(64)
        .collect::<Vec<_>>()
        .await;
    proxy.take_requests();
    let started = Instant::now();
    let whom = marketplace_leads::store::erasure::Whom::Email(
        marketplace_leads::domain::EmailAddress::parse("carol@fabrikam.example").unwrap(),
    );
    let carol = store.find_person(&whom, now).await.unwrap();
    let erased = store.erase(&carol).await;
    let took = started.elapsed();
    let requests = proxy.take_requests().len();
    report!(
        "forgetting one person in 10,000 leads: {} rows in {:?}, {requests} storage requests",
        erased.deleted.values().sum::<usize>(),
        took
    );
    assert_eq!(carol.leads.len(), 1);
    assert!(erased.error.is_none());
    // Reading every lead's key and email takes a page per 1,000 rows.
    assert!(requests <= 10 + 2 + 2 + 2, "{requests} requests");

    // 100 old day partitions, a lead each.
    seed_days_back(&app, 100..200, "o", now).await;
    app.run_digest().await.unwrap();
    proxy.take_requests();
    let retention = Retention::from_settings(store.clone(), &app.settings).unwrap();
    let started = Instant::now();
    let pruned = retention.run(now).await.unwrap();
    let took = started.elapsed();
    let requests = proxy.take_requests().len();
    report!(
        "one retention run over 100 old day partitions: {} rows in {:?}, {requests} storage requests",
        pruned.deleted,
        took
    );
    assert_eq!(pruned.deleted, 200, "a lead row and a marker each");
    assert!(!pruned.more);
    app.stop().await;
}

/// Storage that fails in the middle of an erasure (the batch deleting the
/// lead's own partition is cut): the run says what is left, the lead is
/// still whole and findable, and running it again finishes it.
#[tokio::test]
async fn a_forget_cut_short_is_finished_by_the_next() {
    let proxy = StorageProxy::start(shared_azurite().port).await;
    let app = spawn_app_with(AppOptions {
        storage: proxy.connection_string(),
        ..AppOptions::default()
    })
    .await;
    let body = person(
        "Dana",
        "Cut",
        "dana@fabrikam.example",
        "+44 20 7946 0000",
        "Call Dana",
    );
    assert_eq!(app.post_lead(body.to_string()).await.status(), 201);
    let store = app.store();
    let whom = marketplace_leads::store::erasure::Whom::Email(
        marketplace_leads::domain::EmailAddress::parse("dana@fabrikam.example").unwrap(),
    );
    let dana = store.find_person(&whom, app.clock.now()).await.unwrap();
    proxy.set(testkit::faults::Fault::CutFrom(std::sync::Arc::new(
        |request: &str| request.contains("$batch"),
    )));
    let cut = store.erase(&dana).await;
    assert!(cut.error.is_some(), "storage was cut");
    assert_eq!(cut.left, dana.rows.len(), "nothing half done");
    proxy.set(testkit::faults::Fault::Pass);
    let again = store.find_person(&whom, app.clock.now()).await.unwrap();
    assert_eq!(again.rows, dana.rows, "still whole, still found");
    let finished = store.erase(&again).await;
    assert!(finished.error.is_none());
    assert!(store
        .find_person(&whom, app.clock.now())
        .await
        .unwrap()
        .rows
        .is_empty());
    report!(
        "an erasure cut by storage: {} rows left, all of them; the rerun finished",
        cut.left
    );
    app.stop().await;
}
