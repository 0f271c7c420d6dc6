//! A CRM that refuses the app's identity: 401 and 403 are dead at once
//! (not retried), with a message saying what to set up, listed by `handler
//! deliveries list --status dead` and reported by the next digest. A
//! client secret the identity platform refuses never reaches Dataverse.

use super::*;
use testkit::fakes::crm::Fault;
use testkit::fakes::dataverse::TokenKind;
use testkit::shared_maildev;

#[tokio::test]
async fn a_refused_token_is_dead_listed_and_in_the_digest() {
    // HubSpot: a token that is not the private app's; Dataverse: a token it
    // no longer takes (the app user was removed).
    let crm = setup_with(vec![("HUBSPOT_TOKEN", "pat-na1-revoked-0000".into())]).await;
    crm.dataverse.set_fault(Fault::Unauthorized);
    let id = post(&crm.app, lead("Refused")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || {
            records(&crm.app, "X", "dataverse").await == 1
                && records(&crm.app, "X", "hubspot").await == 1
        },
    )
    .await;
    // A few more sweeps: a dead delivery is not tried again.
    for _ in 0..3 {
        sweep_after(&crm.app, Duration::from_secs(3_600)).await;
    }
    assert_eq!(crm.dataverse.requests().len(), 1, "a 401 is not retried");
    assert_eq!(crm.hubspot.requests().len(), 1, "a 401 is not retried");
    assert_eq!(crm.dataverse.answered(401), 1);
    assert_eq!(crm.hubspot.answered(401), 1);
    assert_eq!(records(&crm.app, "P", "dataverse").await, 0);
    assert_eq!(records(&crm.app, "P", "hubspot").await, 0);

    let dataverse = &rows(&crm.app, "X", "dataverse").await[0];
    assert_eq!(dataverse["LastStatus"], "HTTP 401");
    let error = dataverse["LastError"].as_str().unwrap();
    assert!(
        error.contains("application user") && error.contains("security role"),
        "says what to set up: {error}"
    );
    let hubspot = &rows(&crm.app, "X", "hubspot").await[0];
    assert_eq!(hubspot["LastStatus"], "HTTP 401");
    let error = hubspot["LastError"].as_str().unwrap();
    assert!(
        error.contains("private app") && error.contains("crm.objects.contacts.write"),
        "says what to set up: {error}"
    );
    assert!(
        error.contains("INVALID_AUTHENTICATION"),
        "with HubSpot's answer: {error}"
    );
    assert!(
        !error.contains("revoked-0000"),
        "no token in the record: {error}"
    );

    // `handler deliveries list --status dead` lists both.
    let output = handler_cli(
        &crm.app,
        &["deliveries", "list", "--status", "dead", "--since", "1h"],
        &[],
    );
    let listed = String::from_utf8_lossy(&output.stdout);
    assert!(
        listed.contains(&id) && listed.contains("dataverse") && listed.contains("hubspot"),
        "{listed}"
    );
    assert!(listed.contains("HTTP 401"), "{listed}");
    assert!(listed.contains("2 deliveries dead"), "{listed}");

    // The next digest reports both.
    crm.app.run_digest().await.expect("the digest runs");
    let digest = shared_maildev().emails_to(&crm.app.recipient).await;
    assert_eq!(digest.len(), 1);
    let text = digest[0]["text"].as_str().unwrap();
    assert!(text.contains("could not be delivered (2)"), "{text}");
    assert!(
        text.contains(&format!("lead {id} → dataverse: HTTP 401"))
            && text.contains(&format!("lead {id} → hubspot: HTTP 401")),
        "{text}"
    );

    // A 401 drops Dataverse's cached token: the next lead gets a new one.
    crm.dataverse.set_fault(Fault::None);
    let tokens_before = crm.dataverse.token_requests().len();
    let next = post(&crm.app, lead("AfterRefusal")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || records(&crm.app, "S", "dataverse").await == 1,
    )
    .await;
    assert!(crm.dataverse.record(record_id(&next)).is_some());
    assert_eq!(crm.dataverse.token_requests().len(), tokens_before + 1);
    crm.assert_clean();
    report!(
        "401: dead at once in both CRMs, listed, in the digest; a new token after it; {}",
        crm.summary()
    );
    crm.app.stop().await;
}

