//! The digest's promises under faults: late commits, ambiguous sends,
//! stalled servers, huge leads.

use super::*;
use marketplace_leads::digest::{DigestError, Outcome};
use std::time::{Duration, Instant};
use testkit::faults::{transactions, Fault, SilentSmtp, SmtpProxy, StorageProxy};
use testkit::{shared_azurite, shared_maildev, spawn_app_with, AppOptions, Azurite};

/// Every lead that is in the table is reported in exactly one sent digest,
/// whenever its write committed: here, seconds after LeadIngest gave up on
/// it (503), after a digest had run, and after the test clock moved an hour.
#[tokio::test]
async fn a_lead_committed_after_its_sender_gave_up_is_reported_once() {
    let azurite = Azurite::start();
    let proxy = StorageProxy::start(azurite.port).await;
    let app = spawn_app_with(AppOptions {
        storage: proxy.connection_string(),
        ..AppOptions::default()
    })
    .await;
    let maildev = shared_maildev();
    // Tables first (their creation is not a transaction, but keep it simple).
    app.store().ensure_tables().await.unwrap();

    // The lead's transaction is held past the handler's deadline.
    proxy.set(Fault::Hold(transactions(), Duration::from_secs(9)));
    let started = Instant::now();
    let answer = app.post_lead(lead("Late")).await;
    assert_eq!(answer.status(), 503, "not confirmed within the deadline");
    proxy.set(Fault::Pass);

    // A digest runs before the write lands, and another an hour later.
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);
    while app.lead_rows().await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the held write never landed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let landed = started.elapsed();
    app.clock.advance(Duration::from_secs(3600));
    let report = app.run_digest().await.unwrap();
    assert!(matches!(report.outcome, Outcome::Sent { .. }), "{report:?}");
    assert_eq!(report.lead_count, 1);

    // The resend the 503 advised is a duplicate, and adds nothing.
    assert_eq!(app.post_lead(lead("Late")).await.status(), 200);
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);
    let emails = maildev.emails_to(&app.recipient).await;
    let times: usize = emails
        .iter()
        .map(|e| {
            e["text"]
                .as_str()
                .unwrap()
                .matches("Late@contoso.example")
                .count()
        })
        .sum();
    report!(
        "late commit: answered 503, committed after {landed:.1?}; reported in {times} digest(s) of {}",
        emails.len()
    );
    assert_eq!(times, 1);
    app.stop().await;
}

/// A send whose outcome is unknown (the server took the message and the
/// connection dropped before its answer) is sent again with the same
/// Message-ID, not folded into a new digest under a new one.
#[tokio::test]
async fn an_ambiguous_send_is_resent_under_the_same_message_id() {
    let maildev = shared_maildev();
    let smtp = SmtpProxy::start(maildev.smtp_port).await;
    let app = spawn_app_with(AppOptions {
        smtp_url: Some(smtp.smtp_url()),
        ..AppOptions::default()
    })
    .await;
    for name in ["Amb0", "Amb1"] {
        assert_eq!(app.post_lead(lead(name)).await.status(), 201);
    }
    smtp.drop_after_next_data();
    let failed = app.run_digest().await.expect_err("no answer to DATA");
    assert!(
        matches!(&failed, DigestError::Send { source, .. } if source.may_have_been_sent()),
        "{failed}"
    );

    // A lead arrives meanwhile; the next run resends the same digest first.
    assert_eq!(app.post_lead(lead("Amb2")).await.status(), 201);
    let resent = app.run_digest().await.unwrap();
    assert_eq!(resent.lead_count, 2, "the same two leads");
    let next = app.run_digest().await.unwrap();
    assert_eq!(next.lead_count, 1, "then the one that came since");
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);

    let emails = maildev.emails_to(&app.recipient).await;
    let ids: Vec<&str> = emails
        .iter()
        .filter(|e| e["text"].as_str().unwrap().contains("Amb0@contoso.example"))
        .map(|e| e["messageId"].as_str().unwrap())
        .collect();
    report!(
        "ambiguous send: {} emails in all; the first digest arrived {} times under {:?}",
        emails.len(),
        ids.len(),
        ids
    );
    assert_eq!(ids.len(), 2, "delivered, and resent");
    assert_eq!(ids[0], ids[1], "under one Message-ID");
    assert_eq!(emails.len(), 3);
    app.stop().await;
}

/// A mail server that accepts the connection and never answers cannot hold
/// a run: it fails within the send budget, and the claim lets the next run
/// try at once (same digest, same id).
#[tokio::test]
async fn a_stalled_mail_server_cannot_hang_the_digest() {
    let silent = SilentSmtp::start().await;
    let app = spawn_app_with(AppOptions {
        smtp_url: Some(silent.smtp_url()),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(app.post_lead(lead("Stall")).await.status(), 201);
    let started = Instant::now();
    let response = app
        .post("/admin/functions/LeadDigest")
        .json(&serde_json::json!({"input": ""}))
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    report!(
        "stalled SMTP server: the run ended in {took:.1?}: {}",
        body["Logs"][0]
    );
    assert!(
        took < marketplace_leads::email::smtp::SEND_BUDGET + Duration::from_secs(10),
        "{took:?}"
    );
    // Nothing is lost: the lead waits for the next run.
    let checkpoint = app.checkpoint().await;
    assert!(
        checkpoint.claim.is_some(),
        "kept for a resend under the same id"
    );
    app.stop().await;
}

/// A burst of the largest leads there can be makes a bounded message that
/// any provider takes (ACS refuses over 10 MB): the digest keeps working.
#[tokio::test]
async fn a_burst_of_huge_leads_makes_a_bounded_digest() {
    let app = spawn_app_with(AppOptions {
        storage: shared_azurite().connection_string(),
        ..AppOptions::default()
    })
    .await;
    let filler = "<&\"😀".repeat(1_300);
    for i in 0..200 {
        let body = serde_json::json!({
            "UserDetails": {"FirstName": format!("Huge{i} {filler}"), "Company": &filler, "Title": &filler},
            "Description": &filler, "OfferTitle": &filler,
        })
        .to_string();
        assert!(
            body.len() > 50_000 && body.len() <= 65_536,
            "{}",
            body.len()
        );
        assert_eq!(app.post_lead(body).await.status(), 201);
    }
    let report = app.run_digest().await.expect("a digest that is sent");
    assert_eq!(report.lead_count, 200);
    let maildev = shared_maildev();
    let email = &maildev.emails_to(&app.recipient).await[0];
    let source = reqwest::get(format!(
        "http://127.0.0.1:{}/email/{}/source",
        maildev.web_port,
        email["id"].as_str().unwrap()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    report!(
        "200 leads of ~64 KiB: one digest of {:.2} MiB (the bound: {} MiB of text and HTML)",
        source.len() as f64 / 1_048_576.0,
        marketplace_leads::digest::render::MAX_MESSAGE_BYTES / 1_048_576
    );
    assert!(source.len() < 5 * 1_048_576, "{} bytes", source.len());
    app.stop().await;
}
