//! LeadIngest against a real Azurite: statuses, stored columns read back
//! with a plain client, de-duplication, concurrency, storage outage.

use serde_json::Value;
use testkit::{spawn_app, spawn_app_with, testdata, AppOptions, Azurite};

#[tokio::test]
async fn every_sample_payload_gets_the_right_status_and_columns() {
    let app = spawn_app().await;

    let response = app.post_lead(testdata("appsource-contact-me.json")).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "created");
    let id = body["id"].as_str().unwrap().to_owned();

    for name in [
        "partner-center-test-lead.json",
        "seed-example.json",
        "sparse-fields.json",
    ] {
        assert_eq!(app.post_lead(testdata(name)).await.status(), 201, "{name}");
    }

    let rows = app.lead_rows().await;
    assert_eq!(rows.len(), 4);
    let row = |first: &str| {
        rows.iter()
            .find(|r| r.get("Email").and_then(Value::as_str) == Some(first))
            .unwrap_or_else(|| panic!("row with Email {first}"))
    };

    let zoe = row("zoe.nakamura@fabrikam.co.jp");
    assert_eq!(zoe["LeadId"], id.as_str());
    assert_eq!(zoe["FirstName"], "Zoë");
    assert_eq!(zoe["LastName"], "Nakamura-O'Brien");
    assert_eq!(zoe["Phone"], "+81 3-1234-5678");
    assert_eq!(zoe["Country"], "Japan");
    assert_eq!(zoe["Company"], "Fabrikam 株式会社");
    assert_eq!(zoe["Title"], "VP, Data & AI");
    assert_eq!(zoe["OfferTitle"], "Contoso Analytics");
    assert_eq!(zoe["OfferDisplayName"], "Contoso Analytics");
    assert_eq!(
        zoe["LeadSource"],
        "SPZA-PLT|fabrikamsoftware.contoso-analytics"
    );
    assert_eq!(zoe["LeadSourceChannel"], "SPZA");
    assert_eq!(zoe["LeadSourceAction"], "PLT");
    assert_eq!(
        zoe["LeadSourceOfferId"],
        "fabrikamsoftware.contoso-analytics"
    );
    assert_eq!(zoe["ActionCode"], "PLT");
    assert_eq!(
        zoe["Description"],
        "Please contact me about pricing for 500 seats."
    );
    assert_eq!(zoe["IsTestLead"], false);
    // Rated as it arrived, the reasons as shown.
    assert_eq!(zoe["Rating"], "hot");
    assert_eq!(zoe["RatingScore"], 85);
    assert_eq!(
        zoe["RatingReasons"],
        "asked to be contacted; company email domain; phone given; job title given; wrote a note"
    );
    assert_eq!(zoe["RatingRules"], 1);
    assert_eq!(
        zoe["RawBody"].as_str().unwrap().as_bytes(),
        testdata("appsource-contact-me.json").as_slice(),
        "raw body verbatim"
    );
    let info: Value = serde_json::from_str(zoe["CustomerInfo"].as_str().unwrap()).unwrap();
    assert_eq!(info["Company"], "Fabrikam 株式会社");
    // A real Edm.DateTime, not a string.
    assert_eq!(zoe["ReceivedAt@odata.type"], "Edm.DateTime");
    assert!(zoe["CreatedTime"].as_str().unwrap().starts_with("20"));

    let test_lead = row("MSFT_TEST_636573304831318844@test.com");
    assert_eq!(test_lead["IsTestLead"], true);
    assert_eq!(test_lead["Phone"], "1234567890");

    let seed = row("someone@contoso.com");
    assert_eq!(seed["LeadSource"], "AzureMarketplace");
    assert!(
        seed.get("LeadSourceChannel").is_none(),
        "bare source is not split"
    );

    let sparse = row("buyer@northwind.example");
    assert!(sparse.get("FirstName").is_none(), "blank is absent");
    assert!(sparse.get("Description").is_none(), "a lone space is blank");
    assert_eq!(sparse["LeadSourceAction"], "Create");
    app.stop().await;
}