#[tokio::test]
async fn forbidden_is_dead_saying_which_role_or_scope_is_missing() {
    let crm = setup().await;
    crm.dataverse.set_fault(Fault::Forbidden);
    crm.hubspot.set_fault(Fault::Forbidden);
    post(&crm.app, lead("NoRole")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || {
            records(&crm.app, "X", "dataverse").await == 1
                && records(&crm.app, "X", "hubspot").await == 1
        },
    )
    .await;
    assert_eq!(crm.dataverse.requests().len(), 1);
    assert_eq!(crm.hubspot.requests().len(), 1);
    let dataverse = &rows(&crm.app, "X", "dataverse").await[0];
    assert_eq!(dataverse["LastStatus"], "HTTP 403");
    let error = dataverse["LastError"].as_str().unwrap();
    assert!(error.contains("security role"), "{error}");
    // (Dataverse's own message is cut to fit the record: its code is kept.)
    assert!(
        error.contains("0x80040220"),
        "with Dataverse's answer: {error}"
    );
    let hubspot = &rows(&crm.app, "X", "hubspot").await[0];
    assert_eq!(hubspot["LastStatus"], "HTTP 403");
    let error = hubspot["LastError"].as_str().unwrap();
    assert!(error.contains("crm.objects.contacts.write"), "{error}");
    assert!(crm.dataverse.records().is_empty() && crm.hubspot.contacts().is_empty());
    crm.assert_clean();
    report!("403: dead at once in both CRMs; {}", crm.summary());
    crm.app.stop().await;
}

#[tokio::test]
async fn a_client_secret_the_identity_platform_refuses_never_reaches_dataverse() {
    let wrong = "Qx8~not-the-secret";
    let dataverse_settings: Vec<(&str, String)> = vec![("DATAVERSE_CLIENT_SECRET", wrong.into())];
    let crm = setup_with(dataverse_settings).await;
    post(&crm.app, lead("WrongSecret")).await;
    until(
        &crm.app,
        Duration::from_secs(60),
        Duration::from_secs(30),
        async || records(&crm.app, "S", "hubspot").await == 1,
    )
    .await;
    for _ in 0..3 {
        sweep_after(&crm.app, Duration::from_secs(3_600)).await;
    }
    assert!(
        crm.dataverse.requests().is_empty(),
        "no Web API request without a token"
    );
    let tokens = crm.dataverse.token_requests();
    assert!(!tokens.is_empty());
    assert!(tokens
        .iter()
        .all(|t| t.kind == TokenKind::ClientCredentials && t.request.status == 401));
    // What the app sent is the client-credentials grant, as documented.
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&tokens[0].request.body)
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], format!("{}/.default", crm.dataverse.url()));
    assert_eq!(
        tokens[0].request.path,
        format!(
            "/{}/oauth2/v2.0/token",
            testkit::fakes::dataverse::TENANT_ID
        )
    );

    // A refusal no retry can fix: dead after one token request, saying
    // which settings to check, never the secret.
    assert_eq!(tokens.len(), 1, "a refused secret is not retried");
    assert_eq!(records(&crm.app, "P", "dataverse").await, 0);
    let dead = rows(&crm.app, "X", "dataverse").await;
    assert_eq!(dead.len(), 1);
    let status = dead[0]["LastStatus"].as_str().unwrap_or_default();
    let error = dead[0]["LastError"].as_str().unwrap_or_default();
    assert_eq!(status, "token refused");
    assert!(
        error.contains("DATAVERSE_CLIENT_ID") && error.contains("DATAVERSE_CLIENT_SECRET"),
        "names the settings: {error}"
    );
    assert!(!error.contains(wrong) && !error.contains("not-the-secret"));
    crm.assert_clean();
    report!(
        "wrong client secret: 1 token request answered 401 invalid_client, no Web API request; \
         the delivery is dead ({status}: {error})"
    );
    crm.app.stop().await;
}
