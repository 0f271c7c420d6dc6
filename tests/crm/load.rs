//! A 500-lead load: every lead in each CRM exactly once.

use super::*;
use futures::StreamExt;

#[tokio::test]
async fn five_hundred_leads_are_each_written_once_to_each_crm() {
    let crm = setup().await;
    let started = Instant::now();
    let names: Vec<String> = (0..500).map(|i| format!("Load{i:03}")).collect();
    let ids: Vec<String> = futures::stream::iter(names.iter())
        .map(|name| post(&crm.app, lead(name)))
        .buffered(16)
        .collect()
        .await;
    let posted = started.elapsed();
    let sweeps = until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(240),
        async || crm.delivered_to_both(500).await,
    )
    .await;
    let delivered = started.elapsed();
    assert_each_once(&crm, &ids, &names).await;

    // Each request as documented, and each record with the lead's columns.
    for request in crm.dataverse.requests() {
        assert_eq!(request.method, "PATCH");
        assert_eq!(request.status, 204, "{}", request.path);
    }
    let record = crm.dataverse.record(record_id(&ids[7])).unwrap();
    assert_eq!(record.columns["firstname"], "Load007");
    assert_eq!(record.columns["emailaddress1"], "Load007@contoso.example");
    assert_eq!(
        record.columns["subject"],
        "Marketplace lead: Contoso Analytics"
    );
    assert!(record.columns["description"]
        .as_str()
        .unwrap()
        .contains(&ids[7]));
    let contact = crm.hubspot.contact(&email("Load007")).unwrap();
    assert_eq!(contact.properties["firstname"], "Load007");
    assert_eq!(contact.properties["company"], "Contoso");
    let tokens = crm.dataverse.token_requests();
    assert!(
        !tokens.is_empty() && tokens.len() <= 8,
        "the token is cached: {} token requests",
        tokens.len()
    );
    report!(
        "500 leads: posted in {posted:?}, all delivered in {delivered:?} ({sweeps} sweeps); {}",
        crm.summary()
    );
    crm.app.stop().await;
}
