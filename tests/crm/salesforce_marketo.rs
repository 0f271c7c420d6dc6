//! Salesforce and Marketo, the CRMs Partner Center connects natively,
//! against local stand-ins that check each request as the vendors document
//! it: every lead once in each (300 leads), a second lead from one person,
//! tokens that expire mid-run, rate limits and quotas, a 503 minute, a
//! SIGKILL in mid-delivery, picklist countries, DNC and test leads,
//! refusals that are dead with what to change, and backfill twice.

use super::*;
use futures::StreamExt;
use std::path::Path;
use testkit::fakes::crm::Fault;
use testkit::fakes::marketo::Refusal;
use testkit::fakes::{MarketoFake, SalesforceFake};
use testkit::process::{post_lead, HandlerProcess};

pub struct Native {
    pub app: TestApp,
    pub salesforce: SalesforceFake,
    pub marketo: MarketoFake,
}

impl Native {
    fn assert_clean(&self) {
        let problems: Vec<String> = self
            .salesforce
            .problems()
            .into_iter()
            .chain(self.marketo.problems())
            .collect();
        assert!(
            problems.is_empty(),
            "requests broke the rules: {problems:#?}"
        );
    }

    async fn delivered_to_both(&self, n: usize) -> bool {
        let rows = self.app.rows().await;
        let delivered = |destination: &str| {
            let prefix = format!("S.{destination}.L");
            rows.iter()
                .filter(|r| r["RowKey"].as_str().is_some_and(|k| k.starts_with(&prefix)))
                .count()
        };
        delivered("salesforce") == n && delivered("marketo") == n
    }

    fn summary(&self) -> String {
        format!("{}; {}", self.salesforce.summary(), self.marketo.summary())
    }
}

async fn native(extra: Vec<(&str, String)>) -> Native {
    let salesforce = SalesforceFake::start().await;
    let marketo = MarketoFake::start().await;
    let mut settings = salesforce.settings();
    settings.extend(marketo.settings());
    settings.extend(extra.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let app = spawn_app_with(AppOptions {
        extra: settings,
        ..AppOptions::default()
    })
    .await;
    salesforce.set_clock(app.clock.clone());
    marketo.set_clock(app.clock.clone());
    Native {
        app,
        salesforce,
        marketo,
    }
}

/// A lead from `name`, in `country`.
fn lead_in(name: &str, country: &str) -> String {
    lead(name).replace(
        "\"Country\":\"Japan\"",
        &format!("\"Country\":\"{country}\""),
    )
}

#[tokio::test]
async fn three_hundred_leads_are_each_written_once_to_each() {
    let n = native(Vec::new()).await;
    let names: Vec<String> = (0..300).map(|i| format!("Native{i:03}")).collect();
    let ids: Vec<String> = futures::stream::iter(names.iter())
        .map(|name| post(&n.app, lead(name)))
        .buffered(16)
        .collect()
        .await;
    let sweeps = until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(240),
        async || n.delivered_to_both(300).await,
    )
    .await;
    let leads = n.salesforce.leads();
    assert_eq!(leads.len(), 300, "one Salesforce Lead per lead");
    for id in &ids {
        let lead = leads.get(id).unwrap_or_else(|| panic!("no Lead for {id}"));
        assert_eq!(lead.updates, 0, "written once");
    }
    let sample = &leads[&ids[7]].fields;
    assert_eq!(sample["FirstName"], "Native007");
    assert_eq!(sample["LastName"], "Buyer");
    assert_eq!(sample["Company"], "Contoso");
    assert_eq!(sample["Country"], "Japan");
    assert!(sample["Description"].as_str().unwrap().contains(&ids[7]));
    let contacts = n.marketo.leads();
    assert_eq!(contacts.len(), 300, "one Marketo lead per person");
    assert!(contacts.values().all(|l| l.updates == 0));
    assert_eq!(
        contacts[&email("Native007")].fields["firstName"],
        "Native007"
    );
    assert!(n.salesforce.tokens_issued() <= 4, "{}", n.summary());
    assert!(n.marketo.tokens_issued() <= 4, "{}", n.summary());
    n.assert_clean();
    report!("300 leads ({sweeps} sweeps): {}", n.summary());
    n.app.stop().await;
}

