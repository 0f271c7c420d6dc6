//! What goes into a CRM: Partner Center's test leads only when asked for,
//! no HubSpot contact without an email, hostile text as the customer wrote it.

use super::*;
use testkit::testdata;

const TEST_LEAD_EMAIL: &str = "msft_test_636573304831318844@test.com";

#[tokio::test]
async fn test_leads_stay_out_of_the_crms_unless_asked_for() {
    let crm = setup().await;
    let id = post(&crm.app, testdata("partner-center-test-lead.json")).await;
    for _ in 0..3 {
        sweep_after(&crm.app, Duration::from_secs(60)).await;
    }
    for destination in ["dataverse", "hubspot"] {
        for state in ["P", "S", "X"] {
            assert_eq!(
                records(&crm.app, state, destination).await,
                0,
                "{state}.{destination}"
            );
        }
    }
    assert!(crm.dataverse.requests().is_empty() && crm.hubspot.requests().is_empty());
    // The digest still has it.
    assert_eq!(records(&crm.app, "P", "digest").await, 1);
    crm.app.stop().await;

    let crm = setup_with(vec![("CRM_INCLUDE_TEST_LEADS", "true".into())]).await;
    let included = post(&crm.app, testdata("partner-center-test-lead.json")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || crm.delivered_to_both(1).await,
    )
    .await;
    let record = crm
        .dataverse
        .record(record_id(&included))
        .expect("the record");
    assert!(record.columns["description"]
        .as_str()
        .unwrap()
        .contains("(Partner Center test lead)"));
    let contact = crm.hubspot.contact(TEST_LEAD_EMAIL).expect("the contact");
    assert!(contact.properties["message"]
        .as_str()
        .unwrap()
        .contains("(Partner Center test lead)"));
    crm.assert_clean();
    report!(
        "test lead {id}: no CRM record by default; with CRM_INCLUDE_TEST_LEADS=true, one in each"
    );
    crm.app.stop().await;
}

/// A "do not contact" lead: no CRM by default; with `CRM_INCLUDE_DNC=true`
/// a Dataverse record with its opt-outs set, and still no HubSpot contact
/// (HubSpot has no field to say so).
#[tokio::test]
async fn do_not_contact_leads_reach_only_crms_that_can_record_it() {
    let dnc = r#"{"UserDetails":{"FirstName":"Quiet","LastName":"Buyer","Email":"quiet@contoso.example","Company":"Contoso"},
        "LeadSource":"SPZA-DNC|fabrikam.analytics","OfferTitle":"Contoso Analytics"}"#;
    let crm = setup().await;
    post(&crm.app, dnc).await;
    post(&crm.app, lead("Loud")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || crm.delivered_to_both(1).await,
    )
    .await;
    assert_eq!(crm.dataverse.records().len(), 1);
    assert!(crm.hubspot.contact(&email("quiet")).is_none());
    crm.app.stop().await;

    let crm = setup_with(vec![("CRM_INCLUDE_DNC", "true".into())]).await;
    let quiet = post(&crm.app, dnc).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || records(&crm.app, "S", "dataverse").await == 1,
    )
    .await;
    let record = crm.dataverse.record(record_id(&quiet)).expect("the record");
    for column in ["donotemail", "donotphone", "donotbulkemail"] {
        assert_eq!(record.columns[column], true, "{column}");
    }
    for state in ["P", "S", "X"] {
        assert_eq!(
            records(&crm.app, state, "hubspot").await,
            0,
            "{state}.hubspot"
        );
    }
    assert!(crm.hubspot.requests().is_empty());
    crm.assert_clean();
    report!("DNC lead {quiet}: Dataverse with donotemail/donotphone/donotbulkemail, never HubSpot");
    crm.app.stop().await;
}

#[tokio::test]
async fn a_lead_without_an_email_is_dead_for_hubspot_saying_why() {
    let crm = setup().await;
    let no_email = serde_json::json!({
        "UserDetails": {"FirstName": "Nomail", "LastName": "Buyer", "Company": "Contoso", "Phone": "+1 425"},
        "OfferTitle": "Contoso Analytics", "ActionCode": "PLT",
    })
    .to_string();
    let bad_email = lead("Bademail").replace("Bademail@contoso.example", "not an address");
    let a = post(&crm.app, no_email).await;
    let b = post(&crm.app, bad_email).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || {
            records(&crm.app, "X", "hubspot").await == 2
                && records(&crm.app, "S", "dataverse").await == 2
        },
    )
    .await;
    assert!(crm.hubspot.requests().is_empty(), "nothing sent to HubSpot");
    for row in rows(&crm.app, "X", "hubspot").await {
        assert_eq!(row["LastStatus"], "no email");
        let error = row["LastError"].as_str().unwrap();
        assert!(
            error.contains("de-duplicates contacts by email") && error.contains("no valid email"),
            "{error}"
        );
    }
    // Dataverse takes a lead without an email.
    let record = crm.dataverse.record(record_id(&a)).unwrap();
    assert!(record.columns.get("emailaddress1").is_none());
    assert!(crm.dataverse.record(record_id(&b)).is_some());
    crm.assert_clean();
    report!("no email / a bad one: dead for HubSpot (nothing sent), created in Dataverse");
    crm.app.stop().await;
}

