//! The digest under faults: the mail sink down for a run, storage down for
//! a run, storage cut between the send and recording it — every lead
//! reported, the leads reported twice counted (same Message-ID).

use super::*;
use marketplace_leads::digest::{DigestError, Outcome, RUN_LEASE};
use std::collections::BTreeMap;
use std::sync::Arc;
use testkit::faults::{Fault, StorageProxy};
use testkit::{spawn_app_with, Azurite, MailDev};

fn named_lead(name: &str) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"{name}","Email":"{name}@contoso.example"}},"OfferTitle":"Faults"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lead_is_reported_after_mail_storage_and_crash_faults() {
    let _serial = SERIAL.lock().await;
    let mut azurite = Azurite::start_persistent();
    let proxy = StorageProxy::start(azurite.port).await;
    // The write recording that the provider accepted the digest.
    let recording_the_send = Arc::new(|text: &str| {
        let line = text.lines().next().unwrap_or_default();
        (line.starts_with("PUT ") || line.starts_with("MERGE "))
            && line.contains("checkpoint")
            && text.contains(r#""ClaimState":"sent""#)
    });
    let mut maildev = MailDev::start();
    let app = spawn_app_with(options(proxy.connection_string(), Some(maildev.smtp_url()))).await;
    let per_window = 10;
    let mut windows: Vec<(&str, Vec<String>)> = Vec::new();
    let mut ingest = |label: &'static str| {
        let names: Vec<String> = (0..per_window).map(|i| format!("{label}{i}")).collect();
        windows.push((label, names.clone()));
        let app = &app;
        async move {
            for name in names {
                assert_eq!(app.post_lead(named_lead(&name)).await.status(), 201);
            }
        }
    };

    // A first run with nothing to report sets the checkpoint.
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);

    // 1. The mail sink is down for a run.
    ingest("Mail").await;
    maildev.stop();
    let failed = app.run_digest().await.expect_err("the sink is down");
    assert!(matches!(failed, DigestError::Send { .. }), "{failed}");
    maildev.restart();
    let report = app.run_digest().await.expect("the sink is back");
    assert_eq!(report.lead_count, per_window);

    // 2. Storage is down for a run.
    ingest("Storage").await;
    azurite.stop();
    let failed = app.run_digest().await.expect_err("storage is down");
    assert!(matches!(failed, DigestError::Storage(_)), "{failed}");
    assert_eq!(maildev.emails_to(&app.recipient).await.len(), 1);
    azurite.restart();
    let report = app.run_digest().await.expect("storage is back");
    assert_eq!(report.lead_count, per_window);

    // 3. Storage vanishes right after the send, before the send is
    //    recorded: the state a crash between the two leaves.
    ingest("Crash").await;
    proxy.set(Fault::CutFrom(recording_the_send));
    let failed = app.run_digest().await.expect_err("cut after the send");
    assert!(
        matches!(failed, DigestError::CheckpointAfterSend { .. }),
        "{failed}"
    );
    proxy.set(Fault::Pass);
    let left = app.checkpoint().await;
    assert!(left.claim.is_some(), "the claim stays: {left:?}");
    assert_eq!(maildev.emails_to(&app.recipient).await.len(), 3);

    // Leads keep arriving; while the claim is fresh, runs stand back.
    ingest("Later").await;
    assert_eq!(
        app.run_digest().await.unwrap().outcome,
        Outcome::AnotherRunInProgress
    );
    // Recovery: after the lease the claimed records are sent again, then
    // the leads that came since.
    app.clock.advance(RUN_LEASE);
    let resent = app.run_digest().await.expect("the claimed records again");
    assert_eq!(resent.lead_count, per_window);
    let next = app.run_digest().await.expect("the leads since");
    assert_eq!(next.lead_count, per_window);
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);

    // Count, over every email the sink got, each lead's reports.
    let emails = maildev.emails_to(&app.recipient).await;
    let texts: Vec<&str> = emails
        .iter()
        .map(|e| e["text"].as_str().unwrap_or_default())
        .collect();
    let mut twice_by_fault = BTreeMap::new();
    let mut total = 0;
    for (label, names) in &windows {
        for name in names {
            let address = format!("{name}@contoso.example");
            let times: usize = texts.iter().map(|t| t.matches(&address).count()).sum();
            assert!(times >= 1, "{name} was never reported");
            assert!(times <= 2, "{name} reported {times} times");
            total += 1;
            *twice_by_fault.entry(*label).or_insert(0) += usize::from(times == 2);
        }
    }
    let twice: usize = twice_by_fault.values().sum();
    report!(
        "digest under faults: {total} leads, {} emails; every lead reported; \
         reported twice: {twice} {twice_by_fault:?}",
        emails.len()
    );
    assert_eq!(emails.len(), 5, "five digests were accepted by the sink");
    assert_eq!(twice_by_fault["Mail"], 0);
    assert_eq!(twice_by_fault["Storage"], 0);
    assert_eq!(twice_by_fault["Later"], 0);
    assert_eq!(
        twice_by_fault["Crash"], per_window,
        "SMTP has no de-duplication: the crashed digest is delivered twice"
    );
    // ... but both copies carry the same Message-ID, so a receiver (or ACS,
    // by Operation-Id) can tell them for one.
    let crash_ids: Vec<&str> = emails
        .iter()
        .filter(|e| {
            e["text"]
                .as_str()
                .unwrap_or_default()
                .contains("Crash0@contoso.example")
        })
        .filter_map(|e| e["messageId"].as_str())
        .collect();
    assert_eq!(crash_ids.len(), 2, "{crash_ids:?}");
    assert_eq!(crash_ids[0], crash_ids[1]);
    app.stop().await;
}