/// The table is created at start-up in the background; a lead that
/// arrives when it is missing (first, or after someone deleted it) is
/// stored all the same, not refused.
#[tokio::test]
async fn a_lead_finds_its_table_missing_and_is_stored() {
    let app = spawn_app().await;
    app.store().ensure_tables().await.unwrap();
    app.tables
        .table_client(&app.table)
        .delete()
        .await
        .expect("delete the leads table");
    let response = app.post_lead(testdata("appsource-contact-me.json")).await;
    assert_eq!(response.status(), 201);
    assert_eq!(app.lead_rows().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn invalid_json_gets_400_and_stores_nothing() {
    let app = spawn_app().await;
    let response = app.post_lead(testdata("invalid-missing-comma.json")).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("not valid JSON"));

    for bad in ["[]", "{}", "42", "", "null"] {
        let response = app.post_lead(bad).await;
        assert_eq!(response.status(), 400, "{bad:?}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].is_string());
    }
    // No lead, marker or pending record; each refused body is kept, verbatim.
    let rows = app.rows().await;
    assert!(
        rows.iter().all(|r| r["PartitionKey"] == "quarantine"),
        "{rows:?}"
    );
    assert_eq!(rows.len(), 6);
    let kept: Vec<Vec<u8>> = rows
        .iter()
        .map(|r| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(r["Body"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    assert!(kept.contains(&testdata("invalid-missing-comma.json")));
    assert!(kept.contains(&b"[]".to_vec()) && kept.contains(&Vec::new()));
    app.stop().await;
}

#[tokio::test]
async fn oversized_body_gets_413() {
    let app = spawn_app().await;
    let big = format!(r#"{{"Description":"{}"}}"#, "x".repeat(65 * 1024));
    assert_eq!(app.post_lead(big.clone()).await.status(), 413);
    // Not stored as a lead; its first 64 KiB are kept, with its length.
    let rows = app.rows().await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["PartitionKey"], "quarantine");
    assert_eq!(rows[0]["Status"], 413);
    assert_eq!(rows[0]["Length"], big.len().to_string());
    app.stop().await;
}

#[tokio::test]
async fn any_content_type_is_read_as_json() {
    let app = spawn_app().await;
    let response = app
        .post("/api/LeadIngest")
        .header("content-type", "text/plain")
        .body(testdata("seed-example.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn a_duplicate_delivery_is_stored_once_and_acknowledged() {
    let app = spawn_app().await;
    let first = app.post_lead(testdata("seed-example.json")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();

    // Same content, different formatting: still the same lead.
    let reformatted: Value = serde_json::from_slice(&testdata("seed-example.json")).unwrap();
    let second = app.post_lead(reformatted.to_string()).await;
    assert_eq!(second.status(), 200);
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["status"], "duplicate");
    assert_eq!(second["id"], first["id"]);

    assert_eq!(app.lead_rows().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_duplicates_store_one_entity() {
    let app = spawn_app().await;
    let body = testdata("appsource-contact-me.json");
    let responses = futures::future::join_all((0..10).map(|_| app.post_lead(body.clone()))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        9,
        "{statuses:?}"
    );
    assert_eq!(app.lead_rows().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_hundred_concurrent_distinct_leads_store_a_hundred_entities() {
    let app = spawn_app().await;
    let posts = (0..100).map(|i| {
        app.post_lead(format!(
            r#"{{"UserDetails":{{"FirstName":"Lead{i}","Email":"lead{i}@contoso.com"}},"OfferTitle":"Load"}}"#
        ))
    });
    let responses = futures::future::join_all(posts).await;
    assert!(responses.iter().all(|r| r.status() == 201));
    let rows = app.lead_rows().await;
    assert_eq!(rows.len(), 100);
    let mut names: Vec<_> = rows
        .iter()
        .map(|r| r["FirstName"].as_str().unwrap())
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 100);
    app.stop().await;
}

/// A SAS connection string reaches the same storage: the lead's
/// transaction (our own `$batch`, the SAS on its URL) and the SDK's reads
/// alike; a signature Azurite cannot verify stores nothing and says so.
#[tokio::test]
async fn a_sas_connection_string_stores_leads_and_a_bad_signature_stores_none() {
    let azurite = testkit::shared_azurite();
    let app = spawn_app_with(AppOptions {
        storage: azurite.sas_connection_string("rwdlacu", false),
        ..AppOptions::default()
    })
    .await;
    let response = app.post_lead(testdata("appsource-contact-me.json")).await;
    assert_eq!(response.status(), 201);
    let rows = app.rows().await;
    assert_eq!(rows.len(), 3, "marker, lead and digest record: {rows:?}");
    app.stop().await;

    let app = spawn_app_with(AppOptions {
        storage: azurite.sas_connection_string("rwdlacu", true),
        ..AppOptions::default()
    })
    .await;
    let response = app.post_lead(testdata("appsource-contact-me.json")).await;
    assert!(response.status().is_server_error(), "{}", response.status());
    let body: Value = response.json().await.unwrap();
    let reason = body["error"].as_str().unwrap();
    assert!(!reason.contains("sig"), "{reason}");
    assert!(app.rows().await.is_empty(), "nothing stored");
    app.stop().await;
}

#[tokio::test]
async fn storage_outage_gives_503_and_nothing_half_written() {
    let mut azurite = Azurite::start_persistent();
    let app = spawn_app_with(AppOptions {
        storage: azurite.connection_string(),
        ..AppOptions::default()
    })
    .await;
    assert_eq!(
        app.post_lead(testdata("seed-example.json")).await.status(),
        201
    );

    azurite.stop();
    let started = std::time::Instant::now();
    let response = app.post_lead(testdata("appsource-contact-me.json")).await;
    assert_eq!(response.status(), 503);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "bounded retries, answered in {:?}",
        started.elapsed()
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("may not have been stored"));

    azurite.restart();
    let rows = app.rows().await;
    assert_eq!(
        rows.len(),
        3,
        "the first lead, its marker and its pending digest record, nothing else: {rows:?}"
    );
    assert!(rows
        .iter()
        .all(|r| r.get("Email").is_none() || r["Email"] == "someone@contoso.com"));

    // The lead that got 503 can be delivered again and is then stored.
    assert_eq!(
        app.post_lead(testdata("appsource-contact-me.json"))
            .await
            .status(),
        201
    );
    assert_eq!(app.lead_rows().await.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn standalone_key_is_checked() {
    let app = spawn_app_with(AppOptions {
        key: Some("s3cret-key".into()),
        ..AppOptions::default()
    })
    .await;
    let url = "/api/LeadIngest";
    let body = testdata("seed-example.json");

    let none = app.post(url).body(body.clone()).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let none: Value = none.json().await.unwrap();
    assert!(!none.to_string().contains("s3cret"));
    let wrong = app
        .post("/api/LeadIngest?code=wrong")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(app.rows().await.is_empty());

    let by_query = app
        .post("/api/LeadIngest?code=s3cret-key")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), 201);
    let by_header = app
        .post(url)
        .header("x-functions-key", "s3cret-key")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200, "same lead again: duplicate");
    // Readiness never needs the key.
    let ready = app.client.get(&app.address).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn wrong_method_and_unknown_path_get_json_errors() {
    let app = spawn_app().await;
    let get = app
        .client
        .get(format!("{}/api/LeadIngest", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    let body: Value = get.json().await.unwrap();
    assert!(body["error"].is_string());
    let missing = app.post("/api/Nope").send().await.unwrap();
    assert_eq!(missing.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_lead_finish() {
    let mut app = spawn_app().await;
    let body = testdata("seed-example.json");
    let (half, rest) = body.split_at(body.len() / 2);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let request = app
        .post("/api/LeadIngest")
        .header("content-length", body.len().to_string())
        .body(reqwest::Body::wrap_stream(tokio_stream_from(rx)))
        .send();
    let in_flight = tokio::spawn(request);
    tx.send(Ok(half.to_vec())).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    // SIGTERM arrives while the lead is half received.
    app.begin_shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        !app.has_stopped(),
        "the server waits for the in-flight request"
    );

    tx.send(Ok(rest.to_vec())).await.unwrap();
    drop(tx);
    let response = in_flight.await.unwrap().expect("answered");
    assert_eq!(response.status(), 201);
    assert_eq!(app.lead_rows().await.len(), 1);

    // New connections are refused once shutdown has begun.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !app.has_stopped() {
        assert!(std::time::Instant::now() < deadline, "server did not stop");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(reqwest::get(&app.address).await.is_err());
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// `LEAD_RATING=false`: leads are stored without a rating.
#[tokio::test]
async fn with_lead_rating_off_no_lead_is_rated() {
    let app = spawn_app_with(AppOptions {
        extra: vec![("LEAD_RATING".into(), "false".into())],
        ..AppOptions::default()
    })
    .await;
    let response = app.post_lead(testdata("appsource-contact-me.json")).await;
    assert_eq!(response.status(), 201);
    let rows = app.lead_rows().await;
    assert_eq!(rows.len(), 1);
    assert!(
        !rows[0].keys().any(|k| k.starts_with("Rating")),
        "{:?}",
        rows[0].keys().collect::<Vec<_>>()
    );
    app.stop().await;
}