#[tokio::test]
async fn a_second_lead_from_one_person_is_a_second_salesforce_lead_and_the_same_marketo_lead() {
    let n = native(Vec::new()).await;
    let first = post(&n.app, lead("Twice")).await;
    let again = lead("Twice").replace("Please call Twice", "Second request from Twice");
    let second = post(&n.app, again).await;
    assert_ne!(first, second);
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(2).await,
    )
    .await;
    let leads = n.salesforce.leads();
    assert_eq!(leads.len(), 2, "one Lead per marketplace lead, by our id");
    assert!(leads.contains_key(&first) && leads.contains_key(&second));
    let marketo = n.marketo.leads();
    assert_eq!(marketo.len(), 1, "one Marketo lead per person");
    assert_eq!(marketo[&email("Twice")].updates, 1);
    n.assert_clean();
    report!("a second lead from one person: {}", n.summary());
    n.app.stop().await;
}

#[tokio::test]
async fn expired_tokens_rate_limits_and_an_outage_are_waited_out() {
    // Marketo's daily quota resets at most a day later.
    let n = native(vec![("DELIVERY_MAX_AGE_HOURS", "72".into())]).await;
    post(&n.app, lead("Before")).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(1).await,
    )
    .await;
    // The tokens run out mid-run: a new one, and the write once more.
    n.salesforce.expire_tokens();
    n.marketo.expire_tokens();
    post(&n.app, lead("Expired")).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(2).await,
    )
    .await;
    assert!(n.salesforce.tokens_issued() >= 2 && n.marketo.tokens_issued() >= 2);
    // Limits: the org's daily API limit, Marketo's rate, concurrency and
    // daily quota (HTTP 200 with an error code).
    n.salesforce.script([Fault::Throttled { retry_after: 0 }]);
    n.marketo.refuse([
        Refusal::Error("606"),
        Refusal::Error("615"),
        Refusal::Error("607"),
    ]);
    post(&n.app, lead("Limited")).await;
    until(
        &n.app,
        Duration::from_secs(3_600),
        Duration::from_secs(180),
        async || n.delivered_to_both(3).await,
    )
    .await;
    // A minute of 503 (Salesforce) and 608 (Marketo).
    n.salesforce.unavailable_for(Duration::from_secs(60));
    n.marketo.set_fault(Fault::Unavailable);
    post(&n.app, lead("Outage")).await;
    for _ in 0..3 {
        sweep_after(&n.app, Duration::from_secs(20)).await;
    }
    n.marketo.set_fault(Fault::None);
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(90),
        async || n.delivered_to_both(4).await,
    )
    .await;
    assert_eq!(records(&n.app, "X", "salesforce").await, 0);
    assert_eq!(records(&n.app, "X", "marketo").await, 0);
    assert_eq!(n.salesforce.leads().len(), 4);
    assert_eq!(n.marketo.leads().len(), 4);
    n.assert_clean();
    report!(
        "tokens expired, limits, a 503 minute: every lead once; {}",
        n.summary()
    );
    n.app.stop().await;
}