// Customer text that means something in HTML, Markdown, HTTP and JSON,
// within the Dataverse columns' lengths. (Not U+2028: Azurite answers a
// transaction holding it with 500, and keeps failing every later one.)
const FIRST: &str = "**Eve** <script>x</script>";
const LAST: &str = "O'Brien \"the\" \\ `last`";
const COMPANY: &str = "_Acme_ & \"Sons\"\r\nBcc: victim@example.com";
const TITLE: &str = "<b>CTO</b> [x](https://evil.example)";
const NOTE: &str =
    "- not a list\r\n1. nor this\n# nor a heading `code` ~~strike~~ \\ backslash é 🦀";

#[tokio::test]
async fn hostile_text_stays_literal_in_both_crms() {
    let crm = setup().await;
    let body = serde_json::json!({
        "UserDetails": {"FirstName": FIRST, "LastName": LAST, "Email": "eve@contoso.example",
            "Company": COMPANY, "Title": TITLE, "Country": "Ja|pan", "Phone": "+1 (425) 555-0100"},
        "OfferTitle": "Offer *x* <i>", "ActionCode": "PLT", "LeadSource": "SPZA-PLT|a.b",
        "Description": NOTE,
    })
    .to_string();
    let id = post(&crm.app, body).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || crm.delivered_to_both(1).await,
    )
    .await;
    let columns = crm.dataverse.record(record_id(&id)).unwrap().columns;
    assert_eq!(columns["firstname"], FIRST);
    assert_eq!(columns["lastname"], LAST);
    assert_eq!(columns["companyname"], COMPANY);
    assert_eq!(columns["jobtitle"], TITLE);
    assert_eq!(columns["address1_country"], "Ja|pan");
    assert_eq!(columns["subject"], "Marketplace lead: Offer *x* <i>");
    let description = columns["description"].as_str().unwrap();
    assert!(description.starts_with(NOTE), "{description:?}");

    let contact = crm.hubspot.contact("eve@contoso.example").unwrap();
    let p = &contact.properties;
    assert_eq!(p["firstname"], FIRST);
    assert_eq!(p["lastname"], LAST);
    assert_eq!(p["company"], COMPANY);
    assert_eq!(p["jobtitle"], TITLE);
    assert_eq!(p["phone"], "+1 (425) 555-0100");
    assert!(p["message"].as_str().unwrap().starts_with(NOTE));

    // On the wire: JSON escapes, not HTML entities or stripped characters.
    let sent = String::from_utf8(crm.dataverse.requests()[0].body.to_vec()).unwrap();
    assert!(sent.contains(r#"\r\nBcc: victim@example.com"#), "{sent}");
    assert!(!sent.contains("&lt;") && !sent.contains("&quot;") && !sent.contains("&amp;"));
    crm.assert_clean();
    report!("hostile text: literal in the Dataverse record and the HubSpot contact");
    crm.app.stop().await;
}

/// The rating in Dataverse's own Rating column (`leadqualitycode`: 1 Hot,
/// 2 Warm, 3 Cold) and in the HubSpot dropdown property the admin created
/// and named in `HUBSPOT_RATING_PROPERTY`; a property HubSpot does not have
/// is refused (PROPERTY_DOESNT_EXIST), so it is written only when named.
#[tokio::test]
async fn the_rating_goes_into_dataverse_and_the_named_hubspot_property() {
    let crm = setup_with(vec![(
        "HUBSPOT_RATING_PROPERTY",
        "marketplace_rating".into(),
    )])
    .await;
    crm.hubspot
        .create_dropdown("marketplace_rating", &["hot", "warm", "cold"]);
    let hot = post(&crm.app, lead("Hotly")).await;
    let warm_body = r#"{"UserDetails":{"FirstName":"Wen","LastName":"Buyer","Email":"wen@contoso.example",
        "Company":"Contoso"},"LeadSource":"AzureMarketplace-INS|fabrikam.analytics",
        "OfferTitle":"Contoso Analytics","Description":"Evaluating for our data team"}"#;
    let warm = post(&crm.app, warm_body).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(60),
        async || crm.delivered_to_both(2).await,
    )
    .await;
    let quality =
        |id: &str| crm.dataverse.record(record_id(id)).unwrap().columns["leadqualitycode"].clone();
    assert_eq!(quality(&hot), serde_json::json!(1));
    assert_eq!(quality(&warm), serde_json::json!(2));
    let property =
        |email: &str| crm.hubspot.contact(email).unwrap().properties["marketplace_rating"].clone();
    assert_eq!(property(&email("Hotly")), "hot");
    assert_eq!(property("wen@contoso.example"), "warm");
    crm.assert_clean();
    report!("Dataverse leadqualitycode 1 (hot) / 2 (warm); HubSpot marketplace_rating hot / warm");
    crm.app.stop().await;
}
