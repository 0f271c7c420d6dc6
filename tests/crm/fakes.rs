//! The fakes themselves: they refuse what Dataverse, the identity platform
//! and HubSpot refuse, with their documented statuses and bodies, and list
//! every rule broken — so a passing CRM test means the requests were right.

use super::*;
use serde_json::json;
use testkit::fakes::dataverse::{CLIENT_ID, CLIENT_SECRET, IDENTITY_HEADER, TENANT_ID};

async fn token(client: &reqwest::Client, fake: &DataverseFake, secret: &str) -> reqwest::Response {
    client
        .post(format!(
            "{}/{TENANT_ID}/oauth2/v2.0/token",
            fake.authority_host()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", secret),
            ("scope", &format!("{}/.default", fake.url())),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_dataverse_fake_refuses_what_dataverse_refuses() {
    let fake = DataverseFake::start().await;
    let client = reqwest::Client::new();

    let refused = token(&client, &fake, "wrong").await;
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215"));
    let granted: Value = token(&client, &fake, CLIENT_SECRET)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(granted["token_type"], "Bearer");
    assert_eq!(granted["expires_in"], 3599);
    let bearer = granted["access_token"].as_str().unwrap().to_owned();

    let msi = client
        .get(format!(
            "{}?resource={}&api-version=2019-08-01",
            fake.identity_endpoint(),
            fake.url()
        ))
        .header("X-IDENTITY-HEADER", IDENTITY_HEADER)
        .send()
        .await
        .unwrap();
    assert_eq!(msi.status(), 200);
    let msi: Value = msi.json().await.unwrap();
    assert!(msi["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
    assert_eq!(msi["resource"], fake.url());

    let id = uuid::Uuid::new_v4();
    let url = format!("{}/api/data/v9.2/leads({id})", fake.url());
    let patch = |body: Value, token: &str| {
        client
            .patch(&url)
            .bearer_auth(token)
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .header("Accept", "application/json")
            .header("If-None-Match", "*")
            .json(&body)
    };
    // No token of its own: 401 with the resource to ask a token for.
    let answer = patch(json!({"lastname": "A"}), "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    assert!(answer.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains(&format!("resource_id={}/", fake.url())));
    // A column the lead table does not have.
    let answer = patch(json!({"leadsourcecode": "x"}), &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "0x80060888");
    // Longer than the column takes.
    let answer = patch(json!({"firstname": "x".repeat(51)}), &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    // Created once, then 412 with the documented body.
    let answer = patch(json!({"lastname": "A", "subject": "S"}), &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert_eq!(
        answer.headers()["odata-entityid"].to_str().unwrap(),
        url.as_str()
    );
    let answer = patch(json!({"lastname": "B"}), &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 412);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": "0x80040237", "message": "A record with matching key values already exists."}})
    );
    assert_eq!(fake.record(id).unwrap().columns["lastname"], "A");
    // Without If-None-Match a PATCH is an upsert that updates: a problem.
    let answer = client
        .patch(&url)
        .bearer_auth(&bearer)
        .json(&json!({"lastname": "C"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 204);
    assert_eq!(fake.creates(), 1);
    assert_eq!(fake.repeats(), 1);
    let problems = fake.problems();
    for expected in [
        "no bearer token",
        "unknown column leadsourcecode",
        "firstname has 51 characters",
        "if-none-match: None",
        "odata-version: None",
        "accept: Some(\"*/*\")",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:#?}"
        );
    }
}

#[tokio::test]
async fn the_hubspot_fake_refuses_what_hubspot_refuses() {
    let fake = HubSpotFake::start().await;
    let client = reqwest::Client::new();
    let contacts = format!("{}/crm/v3/objects/contacts", fake.url());
    let create = |token: &str, properties: Value| {
        client
            .post(&contacts)
            .bearer_auth(token)
            .json(&json!({ "properties": properties }))
    };
    let answer = create("pat-na1-wrong", json!({"email": "a@b.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["category"], "INVALID_AUTHENTICATION");

    let token = testkit::fakes::hubspot::TOKEN;
    let answer = create(token, json!({"email": "a@b.example", "favourite": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["category"], "VALIDATION_ERROR");

    let answer = create(token, json!({"email": "A@b.example", "firstname": "A"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 201);
    let created: Value = answer.json().await.unwrap();
    assert_eq!(created["archived"], false);
    assert_eq!(created["properties"]["firstname"], "A");
    let id = created["id"].as_str().unwrap().to_owned();
    // HubSpot's email uniqueness ignores case.
    let answer = create(token, json!({"email": "a@B.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 409);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["category"], "CONFLICT");
    assert_eq!(
        body["message"],
        format!("Contact already exists. Existing ID: {id}")
    );

    let answer = client
        .patch(format!("{contacts}/a@b.example?idProperty=email"))
        .bearer_auth(token)
        .json(&json!({"properties": {"email": "a@b.example", "lastname": "B"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer = client
        .patch(format!("{contacts}/nobody@b.example?idProperty=email"))
        .bearer_auth(token)
        .json(&json!({"properties": {"email": "nobody@b.example"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 404);
    fake.script([testkit::fakes::crm::Fault::Throttled { retry_after: 7 }]);
    let answer = create(token, json!({"email": "c@b.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["retry-after"], "7");
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["errorType"], "RATE_LIMIT");
    assert_eq!(body["policyName"], "SECONDLY");

    assert_eq!(fake.contacts().len(), 1);
    assert_eq!(
        fake.contact("a@b.example").unwrap().properties["lastname"],
        "B"
    );
    assert!(fake
        .problems()
        .iter()
        .any(|p| p.contains("unknown property favourite")));
}