#[tokio::test]
async fn picklist_countries_are_codes_and_an_unknown_one_stays_in_the_description() {
    let n = native(vec![("SALESFORCE_COUNTRY_PICKLISTS", "true".into())]).await;
    n.salesforce.set_picklists(true);
    let cases = [
        ("Usa", "USA", Some("US")),
        ("States", "United States", Some("US")),
        ("Germ", "Deutschland", None),
        ("Nippon", "Japan", Some("JP")),
        ("Nowhere", "Atlantis", None),
    ];
    let mut ids = Vec::new();
    for (name, country, _) in cases {
        ids.push(post(&n.app, lead_in(name, country)).await);
    }
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(cases.len()).await,
    )
    .await;
    let leads = n.salesforce.leads();
    for ((name, country, code), id) in cases.iter().zip(&ids) {
        let fields = &leads[id].fields;
        assert_eq!(
            fields.get("CountryCode").and_then(Value::as_str),
            *code,
            "{name} in {country}"
        );
        assert!(fields.get("Country").is_none());
        if code.is_none() {
            let description = fields["Description"].as_str().unwrap();
            assert!(description.contains(country), "{description}");
        }
    }
    n.assert_clean();
    report!("picklist countries: USA→US, United States→US, Deutschland kept in the note, Japan→JP, Atlantis kept");
    n.app.stop().await;
}

#[tokio::test]
async fn do_not_contact_and_test_leads_stay_out_unless_asked_for() {
    let dnc = r#"{"UserDetails":{"FirstName":"Quiet","LastName":"Buyer","Email":"quiet@contoso.example","Company":"Contoso"},
        "LeadSource":"SPZA-DNC|fabrikam.analytics","OfferTitle":"Contoso Analytics"}"#;
    let test = testkit::testdata("partner-center-test-lead.json");
    let n = native(Vec::new()).await;
    post(&n.app, dnc).await;
    post(&n.app, test.clone()).await;
    post(&n.app, lead("Loud")).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(1).await,
    )
    .await;
    assert_eq!(n.salesforce.leads().len(), 1);
    assert_eq!(n.marketo.leads().len(), 1);
    assert_eq!(
        records(&n.app, "P", "salesforce").await,
        0,
        "nothing queued for them"
    );
    n.app.stop().await;

    let n = native(vec![
        ("CRM_INCLUDE_DNC", "true".into()),
        ("CRM_INCLUDE_TEST_LEADS", "true".into()),
    ])
    .await;
    let quiet_id = post(&n.app, dnc).await;
    post(&n.app, test).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(2).await,
    )
    .await;
    let quiet = &n.salesforce.leads()[&quiet_id].fields;
    assert_eq!(quiet["HasOptedOutOfEmail"], true);
    assert_eq!(quiet["DoNotCall"], true);
    assert_eq!(
        n.marketo.leads()[&email("quiet")].fields["unsubscribed"],
        true
    );
    n.assert_clean();
    report!("DNC and test leads: none by default; with CRM_INCLUDE_DNC the opt-out fields set");
    n.app.stop().await;
}

#[tokio::test]
async fn refusals_are_dead_saying_what_to_change() {
    let n = native(Vec::new()).await;
    n.salesforce.set_blocking_rule(true);
    // An earlier Lead with the same email, then one the rule blocks.
    post(&n.app, lead("Dup")).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(1).await,
    )
    .await;
    n.marketo.refuse([Refusal::Skipped("1004")]);
    let blocked = post(&n.app, lead("Dup").replace("Please call", "Again, call")).await;
    let no_email = post(
        &n.app,
        r#"{"UserDetails":{"FirstName":"Nomail","LastName":"X"},"OfferTitle":"Contoso Analytics"}"#,
    )
    .await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || {
            records(&n.app, "X", "salesforce").await == 1
                && records(&n.app, "X", "marketo").await == 2
        },
    )
    .await;
    let dead = rows(&n.app, "X", "salesforce").await;
    let said = dead[0]["LastError"].as_str().unwrap();
    assert!(
        said.contains("DUPLICATES_DETECTED") && said.contains("Duplicate Rules"),
        "{said}"
    );
    assert_eq!(dead[0]["LeadId"], blocked.as_str());
    let marketo: Vec<String> = rows(&n.app, "X", "marketo")
        .await
        .iter()
        .map(|r| r["LastError"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        marketo
            .iter()
            .any(|e| e.contains("skipped") && e.contains("1004")),
        "{marketo:?}"
    );
    assert!(
        marketo.iter().any(|e| e.contains("no valid email")),
        "{marketo:?}"
    );
    let listed = handler_cli(&n.app, &["deliveries", "show", &no_email], &[]);
    let shown = String::from_utf8_lossy(&listed.stdout);
    assert!(
        shown.contains("marketo") && shown.contains("dead"),
        "{shown}"
    );
    n.app.run_digest().await.unwrap();
    let digest = &testkit::shared_maildev().emails_to(&n.app.recipient).await[0];
    let text = digest["text"].as_str().unwrap();
    assert!(text.contains("could not be delivered (3)"), "{text}");
    n.assert_clean();
    n.app.stop().await;
}

