//! LeadDigest against real Azurite and real MailDev: every lead reported in
//! exactly one successful digest, escaped, with nothing lost on failure.

use marketplace_leads::digest::{DigestError, Outcome};
use serde_json::Value;
use testkit::{shared_maildev, spawn_app, spawn_app_with, AppOptions, MailDev};

const HOSTILE: &str = r#"{"UserDetails":{"FirstName":"<script>alert('x')</script>","LastName":"Smith & Sons",
  "Email":"eve@contoso.com","Company":"A&B <b>Corp</b>","Title":"CTO\r\nBcc: victim@example.com"},
  "LeadSource":"SPZA-PLT|contoso.app","ActionCode":"PLT","OfferTitle":"Contoso <App>",
  "Description":"Call me & \"soon\" <img src=x onerror=alert(1)>"}"#;
const TEST_LEAD: &str = r#"{"userDetails":{"firstName":"MSFT_TEST_636573304831318844",
  "lastName":"MSFT_TEST_636573304831318844","email":"MSFT_TEST_636573304831318844@test.com",
  "phone":"1234567890","country":"US","company":"MSFT_TEST_636573304831318844",
  "title":"MSFT_TEST_636573304831318844"},"leadSource":"AzureMarketplace","actionCode":"INS",
  "offerTitle":"Contoso Analytics"}"#;

fn lead(name: &str) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"{name}","Email":"{name}@contoso.com"}},"OfferTitle":"O"}}"#
    )
}

