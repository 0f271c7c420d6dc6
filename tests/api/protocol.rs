//! The Functions host's side of the custom-handler protocol, sent exactly as
//! the host sends it.

use serde_json::Value;
use testkit::{free_port, spawn_app_with, testdata, AppOptions};

async fn host_app() -> testkit::TestApp {
    // Under the host, the handler binds FUNCTIONS_CUSTOMHANDLER_PORT.
    spawn_app_with(AppOptions {
        host_port: Some(free_port()),
        // The host checks keys; a configured standalone key must not apply.
        key: Some("standalone-only".into()),
        ..AppOptions::default()
    })
    .await
}

/// `POST /LeadDigest` as the host invokes a timer function.
async fn invoke_timer(app: &testkit::TestApp, payload: &'static str) -> reqwest::Response {
    app.post("/LeadDigest")
        .header(
            "X-Azure-Functions-InvocationId",
            uuid::Uuid::new_v4().to_string(),
        )
        .header("X-Azure-Functions-HostVersion", "4.1036.1.23224")
        .header("content-type", "application/json")
        .body(payload)
        .send()
        .await
        .expect("POST /LeadDigest")
}

#[tokio::test]
async fn readiness_probe_and_forwarded_lead() {
    let app = host_app().await;
    assert!(app
        .address
        .ends_with(&app.settings.host_port.unwrap().to_string()));

    let ready = app
        .client
        .get(format!("{}/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // Forwarded unchanged: /api prefix, query string with the host's key.
    let body = testdata("seed-example.json");
    let response = app
        .post("/api/LeadIngest?code=aHostFunctionKey==")
        .header("content-type", "application/json")
        .header("content-length", body.len().to_string())
        .header("x-forwarded-for", "203.0.113.7:51234")
        .header("x-original-url", "/api/LeadIngest?code=aHostFunctionKey==")
        .header("x-arr-log-id", "1b2c3d4e")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(app.lead_rows().await.len(), 1);

    // The host matches function routes case-insensitively and forwards the
    // path as the caller wrote it.
    let response = app
        .post("/api/leadingest?code=aHostFunctionKey==")
        .body(testdata("appsource-contact-me.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    app.stop().await;
}

#[tokio::test]
async fn timer_invocation_with_null_schedule_status() {
    let app = host_app().await;
    let payload = r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{"sys":{"MethodName":"LeadDigest","UtcNow":"2023-09-07T11:40:45.004275Z","RandGuid":"35e6e68c-5d6b-4f0e-9f4b-1b2c3d4e5f60"}}}"#;
    let response = invoke_timer(&app, payload).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["Outputs"], serde_json::json!({}));
    assert_eq!(body["ReturnValue"], Value::Null);
    let logs = body["Logs"].as_array().unwrap();
    assert!(
        logs[0].as_str().unwrap().contains("no-new-leads"),
        "{logs:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn timer_invocation_with_populated_schedule_status_sends_the_digest() {
    let app = host_app().await;
    assert_eq!(
        app.post_lead(testdata("seed-example.json")).await.status(),
        201
    );
    let payload = r#"{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"2023-09-07T10:00:00+00:00","Next":"2023-09-07T12:00:00+00:00","LastUpdated":"2023-09-07T11:00:00.1234567+00:00"},"IsPastDue":true}},"Metadata":{"sys":{"MethodName":"LeadDigest","UtcNow":"2023-09-07T11:40:45.004275Z","RandGuid":"35e6e68c-5d6b-4f0e-9f4b-1b2c3d4e5f60"}}}"#;
    let response = invoke_timer(&app, payload).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let log = body["Logs"][0].as_str().unwrap();
    assert!(log.starts_with("digest sent: 1 lead(s)"), "{log}");
    assert_eq!(
        testkit::shared_maildev()
            .emails_to(&app.recipient)
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failed_digest_answers_500_with_the_reason() {
    let app = spawn_app_with(AppOptions {
        host_port: Some(free_port()),
        smtp_url: None,
        ..AppOptions::default()
    })
    .await;
    let response = invoke_timer(
        &app,
        r#"{"Data":{"timer":{"ScheduleStatus":null,"IsPastDue":false}},"Metadata":{}}"#,
    )
    .await;
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    let log = body["Logs"][0].as_str().unwrap();
    assert!(
        log.contains("SMTP_URL") && log.contains("ACS_ENDPOINT"),
        "{log}"
    );
    // Ingest keeps working without a transport.
    assert_eq!(
        app.post_lead(testdata("seed-example.json")).await.status(),
        201
    );
    app.stop().await;
}

/// `GET /api/Health`, anonymous (Health/function.json), as an availability
/// test calls it: 200 while storage answers, 503 when it does not, and
/// nothing else in either answer — not even standalone with a key set.
#[tokio::test]
async fn health_says_ok_or_unavailable_and_nothing_more() {
    let standalone = spawn_app_with(AppOptions {
        key: Some("s3cret-key".into()),
        ..AppOptions::default()
    })
    .await;
    let health = |address: String| async move {
        let answer = reqwest::get(format!("{address}/api/Health")).await.unwrap();
        let status = answer.status().as_u16();
        (status, answer.json::<Value>().await.unwrap())
    };
    let (status, body) = health(standalone.address.clone()).await;
    assert_eq!((status, body), (200, serde_json::json!({"status": "ok"})));
    standalone.stop().await;

    // Storage that never answers: the port of nothing.
    let unreachable = spawn_app_with(AppOptions {
        storage: format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};\
             TableEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            testkit::DEV_KEY,
            free_port()
        ),
        ..AppOptions::default()
    })
    .await;
    let (status, body) = health(unreachable.address.clone()).await;
    assert_eq!(
        (status, body),
        (503, serde_json::json!({"status": "unavailable"}))
    );
    unreachable.stop().await;
}
