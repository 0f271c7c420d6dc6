//! The CRMs under faults: down (503) for a minute, throttled (429 with
//! `Retry-After`) in bursts, and a delivery repeated after it landed
//! (Dataverse 412, HubSpot 409 then an update) — one record per lead.

use super::*;
use std::collections::BTreeMap;
use testkit::fakes::crm::{Fault, Request};

async fn post_all(crm: &Crm, prefix: &str, n: usize) -> (Vec<String>, Vec<String>) {
    let names: Vec<String> = (0..n).map(|i| format!("{prefix}{i:02}")).collect();
    let mut ids = Vec::new();
    for name in &names {
        ids.push(post(&crm.app, lead(name)).await);
    }
    (ids, names)
}

#[tokio::test]
async fn crms_down_for_a_minute_get_every_lead_once_after() {
    let crm = setup().await;
    let down_from = crm.app.clock.now();
    crm.dataverse.unavailable_for(Duration::from_secs(60));
    crm.hubspot.unavailable_for(Duration::from_secs(60));
    let (ids, names) = post_all(&crm, "Down", 20).await;
    // Sweeps every 10 s of the app's time, through the outage and after.
    let sweeps = until(
        &crm.app,
        Duration::from_secs(10),
        Duration::from_secs(120),
        async || crm.delivered_to_both(20).await,
    )
    .await;
    assert_each_once(&crm, &ids, &names).await;
    let up_at = down_from + Duration::from_secs(60);
    for request in crm
        .dataverse
        .requests()
        .iter()
        .chain(&crm.hubspot.requests())
    {
        // (Up to a second either side of the end: the fake's clock read.)
        if request.at < up_at - Duration::from_secs(1) {
            assert_eq!(request.status, 503, "at {}", request.at - down_from);
        } else if request.at > up_at + Duration::from_secs(1) {
            assert!(
                matches!(request.status, 201 | 204),
                "{} at {}",
                request.status,
                request.at - down_from
            );
        }
    }
    let failed = crm.dataverse.answered(503) + crm.hubspot.answered(503);
    assert!(failed >= 40, "every lead was tried in the outage: {failed}");
    let attempts = rows(&crm.app, "S", "dataverse").await[0]["Attempts"].clone();
    report!(
        "CRMs 503 for a minute: 20 leads, {failed} answers 503, then each created once \
         ({sweeps} sweeps 10 s apart; a lead's record says {attempts} attempts); {}",
        crm.summary()
    );
    crm.app.stop().await;
}

/// The requests about each record (by Dataverse key or HubSpot email).
fn by_key(
    requests: Vec<Request>,
    key: impl Fn(&Request) -> String,
) -> BTreeMap<String, Vec<Request>> {
    let mut map: BTreeMap<String, Vec<Request>> = BTreeMap::new();
    for request in requests {
        map.entry(key(&request)).or_default().push(request);
    }
    map
}

/// After each 429, the next request about the same record came no sooner
/// than its `Retry-After`; returns the shortest wait seen.
fn honoured(requests: &BTreeMap<String, Vec<Request>>) -> Option<time::Duration> {
    let mut shortest: Option<time::Duration> = None;
    for (key, list) in requests {
        for pair in list.windows(2) {
            if pair[0].status != 429 {
                continue;
            }
            let asked: i64 = pair[0]
                .answer_header("retry-after")
                .unwrap()
                .parse()
                .unwrap();
            let waited = pair[1].at - pair[0].at;
            assert!(
                waited >= time::Duration::seconds(asked) - time::Duration::seconds(1),
                "{key}: retried {waited} after a 429 asking for {asked} s"
            );
            shortest = Some(shortest.map_or(waited, |s| s.min(waited)));
        }
    }
    shortest
}

