//! `handler deliveries backfill --destination dataverse --since 30d`: the
//! leads stored before Dataverse was configured are loaded once; running
//! it again changes nothing.

use super::*;
use marketplace_leads::domain::Lead;
use marketplace_leads::store::Consumer;
use testkit::testdata;

#[tokio::test]
async fn backfill_loads_earlier_leads_once_and_a_second_run_changes_nothing() {
    let crm = setup().await;
    let store = crm.app.store();
    // (The app creates its tables in the background.)
    store.ensure_tables().await.unwrap();
    let now = crm.app.clock.now();
    // Stored before the CRMs were configured: only the digest's record.
    let mut earlier = Vec::new();
    for day in 1..=12i64 {
        let name = format!("Earlier{day:02}");
        let at = now - time::Duration::days(day) - time::Duration::hours(day % 5);
        let lead = Lead::parse(lead(&name).as_bytes()).unwrap();
        store.save(&lead, at, &[Consumer::Digest]).await.unwrap();
        earlier.push(name);
    }
    let too_old = Lead::parse(lead("TooOld").as_bytes()).unwrap();
    store
        .save(
            &too_old,
            now - time::Duration::days(40),
            &[Consumer::Digest],
        )
        .await
        .unwrap();
    let test_lead = Lead::parse(&testdata("partner-center-test-lead.json")).unwrap();
    store
        .save(
            &test_lead,
            now - time::Duration::days(3),
            &[Consumer::Digest],
        )
        .await
        .unwrap();
    // And one received since, delivered as usual.
    let today = post(&crm.app, lead("Today")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || records(&crm.app, "S", "dataverse").await == 1,
    )
    .await;

    let backfill = [
        "deliveries",
        "backfill",
        "--destination",
        "dataverse",
        "--since",
        "30d",
    ];
    let settings = crm.dataverse.app_registration_settings();
    let first = handler_cli(&crm.app, &backfill, &settings);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("12 leads queued for dataverse"), "{said}");
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || records(&crm.app, "S", "dataverse").await == 13,
    )
    .await;
    let records_after_first = crm.dataverse.records();
    assert_eq!(records_after_first.len(), 13);
    assert_eq!(crm.dataverse.creates(), 13);
    assert_eq!(crm.dataverse.repeats(), 0);
    assert!(crm.dataverse.record(record_id(&today)).is_some());
    let names: Vec<String> = records_after_first
        .values()
        .map(|r| r.columns["firstname"].as_str().unwrap().to_owned())
        .collect();
    for name in &earlier {
        assert!(names.contains(name), "{name} loaded: {names:?}");
    }
    assert!(!names
        .iter()
        .any(|n| n == "TooOld" || n.starts_with("MSFT_TEST")));
    // Only Dataverse was backfilled.
    assert_eq!(crm.hubspot.contacts().len(), 1);

    let requests = crm.dataverse.requests().len();
    let second = handler_cli(&crm.app, &backfill, &settings);
    let said_again = String::from_utf8_lossy(&second.stdout);
    assert!(
        said_again.contains("0 leads queued for dataverse"),
        "{said_again}"
    );
    for _ in 0..3 {
        sweep_after(&crm.app, Duration::from_secs(60)).await;
    }
    assert_eq!(
        crm.dataverse.requests().len(),
        requests,
        "nothing sent again"
    );
    assert_eq!(crm.dataverse.records().len(), 13);
    assert_eq!(records(&crm.app, "S", "dataverse").await, 13);
    assert_eq!(records(&crm.app, "P", "dataverse").await, 0);
    crm.assert_clean();
    report!(
        "backfill --since 30d: first run {:?}, second run {:?}; {}",
        said.trim(),
        said_again.trim(),
        crm.summary()
    );
    crm.app.stop().await;
}