async fn source_of(maildev: &MailDev, email: &Value) -> String {
    let id = email["id"].as_str().unwrap();
    reqwest::get(format!(
        "http://127.0.0.1:{}/email/{id}/source",
        maildev.web_port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

#[tokio::test]
async fn one_digest_per_window_escaped_with_test_leads_apart() {
    let app = spawn_app().await;
    let maildev = shared_maildev();
    for body in [HOSTILE.to_owned(), TEST_LEAD.to_owned(), lead("Alice")] {
        assert_eq!(app.post_lead(body).await.status(), 201);
    }

    let report = app.run_digest().await.expect("digest run");
    assert!(matches!(report.outcome, Outcome::Sent { .. }), "{report:?}");
    assert_eq!(report.lead_count, 3);

    let emails = maildev.emails_to(&app.recipient).await;
    assert_eq!(emails.len(), 1);
    let email = &emails[0];
    let subject = email["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("2 new marketplace leads + 1 test lead · "),
        "{subject}"
    );
    assert!(!subject.contains("victim"));
    // Nobody but the configured recipient: the CRLF in a field made no header.
    assert_eq!(email["to"].as_array().unwrap().len(), 1);
    assert!(
        email["bcc"].as_array().is_none_or(|b| b.is_empty()),
        "{email}"
    );

    let html = email["html"].as_str().unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<img"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;"));
    assert!(html.contains("Smith &amp; Sons"));
    assert!(html.contains("Contoso &lt;App&gt;"));
    // A reply link, its subject naming the offer.
    assert!(html.contains("href=\"mailto:eve@contoso.com?subject=Your%20enquiry%20about"));
    let text = email["text"].as_str().unwrap();
    assert!(text.contains("Alice"));
    assert!(text.contains("Partner Center test leads (1)"));
    let tests_at = html.find("Partner Center test leads").unwrap();
    assert!(html.find("MSFT_TEST_636573304831318844").unwrap() > tests_at);
    assert!(html.find("Alice").unwrap() < tests_at);

    let source = source_of(maildev, email).await;
    assert!(source.contains("multipart/alternative"), "{source}");
    assert!(source.contains("text/plain") && source.contains("text/html"));
    let headers = &source[..source.find("\r\n\r\n").unwrap_or(source.len())];
    assert!(!headers.contains("victim"), "{headers}");

    // Nothing new: no email.
    let again = app.run_digest().await.expect("second run");
    assert_eq!(again.outcome, Outcome::NoNewLeads);
    assert_eq!(maildev.emails_to(&app.recipient).await.len(), 1);

    // One more lead: a digest of that one only.
    assert_eq!(app.post_lead(lead("Bob")).await.status(), 201);
    let third = app.run_digest().await.expect("third run");
    assert_eq!(third.lead_count, 1);
    let emails = maildev.emails_to(&app.recipient).await;
    assert_eq!(emails.len(), 2);
    let newest = emails
        .iter()
        .find(|e| e["text"].as_str().unwrap().contains("Bob"))
        .expect("Bob's digest");
    assert!(newest["subject"]
        .as_str()
        .unwrap()
        .starts_with("1 new marketplace lead · "));
    assert!(!newest["text"].as_str().unwrap().contains("Alice"));

    // The run history holds every run.
    let runs: Vec<_> = app
        .digest_rows()
        .await
        .into_iter()
        .filter(|r| r["PartitionKey"] == "run")
        .collect();
    let outcomes: Vec<_> = runs
        .iter()
        .map(|r| r["Outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "sent").count(),
        2,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&"no-new-leads"));
    assert!(runs
        .iter()
        .any(|r| r["Outcome"] == "sent" && r["LeadCount"] == 3 && r["MessageId"].is_string()));
    app.stop().await;
}

#[tokio::test]
async fn a_failed_send_loses_nothing_and_the_next_run_sends_once() {
    let mut maildev = MailDev::start();
    let app = spawn_app_with(AppOptions {
        smtp_url: Some(maildev.smtp_url()),
        ..AppOptions::default()
    })
    .await;
    // A first run with nothing to report sets the checkpoint.
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);
    assert_eq!(claim_state(&app).await, Some(None));
    for name in ["Carol", "Dave"] {
        assert_eq!(app.post_lead(lead(name)).await.status(), 201);
    }
    assert_eq!(pending_digest_records(&app).await, 2);

    maildev.stop();
    let failed = app.run_digest().await.expect_err("the sink is down");
    assert!(
        matches!(failed, DigestError::Send { lead_count: 2, .. }),
        "{failed}"
    );
    // Nothing was handed over: the claim is released, the leads stay pending.
    assert_eq!(claim_state(&app).await, Some(None), "claim released");
    assert_eq!(pending_digest_records(&app).await, 2, "both still pending");

    maildev.restart();
    assert_eq!(app.post_lead(lead("Erin")).await.status(), 201);
    let report = app.run_digest().await.expect("the sink is back");
    assert_eq!(report.lead_count, 3);
    let emails = maildev.emails_to(&app.recipient).await;
    assert_eq!(emails.len(), 1);
    let text = emails[0]["text"].as_str().unwrap();
    for name in ["Carol", "Dave", "Erin"] {
        assert_eq!(
            text.matches(&format!("{name}@contoso.com")).count(),
            1,
            "{name}"
        );
    }
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);
    assert_eq!(maildev.emails_to(&app.recipient).await.len(), 1);
    app.stop().await;
}

/// The checkpoint's claim state (`Some(None)`: a checkpoint without a
/// claim; `None`: no checkpoint yet).
async fn claim_state(app: &testkit::TestApp) -> Option<Option<String>> {
    app.digest_rows()
        .await
        .into_iter()
        .find(|r| r["PartitionKey"] == "checkpoint")
        .map(|r| {
            r.get("ClaimState")
                .and_then(|s| s.as_str())
                .map(str::to_owned)
        })
}

/// Pending digest records in the leads table.
async fn pending_digest_records(app: &testkit::TestApp) -> usize {
    app.rows()
        .await
        .iter()
        .filter(|r| {
            r["RowKey"]
                .as_str()
                .is_some_and(|k| k.starts_with("P.digest."))
        })
        .count()
}