#[tokio::test]
async fn throttled_in_bursts_each_lead_waits_its_retry_after_and_lands_once() {
    let crm = setup().await;
    let burst = |retry_after| std::iter::repeat_n(Fault::Throttled { retry_after }, 8);
    // Two bursts with a few requests let through between them.
    crm.dataverse.script(
        burst(45)
            .chain(std::iter::repeat_n(Fault::None, 4))
            .chain(burst(45)),
    );
    crm.hubspot.script(
        burst(40)
            .chain(std::iter::repeat_n(Fault::None, 4))
            .chain(burst(40)),
    );
    let (ids, names) = post_all(&crm, "Busy", 20).await;
    let sweeps = until(
        &crm.app,
        Duration::from_secs(5),
        Duration::from_secs(120),
        async || crm.delivered_to_both(20).await,
    )
    .await;
    assert_each_once(&crm, &ids, &names).await;
    assert_eq!(crm.dataverse.answered(429), 16);
    assert_eq!(crm.hubspot.answered(429), 16);
    let dataverse = by_key(crm.dataverse.requests(), |r| r.path.clone());
    let hubspot = by_key(crm.hubspot.requests(), |r| {
        r.json()["properties"]["email"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
    });
    let waited_dataverse = honoured(&dataverse).expect("some were throttled");
    let waited_hubspot = honoured(&hubspot).expect("some were throttled");
    // Not the engine's own 10 s backoff: the service's wait.
    assert!(waited_dataverse >= time::Duration::seconds(44));
    assert!(waited_hubspot >= time::Duration::seconds(39));
    report!(
        "429 bursts (2 × 8 per CRM): 20 leads each created once; shortest wait after a 429: \
         Dataverse {waited_dataverse} (asked 45 s), HubSpot {waited_hubspot} (asked 40 s); \
         {sweeps} sweeps 5 s apart; {}",
        crm.summary()
    );
    crm.app.stop().await;
}

/// Where a delivered lead is, read from its delivered record.
fn lead_ref(row: &Map<String, Value>) -> marketplace_leads::store::outbox::LeadRef {
    marketplace_leads::store::outbox::LeadRef {
        partition: row["LeadPartition"].as_str().unwrap().to_owned(),
        row_key: row["LeadRowKey"].as_str().unwrap().to_owned(),
        id: marketplace_leads::store::LeadId::parse(row["LeadId"].as_str().unwrap()).unwrap(),
        is_test: false,
        offer: None,
        action: None,
        rating: None,
    }
}

#[tokio::test]
async fn a_repeated_create_is_refused_by_the_crm_and_counts_as_delivered() {
    let crm = setup().await;
    let id = post(&crm.app, lead("Again")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || crm.delivered_to_both(1).await,
    )
    .await;
    // Queued again (as a lost answer, a restore or a manual requeue would).
    let store = crm.app.store();
    let now = crm.app.clock.now();
    for destination in ["dataverse", "hubspot"] {
        let row = &rows(&crm.app, "S", destination).await[0];
        let queued = store
            .enqueue_today(
                &marketplace_leads::store::Consumer::parse(destination).unwrap(),
                &[lead_ref(row)],
                now,
            )
            .await
            .unwrap();
        assert_eq!(queued, 1);
    }
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || {
            records(&crm.app, "P", "dataverse").await == 0
                && records(&crm.app, "P", "hubspot").await == 0
        },
    )
    .await;
    assert_eq!(crm.dataverse.records().len(), 1);
    assert_eq!(crm.dataverse.creates(), 1);
    assert_eq!(crm.dataverse.repeats(), 1, "the repeat was answered 412");
    assert!(crm.dataverse.record(record_id(&id)).is_some());
    let delivered = &rows(&crm.app, "S", "dataverse").await[0];
    assert_eq!(
        delivered["LastStatus"],
        "HTTP 412 (the record was already there)"
    );
    assert_eq!(crm.hubspot.contacts().len(), 1);
    assert_eq!(crm.hubspot.creates(), 1);
    assert_eq!(crm.hubspot.conflicts(), 1, "the repeat was answered 409");
    assert_eq!(crm.hubspot.updates(), 1, "then the contact was updated");
    let last = crm.hubspot.requests().pop().unwrap();
    assert_eq!(last.method, "PATCH");
    assert_eq!(
        last.path.to_lowercase(),
        "/crm/v3/objects/contacts/again@contoso.example?idproperty=email"
    );
    assert_eq!(
        rows(&crm.app, "S", "hubspot").await[0]["LastStatus"],
        "HTTP 200"
    );
    assert_eq!(records(&crm.app, "X", "dataverse").await, 0);
    assert_eq!(records(&crm.app, "X", "hubspot").await, 0);
    crm.assert_clean();
    report!(
        "repeated create: Dataverse 412 → delivered, HubSpot 409 → PATCH 200 → delivered; {}",
        crm.summary()
    );
    crm.app.stop().await;
}

/// Before: a `429` with `Retry-After: 3` that took a while to come was
/// retried sooner than 3 s after it: the wait was counted from when the
/// attempt began (a first attempt's round, or a sweep), not from the
/// answer. Now both count from the answer (the sweep shares the code).
#[tokio::test]
async fn retry_after_counts_from_the_answer() {
    let crm = setup().await;
    // The first attempt (no sweep): HubSpot takes 1.5 s to ask for 3 s.
    let slow = Duration::from_millis(1_500);
    crm.hubspot.script([Fault::ThrottledAfter {
        retry_after: 3,
        after: slow,
    }]);
    let started = std::time::Instant::now();
    post(&crm.app, lead("Patient")).await;
    while crm.hubspot.requests().len() < 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "no retry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let requests = crm.hubspot.requests();
    let answered = requests[0].at + slow;
    let waited = requests[1].at - answered;
    report!("HubSpot 429 Retry-After 3, answered in 1.5 s, on a first attempt: retried {waited} after the answer");
    assert_eq!(requests[0].status, 429);
    assert!(
        waited >= time::Duration::seconds(3),
        "retried after {waited}"
    );
    crm.app.stop().await;
}
