//! Every lead reaches every configured destination, once, as documented.

use super::*;
use standardwebhooks::Webhook;
use testkit::{shared_maildev, testdata};

/// Checks a webhook request as the Standard Webhooks spec says a receiver
/// must, with the spec's own verifier, and returns its body.
pub fn verified(request: &testkit::fakes::receiver::Received) -> Value {
    Webhook::new(SECRET)
        .unwrap()
        .verify(&request.body, &request.headers)
        .unwrap_or_else(|e| panic!("the signature does not verify: {e}"));
    let signature = request.header("webhook-signature").unwrap();
    assert!(signature.starts_with("v1,"), "{signature}");
    assert_eq!(request.header("content-type"), Some("application/json"));
    request.json()
}

/// Checks a Teams Workflows request: one Adaptive Card 1.4 in the documented
/// envelope, made of known element types; returns the card's content.
pub fn card(request: &testkit::fakes::receiver::Received) -> Value {
    let message = request.json();
    assert_eq!(message["type"], "message");
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    let attachment = &attachments[0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert!(attachment["contentUrl"].is_null());
    let content = &attachment["content"];
    assert_eq!(
        content["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(content["type"], "AdaptiveCard");
    assert_eq!(content["version"], "1.4");
    for element in content["body"].as_array().unwrap() {
        match element["type"].as_str().unwrap() {
            "TextBlock" => assert!(element["text"].is_string()),
            "FactSet" => {
                for fact in element["facts"].as_array().unwrap() {
                    assert!(
                        fact["title"].is_string() && fact["value"].is_string(),
                        "{fact}"
                    );
                }
            }
            other => panic!("unexpected element type {other}"),
        }
    }
    for action in content["actions"].as_array().unwrap() {
        assert_eq!(action["type"], "Action.OpenUrl");
        assert!(action["url"].as_str().unwrap().starts_with("mailto:"));
    }
    content.clone()
}

#[tokio::test]
async fn every_lead_reaches_every_destination_once() {
    let s = setup().await;
    let mut ids = Vec::new();
    for name in ["Ada", "Bea", "Cid", "Dov"] {
        ids.push(post(&s.app, lead(name)).await);
    }
    let test_lead = post(
        &s.app,
        String::from_utf8(testdata("partner-center-test-lead.json")).unwrap(),
    )
    .await;
    let maildev = shared_maildev();
    until(&s.app, Duration::from_secs(60), async || {
        s.webhook.received().len() >= 5
            && s.teams.received().len() >= 5
            && maildev.emails_to(&s.notify_to).await.len() >= 5
    })
    .await;

    // The webhook: five signed events, one per lead, each id once.
    let hooks = s.webhook.received();
    assert_eq!(hooks.len(), 5, "no repeats");
    let mut seen = Vec::new();
    for request in &hooks {
        assert_eq!(request.path, "/hooks/leads");
        let event = verified(request);
        assert_eq!(event["type"], "lead.received");
        assert!(event["timestamp"].is_string());
        let data = &event["data"];
        seen.push(data["leadId"].as_str().unwrap().to_owned());
        let id = request.header("webhook-id").unwrap();
        assert!(id.starts_with("msg_"), "{id}");
        if data["leadId"] == test_lead.as_str() {
            assert_eq!(data["isTestLead"], true);
            continue;
        }
        assert_eq!(data["isTestLead"], false);
        let name = data["firstName"].as_str().unwrap();
        assert_eq!(
            data["raw"].as_str().unwrap(),
            lead(name),
            "the body as received"
        );
        assert_eq!(data["email"], format!("{name}@contoso.example"));
        assert_eq!(data["offerTitle"], "Contoso Analytics");
        assert_eq!(data["actionCode"], "PLT");
        assert_eq!(data["leadSource"], "SPZA-PLT|fabrikam.analytics");
        assert_eq!(data["source"]["channel"], "SPZA");
        assert_eq!(data["source"]["action"], "PLT");
        assert_eq!(data["source"]["offerId"], "fabrikam.analytics");
        assert_eq!(data["rating"]["level"], "hot", "{data}");
        assert_eq!(data["rating"]["reasons"][0], "asked to be contacted");
        assert!(data["receivedAt"].as_str().unwrap().ends_with('Z'));
    }
    seen.sort();
    let mut expected = ids.clone();
    expected.push(test_lead.clone());
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(
        by_webhook_id(&hooks).len(),
        5,
        "a distinct webhook-id per lead"
    );

    // Teams: five cards; the test lead's says so; a mailto action.
    let cards: Vec<Value> = s.teams.received().iter().map(card).collect();
    assert_eq!(cards.len(), 5);
    let tests = cards
        .iter()
        .filter(|c| c["body"][0]["text"] == "Partner Center test lead")
        .count();
    assert_eq!(tests, 1);
    assert!(cards
        .iter()
        .any(|c| c["actions"][0]["url"] == "mailto:Ada@contoso.example"));

    // Email: one per lead, its subject telling who, which offer, what.
    let emails = maildev.emails_to(&s.notify_to).await;
    let sent: Vec<_> = emails
        .iter()
        .map(|e| (e["subject"].clone(), e["messageId"].clone()))
        .collect();
    assert_eq!(emails.len(), 5, "{sent:?}");
    let mut subjects: Vec<&str> = emails
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "Hot lead: Ada Buyer (Contoso) – Contoso Analytics: asked to be contacted",
            "Hot lead: Bea Buyer (Contoso) – Contoso Analytics: asked to be contacted",
            "Hot lead: Cid Buyer (Contoso) – Contoso Analytics: asked to be contacted",
            "Hot lead: Dov Buyer (Contoso) – Contoso Analytics: asked to be contacted",
            "[TEST] MSFT_TEST_636573304831318844 MSFT_TEST_… (MSFT_TEST_636573304831318844) – \
             Contoso Analytics: installed",
        ],
        "{sent:?}"
    );
    let ids_by_mail: std::collections::BTreeSet<_> = emails
        .iter()
        .map(|e| e["messageId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids_by_mail.len(), 5);

    // What the table says: delivered everywhere, nothing pending or dead.
    for destination in ["webhook", "teams", "email"] {
        assert_eq!(records(&s.app, "S", destination).await, 5, "{destination}");
        assert_eq!(records(&s.app, "P", destination).await, 0, "{destination}");
        assert_eq!(records(&s.app, "X", destination).await, 0, "{destination}");
    }
    report!(
        "every destination: 5 leads; webhook {} requests / {} ids, teams {} cards, email {} messages",
        hooks.len(),
        by_webhook_id(&hooks).len(),
        cards.len(),
        emails.len()
    );
    s.app.stop().await;
}

/// A new lead is delivered by its first attempt, which reads nothing
/// back and claims nothing: its records are written already claimed in the
/// lead's own transaction, and every destination's outcome is settled in
/// one more — two storage requests for a lead delivered everywhere.
#[tokio::test]
async fn a_new_lead_is_delivered_at_once_reading_nothing_back() {
    let azurite = testkit::Azurite::start();
    let proxy = testkit::faults::StorageProxy::start(azurite.port).await;
    let webhook = Receiver::start().await;
    let teams = Receiver::start().await;
    teams.answer(Answer::Status(202));
    let app = spawn_app_with(AppOptions {
        storage: proxy.connection_string(),
        extra: vec![
            ("WEBHOOK_URL".into(), webhook.url("/hooks/leads")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
            ("TEAMS_WEBHOOK_URL".into(), teams.url("/workflows/leads")),
            // No sweep: what arrives came by the first attempt.
            ("DELIVERY_SCHEDULE".into(), "0 0 0 1 1 *".into()),
        ],
        ..AppOptions::default()
    })
    .await;
    app.store().ensure_tables().await.unwrap();
    proxy.take_requests();

    let started = Instant::now();
    let id = post(&app, lead("Eve")).await;
    while webhook.received().is_empty() || teams.received().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not delivered by the first attempt"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let delivered_in = started.elapsed();
    assert_eq!(
        verified(&webhook.received()[0])["data"]["leadId"],
        id.as_str()
    );
    // What the lead cost storage, as the proxy saw it, once both outcomes
    // are recorded (the save and one settling transaction).
    let mut requests = Vec::new();
    while requests
        .iter()
        .filter(|r: &&String| r.contains("$batch"))
        .count()
        < 2
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not recorded: {requests:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        requests.extend(proxy.take_requests());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    requests.extend(proxy.take_requests());
    // The app creates its tables in the background at start-up; on a busy
    // machine that can land after the test's own `ensure_tables`. It is not
    // the lead's cost.
    requests.retain(|r| !r.starts_with("POST /devstoreaccount1/Tables "));
    assert_eq!(records(&app, "S", "webhook").await, 1);
    assert_eq!(records(&app, "S", "teams").await, 1);
    let count = |method: &str, what: &str| {
        requests
            .iter()
            .filter(|r| r.starts_with(method) && r.contains(what))
            .count()
    };
    assert_eq!(
        count("POST", "$batch"),
        2,
        "save, then one settling transaction: {requests:#?}"
    );
    assert_eq!(
        count("MERGE", ""),
        0,
        "nothing claimed apart: {requests:#?}"
    );
    assert_eq!(count("GET", ""), 0, "nothing read back: {requests:#?}");
    assert_eq!(requests.len(), 2, "{requests:#?}");
    report!(
        "first attempt: delivered {delivered_in:?} after posting, {} storage requests for the lead and two destinations",
        requests.len()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_delivery_adds_no_pending_record() {
    let s = setup().await;
    post(&s.app, lead("Eve")).await;
    let again = s.app.post_lead(lead("Eve")).await;
    assert_eq!(again.status(), 200);
    until(&s.app, Duration::from_secs(30), async || {
        s.webhook.received().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.webhook.received().len(), 1);
    assert_eq!(
        records(&s.app, "S", "webhook").await + records(&s.app, "P", "webhook").await,
        1
    );
    s.app.stop().await;
}

#[tokio::test]
async fn the_hourly_email_cap_combines_leads_and_drops_none() {
    let s = setup_with(vec![("NOTIFY_MAX_PER_HOUR", "3".to_owned())]).await;
    let names: Vec<String> = (0..8).map(|i| format!("Cap{i}")).collect();
    for name in &names {
        post(&s.app, lead(name)).await;
    }
    let maildev = shared_maildev();
    until(&s.app, Duration::from_secs(60), async || {
        records(&s.app, "S", "email").await == names.len()
    })
    .await;
    let emails = maildev.emails_to(&s.notify_to).await;
    // Combined, not dropped: fewer emails than leads, at most three an hour
    // (the test clock moves an hour on while it waits).
    assert!(
        emails.len() < names.len() && emails.len() <= 6,
        "{} emails",
        emails.len()
    );
    let mut mentions = 0;
    for name in &names {
        let times: usize = emails
            .iter()
            .map(|e| {
                e["text"]
                    .as_str()
                    .unwrap()
                    .matches(&format!("{name}@contoso.example"))
                    .count()
            })
            .sum();
        assert_eq!(times, 1, "{name} in exactly one email");
        mentions += times;
    }
    let combined = emails
        .iter()
        .filter(|e| {
            e["subject"]
                .as_str()
                .unwrap()
                .contains(" marketplace leads")
        })
        .count();
    assert!(combined >= 1, "the last send of the hour combines the rest");
    report!(
        "email cap 3/h: {} leads in {} emails ({combined} combined)",
        mentions,
        emails.len()
    );
    s.app.stop().await;
}