#[tokio::test]
async fn backfill_writes_older_leads_once() {
    let n = native(Vec::new()).await;
    // Stored before either CRM was configured: the digest's record only.
    let store = n.app.store();
    let day_ago = n.app.clock.now() - Duration::from_secs(86_400);
    for i in 0..4 {
        let lead =
            marketplace_leads::domain::Lead::parse(lead(&format!("Old{i}")).as_bytes()).unwrap();
        store
            .save(
                &lead,
                day_ago,
                &[marketplace_leads::store::Consumer::Digest],
            )
            .await
            .unwrap();
    }
    let mut env = n.salesforce.settings();
    env.extend(n.marketo.settings());
    for destination in ["salesforce", "marketo"] {
        for (run, expected) in [(1, "4 leads queued"), (2, "0 leads queued")] {
            let out = handler_cli(
                &n.app,
                &[
                    "deliveries",
                    "backfill",
                    "--destination",
                    destination,
                    "--since",
                    "2d",
                ],
                &env,
            );
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                said.contains(expected),
                "run {run} for {destination}: {said}"
            );
        }
    }
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(4).await,
    )
    .await;
    assert_eq!(n.salesforce.leads().len(), 4);
    assert_eq!(n.marketo.leads().len(), 4);
    n.assert_clean();
    report!("backfill twice: 4 then 0 queued for each; {}", n.summary());
    n.app.stop().await;
}