#[tokio::test]
async fn two_concurrent_runs_send_one_email() {
    let app = spawn_app().await;
    for name in ["Frank", "Grace"] {
        assert_eq!(app.post_lead(lead(name)).await.status(), 201);
    }
    // Two first runs race (no checkpoint yet: both try to create it), then
    // two later runs race on the checkpoint's version.
    for (round, expected) in [(0, "Frank"), (1, "Heidi")] {
        let now = app.clock.now();
        let (first, second) = (app.digest(), app.digest());
        let (a, b) = tokio::join!(first.run(now, false), second.run(now, false));
        let outcomes = [a.unwrap().outcome, b.unwrap().outcome];
        let sent = outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Sent { .. }))
            .count();
        assert_eq!(sent, 1, "round {round}: {outcomes:?}");
        assert!(
            outcomes.contains(&Outcome::AnotherRunInProgress),
            "{outcomes:?}"
        );
        let emails = shared_maildev().emails_to(&app.recipient).await;
        assert_eq!(emails.len(), round + 1);
        assert!(emails
            .iter()
            .any(|e| e["text"].as_str().unwrap().contains(expected)));
        if round == 0 {
            assert_eq!(app.post_lead(lead("Heidi")).await.status(), 201);
        }
    }
    let emails = shared_maildev().emails_to(&app.recipient).await;
    let heidi: usize = emails
        .iter()
        .map(|e| {
            e["text"]
                .as_str()
                .unwrap()
                .matches("Heidi@contoso.com")
                .count()
        })
        .sum();
    assert_eq!(heidi, 1, "reported in exactly one digest");
    app.stop().await;
}

#[tokio::test]
async fn dry_run_sends_nothing_and_moves_nothing() {
    let app = spawn_app().await;
    assert_eq!(app.post_lead(lead("Ivan")).await.status(), 201);
    let report = app.digest().run(app.clock.now(), true).await.unwrap();
    let Outcome::DryRun { text } = report.outcome else {
        panic!("dry run expected: {report:?}");
    };
    assert!(text.starts_with("Subject: 1 new marketplace lead"));
    assert!(text.contains("Ivan@contoso.com"));
    assert!(shared_maildev().emails_to(&app.recipient).await.is_empty());
    assert!(
        app.digest_rows().await.is_empty(),
        "no checkpoint, no run record"
    );
    // The real run still sends it.
    assert_eq!(app.run_digest().await.unwrap().lead_count, 1);
    app.stop().await;
}

#[tokio::test]
async fn manual_run_endpoint_runs_the_digest() {
    let app = spawn_app().await;
    assert_eq!(app.post_lead(lead("Judy")).await.status(), 201);
    let response = app
        .post("/admin/functions/LeadDigest")
        .json(&serde_json::json!({"input": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["outcome"], "sent");
    assert_eq!(body["leads"], 1);
    assert_eq!(shared_maildev().emails_to(&app.recipient).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_run_that_died_after_claiming_is_resent_after_its_lease() {
    use futures::TryStreamExt;
    use marketplace_leads::store::{Checkpoint, Claim, ClaimState, Progress};
    let app = spawn_app().await;
    assert_eq!(app.post_lead(lead("Kim")).await.status(), 201);
    let now = app.clock.now();

    // A run claimed Kim's record and died before sending.
    let store = app.store();
    store.ensure_tables().await.unwrap();
    let days = store.pending_days(Progress::Digest, now).await.unwrap();
    let items: Vec<_> = store
        .digest_queue()
        .pending(days, None)
        .try_concat()
        .await
        .unwrap();
    assert_eq!(items.len(), 1);
    let run_id = uuid::Uuid::new_v4();
    let claim = Checkpoint {
        claim: Some(Claim {
            run_id,
            claimed_at: now,
            counted_until: now,
            state: ClaimState::Sending,
        }),
        outbox: true,
        ..Checkpoint::default()
    };
    store.digest_state().write(&claim, None).await.unwrap();
    store.digest_queue().stamp(&items, run_id).await.unwrap();

    // While the claim is fresh, other runs stand back.
    let report = app.digest().run(now, false).await.unwrap();
    assert_eq!(report.outcome, Outcome::AnotherRunInProgress);
    assert!(shared_maildev().emails_to(&app.recipient).await.is_empty());

    // After the lease, the same records are sent.
    app.clock.advance(marketplace_leads::digest::RUN_LEASE);
    let report = app.digest().run(app.clock.now(), false).await.unwrap();
    assert!(matches!(report.outcome, Outcome::Sent { .. }));
    assert_eq!(report.lead_count, 1);
    let checkpoint = app.checkpoint().await;
    assert_eq!(checkpoint.claim, None);
    assert_eq!(pending_digest_records(&app).await, 0);
    app.stop().await;
}
