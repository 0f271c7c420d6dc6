//! A new lead's deliveries written as one bundle record, against everything
//! else that reads or writes deliveries: a backfill (or `leads import
//! --deliver`) while they are still bundled adds no second record, so no
//! lead reaches a destination twice and a failing destination holds no
//! other back; and a delivery answered 2xx is on record within about a
//! second even when a sibling of its bundle is slow.

use super::*;

/// `handler` with the app's own settings (its destinations included).
fn handler(app: &TestApp, args: &[&str]) -> String {
    let output = app.run_cli(env!("CARGO_BIN_EXE_handler"), args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Before: `recorded_leads` read only `P.<destination>.` records, never a
/// bundle, so a backfill after a burst queued a second record per lead:
/// each lead reached the webhook twice, `deliveries list` showed each
/// pending twice, and with the webhook failing, the unpack that met the
/// second record failed whole — Teams got none of the leads.
#[tokio::test]
async fn a_backfill_while_deliveries_are_bundled_adds_nothing() {
    let s = setup().await;
    s.webhook.answer(Answer::Status(503));
    // A burst: first attempts give way, every lead's deliveries stay one
    // bundle for the sweep.
    let names: Vec<String> = (0..6).map(|i| format!("Bundled{i}")).collect();
    let ids: Vec<String> =
        futures::future::join_all(names.iter().map(|name| post(&s.app, lead(name)))).await;
    let backfilled = handler(
        &s.app,
        &[
            "deliveries",
            "backfill",
            "--destination",
            "webhook",
            "--since",
            "1d",
        ],
    );
    report!("backfill during a burst: {}", backfilled.trim());
    let listed = handler(&s.app, &["deliveries", "list", "--destination", "webhook"]);
    let listed_ids = ids.iter().filter(|id| listed.contains(id.as_str())).count();
    assert_eq!(listed_ids, ids.len(), "{listed}");
    for id in &ids {
        assert_eq!(
            listed.matches(id.as_str()).count(),
            1,
            "{id} once in\n{listed}"
        );
    }

    // The webhook fails; Teams still gets every lead.
    until(&s.app, Duration::from_secs(60), async || {
        s.teams.received().len() >= names.len()
    })
    .await;
    let failed = s.webhook.received().len();
    s.webhook.answer(Answer::Status(200));
    until(&s.app, Duration::from_secs(60), async || {
        records(&s.app, "S", "webhook").await == names.len()
    })
    .await;
    // More sweeps: a second record per lead would go out now.
    for _ in 0..3 {
        let _quiet = deliverer(&s.app).quiesce().await;
        s.app.clock.advance(Duration::from_secs(120));
        deliverer(&s.app).sweep(s.app.clock.now()).await.unwrap();
    }
    let accepted = s.webhook.received().len() - failed;
    report!(
        "6 bundled leads, a backfill, the webhook answering 503 then 200: {accepted} \
         accepted by the webhook, {} by Teams",
        s.teams.received().len()
    );
    assert_eq!(accepted, names.len(), "each lead once");
    assert_eq!(by_webhook_id(&s.webhook.received()).len(), names.len());
    assert_eq!(s.teams.received().len(), names.len(), "each lead once");
    assert_eq!(records(&s.app, "P", "webhook").await, 0);
    s.app.stop().await;
}

/// Before: a lead's outcomes were written only when its slowest
/// destination answered (up to 30 s), so in that window the webhook's 2xx
/// was on no record — a backfill then queued it again (and a crash would
/// have sent it again after the lease). Now the outcomes known after about
/// a second are written while the slow one is still going.
#[tokio::test]
async fn a_delivery_is_on_record_within_a_second_while_a_sibling_hangs() {
    let s = setup_with(vec![("NOTIFY_TO", String::new())]).await;
    s.teams.script([Answer::Hang]);
    s.teams.answer(Answer::Status(202));
    post(&s.app, lead("Slow")).await;
    let started = Instant::now();
    while records(&s.app, "S", "webhook").await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the webhook's 2xx is still on no record"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let on_record = started.elapsed();
    assert_eq!(
        records(&s.app, "P", "teams").await,
        1,
        "Teams still pending"
    );
    report!("webhook delivered while Teams hangs: on record after {on_record:?}");
    assert!(on_record < Duration::from_secs(3), "{on_record:?}");

    let backfilled = handler(
        &s.app,
        &[
            "deliveries",
            "backfill",
            "--destination",
            "webhook",
            "--since",
            "1d",
        ],
    );
    assert!(backfilled.starts_with("0 leads queued"), "{backfilled}");
    // Teams' record outlives its hanging attempt's claim; a sweep delivers it.
    s.app.clock.advance(Duration::from_secs(120));
    until(&s.app, Duration::from_secs(30), async || {
        records(&s.app, "S", "teams").await == 1
    })
    .await;
    assert_eq!(
        s.webhook.received().len(),
        1,
        "the webhook got the lead once"
    );
    s.app.stop().await;
}

/// Tables written by the versions with that bug hold a bundle and, beside
/// it, a record of its own for one destination. Before: unpacking met that
/// record, failed whole, and none of the lead's other destinations was
/// ever delivered. Now that destination keeps its own record and the
/// others are unpacked.
#[tokio::test]
async fn a_bundle_beside_a_record_of_its_own_still_unpacks() {
    use marketplace_leads::store::{Consumer, LeadRef};
    let s = setup_with(vec![("NOTIFY_TO", String::new())]).await;
    // A burst, so the leads stay bundled.
    let names: Vec<String> = (0..4).map(|i| format!("Old{i}")).collect();
    futures::future::join_all(names.iter().map(|name| post(&s.app, lead(name)))).await;
    let store = s.app.store();
    let bundles: Vec<LeadRef> = s
        .app
        .rows()
        .await
        .iter()
        .filter_map(
            |row| match marketplace_leads::store::outbox::reading::read(row)? {
                marketplace_leads::store::outbox::reading::Pending::Bundle(bundle) => {
                    Some(bundle.lead)
                }
                _ => None,
            },
        )
        .collect();
    assert!(!bundles.is_empty(), "the burst left bundles");
    let webhook = Consumer::parse("webhook").unwrap();
    let written = store
        .enqueue_today(&webhook, &bundles, s.app.clock.now())
        .await
        .unwrap();
    assert_eq!(written, bundles.len(), "the old bug's second records");
    until(&s.app, Duration::from_secs(60), async || {
        records(&s.app, "S", "teams").await == names.len()
            && records(&s.app, "S", "webhook").await == names.len()
    })
    .await;
    report!(
        "{} bundles beside a record of their own: Teams {} leads, webhook {} requests",
        bundles.len(),
        s.teams.received().len(),
        s.webhook.received().len()
    );
    assert_eq!(s.teams.received().len(), names.len());
    assert_eq!(s.webhook.received().len(), names.len());
    s.app.stop().await;
}