#[tokio::test]
async fn a_sigkill_in_mid_delivery_leaves_one_record_per_lead() {
    let app = spawn_app_with(AppOptions::default()).await;
    let salesforce = SalesforceFake::start().await;
    let marketo = MarketoFake::start().await;
    salesforce.set_fault(Fault::Hold(Duration::from_secs(120)));
    marketo.set_fault(Fault::Hold(Duration::from_secs(120)));
    let mut env: Vec<(String, String)> = vec![
        (
            "LEADS_STORAGE".into(),
            testkit::shared_azurite().connection_string(),
        ),
        ("LEADS_TABLE".into(), app.table.clone()),
        ("DELIVERY_SCHEDULE".into(), "*/2 * * * * *".into()),
        ("RUST_LOG".into(), "error".into()),
    ];
    env.extend(salesforce.settings());
    env.extend(marketo.settings());
    let binary = Path::new(env!("CARGO_BIN_EXE_handler"));
    let first = HandlerProcess::start(binary, &env);
    let client = reqwest::Client::new();
    // As many as may have their first attempts in flight at once: each is
    // held until the kill. (A lead beyond them waits for a sweep, which a
    // held write keeps busy for its 30 s bound; a slow machine could then
    // see held first attempts time out and go again before the kill.)
    let leads = marketplace_leads::delivery::lanes::FAST_LANE;
    let posting = Instant::now();
    for i in 0..leads {
        assert_eq!(
            post_lead(&client, &first.address(), lead(&format!("Kill{i}"))).await,
            201
        );
    }
    let started = Instant::now();
    while salesforce.leads().len() < leads || marketo.leads().len() < leads {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "writes in flight: {}",
            salesforce.summary()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill();
    let killed_after = posting.elapsed();
    salesforce.set_fault(Fault::None);
    marketo.set_fault(Fault::None);
    salesforce.release_holds();
    marketo.release_holds();
    let restarted = Instant::now();
    let second = HandlerProcess::start(binary, &env);
    while records(&app, "S", "salesforce").await < leads
        || records(&app, "S", "marketo").await < leads
    {
        assert!(
            restarted.elapsed() < Duration::from_secs(120),
            "not delivered after the restart"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(second);
    assert_eq!(salesforce.leads().len(), leads, "one Lead per lead");
    assert!(
        salesforce.leads().values().all(|l| l.updates == 1),
        "each written again, as an update: {:?}; killed {killed_after:?} after the first \
         post; {}",
        salesforce
            .leads()
            .values()
            .map(|l| l.updates)
            .collect::<Vec<_>>(),
        salesforce.summary()
    );
    assert_eq!(marketo.leads().len(), leads, "one Marketo lead per person");
    let problems: Vec<String> = salesforce
        .problems()
        .into_iter()
        .chain(marketo.problems())
        .collect();
    assert!(problems.is_empty(), "{problems:#?}");
    report!(
        "SIGKILL with {leads} writes in flight to each: after the restart ({:?}) one record per lead; {}; {}",
        restarted.elapsed(),
        salesforce.summary(),
        marketo.summary()
    );
    app.stop().await;
}

/// Before: an answer was read only as far as its 800-byte excerpt, and a
/// token was parsed from that: with JWT-based access tokens (1.3 KB) no
/// token was ever had — no Lead written, a token request per attempt,
/// then dead. Answers that are parsed are now read whole (up to 64 KiB).
#[tokio::test]
async fn a_long_access_token_is_read_whole() {
    let n = native(Vec::new()).await;
    n.salesforce.set_jwt_tokens(true);
    for name in ["Jwt0", "Jwt1", "Jwt2"] {
        assert_eq!(n.app.post_lead(lead(name)).await.status(), 201);
    }
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(3).await,
    )
    .await;
    report!(
        "JWT access tokens: {} Leads written with {} token request(s)",
        n.salesforce.leads().len(),
        n.salesforce.tokens_issued()
    );
    assert_eq!(n.salesforce.leads().len(), 3);
    assert_eq!(n.salesforce.tokens_issued(), 1);
    n.assert_clean();
    n.app.stop().await;
}

/// Before: Marketo's refusal of an unknown Custom Service quotes its client
/// id ("No client with requested id: …"), and the dead letter kept it.
/// Client ids are now redacted like secrets from whatever is stored.
#[tokio::test]
async fn a_refused_client_id_is_not_kept() {
    const WRONG_ID: &str = "0f9e8d7c-someone-elses-custom-service";
    let n = native(vec![("MARKETO_CLIENT_ID", WRONG_ID.into())]).await;
    assert_eq!(n.app.post_lead(lead("Refused")).await.status(), 201);
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || {
            n.app.rows().await.iter().any(|r| {
                r["RowKey"]
                    .as_str()
                    .is_some_and(|k| k.starts_with("X.marketo."))
            })
        },
    )
    .await;
    let stored = serde_json::to_string(&n.app.rows().await).unwrap();
    assert!(
        stored.contains("No client with requested id"),
        "the refusal is kept"
    );
    assert!(!stored.contains(WRONG_ID), "the client id is not");
    report!("Marketo refused the client id: dead, its id redacted from the records");
    n.app.stop().await;
}

/// Before: the customer's note, the offer, the action and our lead id
/// never reached Marketo. With `MARKETO_FIELDS` they go to the custom
/// fields named (a Text Area for the note), and `MARKETO_LEAD_SOURCE` to
/// the standard Lead Source.
#[tokio::test]
async fn marketo_gets_the_note_offer_action_and_lead_id() {
    let n = native(vec![
        ("MARKETO_LEAD_SOURCE", "Azure Marketplace".into()),
        (
            "MARKETO_FIELDS",
            "note=marketplaceNote,offer=marketplaceOffer,action=marketplaceAction,leadId=marketplaceLeadId"
                .into(),
        ),
    ])
    .await;
    n.marketo.add_fields(&[
        ("marketplaceNote", true),
        ("marketplaceOffer", false),
        ("marketplaceAction", false),
        ("marketplaceLeadId", false),
    ]);
    let id = post(&n.app, lead("Noted")).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(1).await,
    )
    .await;
    let written = &n.marketo.leads()[&email("Noted")].fields;
    assert_eq!(written["leadSource"], "Azure Marketplace");
    assert_eq!(written["marketplaceNote"], "Please call Noted");
    assert_eq!(written["marketplaceOffer"], "Contoso Analytics");
    assert_eq!(written["marketplaceAction"], "PLT");
    assert_eq!(written["marketplaceLeadId"], id.as_str());
    n.assert_clean();
    n.app.stop().await;
}

/// Who owns a new Lead is said, not left to the REST API's default:
/// `Sforce-Auto-Assign` TRUE (the org's active assignment rule) unless
/// `SALESFORCE_ASSIGNMENT_RULE` says FALSE or names a rule.
#[tokio::test]
async fn the_assignment_rule_is_said_on_every_write() {
    let n = native(vec![(
        "SALESFORCE_ASSIGNMENT_RULE",
        "01Q5f000000AbCd".into(),
    )])
    .await;
    post(&n.app, lead("Assigned")).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(1).await,
    )
    .await;
    assert_eq!(n.salesforce.assignment_headers(), ["01Q5f000000AbCd"]);
    n.assert_clean();
    n.app.stop().await;
}

/// The rating in each CRM's own field: Salesforce's Rating picklist (here
/// an org that renamed its values, and one that did not and was told
/// otherwise: dead, naming the setting), Marketo's leadScore.
#[tokio::test]
async fn the_rating_goes_into_each_crms_own_field() {
    let n = native(vec![(
        "SALESFORCE_RATING_VALUES",
        "A - Hot, B - Warm, C - Cold".into(),
    )])
    .await;
    n.salesforce
        .set_rating_values(&["A - Hot", "B - Warm", "C - Cold"]);
    let hot = post(&n.app, lead("Rated")).await;
    let cold_body = r#"{"UserDetails":{"FirstName":"Sam","LastName":"Lee","Email":"sam.lee.1987@gmail.com"},
        "LeadSource":"AzureMarketplace-INS|fabrikam.analytics","OfferTitle":"Contoso Analytics"}"#;
    let cold = post(&n.app, cold_body).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || n.delivered_to_both(2).await,
    )
    .await;
    let leads = n.salesforce.leads();
    assert_eq!(leads[&hot].fields["Rating"], "A - Hot");
    assert_eq!(leads[&cold].fields["Rating"], "C - Cold");
    let marketo = n.marketo.leads();
    let score = |email: &str| {
        marketo
            .values()
            .find(|l| {
                l.fields["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(email))
            })
            .map(|l| l.fields["leadScore"].clone())
    };
    let hot_score = score("rated@contoso.example").unwrap();
    assert!(hot_score.as_i64().unwrap() >= 50, "{hot_score}");
    assert_eq!(score("sam.lee.1987@gmail.com"), Some(serde_json::json!(0)));
    n.assert_clean();
    n.app.stop().await;

    // The org kept Hot/Warm/Cold but the setting says otherwise.
    let n = native(vec![(
        "SALESFORCE_RATING_VALUES",
        "Hot lead,Warm lead,Cold lead".into(),
    )])
    .await;
    post(&n.app, lead("Mismatch")).await;
    until(
        &n.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || !rows(&n.app, "X", "salesforce").await.is_empty(),
    )
    .await;
    let dead = rows(&n.app, "X", "salesforce").await;
    let said = dead[0]["LastError"].as_str().unwrap_or_default().to_owned();
    assert!(said.contains("SALESFORCE_RATING_VALUES"), "{dead:?}");
    report!("Salesforce Rating A - Hot / C - Cold, Marketo leadScore {hot_score} / 0; a mismatched picklist: {said}");
    n.app.stop().await;
}
