//! The ACS email transport against the harness's fake of the ACS email
//! REST API (`testkit::fakes::acs`), which checks every request the way the
//! service documents it with its own code and records why it refused one,
//! so every test can assert both the transport's result and what the fake
//! saw.

use marketplace_leads::domain::{EmailAddress, Recipients, Secret};
use marketplace_leads::email::acs::{AcsAuth, AcsMailer};
use marketplace_leads::email::{Email, Receipt, SendError};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::fakes::acs::{
    error_reply, failed, status, throttled, FakeAcs, Reply, ServerAuth, ACS_SCOPE, API_VERSION,
};
use testkit::fakes::FakeCredential;
use url::Url;
use uuid::Uuid;
use warp::http::Method;

/// The key the fake service knows (base64, as in a connection string).
const SERVER_KEY: &str = "c2VydmVyLXNpZGUtYWNzLWtleS1mb3ItdGVzdHMtb25seQ==";
/// A different, equally valid key.
const WRONG_KEY: &str = "d3Jvbmcta2V5LWNvbmZpZ3VyZWQtaW4tdGhlLWNsaWVudA==";
/// No test may take longer than this to get an answer from `send`.
const SEND_GUARD: Duration = Duration::from_secs(30);

fn email() -> Email {
    Email {
        from: EmailAddress::parse("DoNotReply@contoso.azurecomm.net").unwrap(),
        to: Recipients::parse("leads@contoso.com; sales@contoso.com").unwrap(),
        subject: "2 new marketplace leads".to_owned(),
        text: "Zoë \"Z\" O'Brien — Contoso & Co\n".to_owned(),
        html: "<p>Zoë &quot;Z&quot; O&#39;Brien — Contoso &amp; Co</p>".to_owned(),
        idempotency_key: Uuid::new_v4(),
    }
}

fn key_mailer(fake: &FakeAcs, key: &str) -> AcsMailer {
    AcsMailer::new(fake.endpoint(), AcsAuth::AccessKey(Secret::new(key))).unwrap()
}

fn identity_mailer(fake: &FakeAcs, credential: &Arc<FakeCredential>) -> AcsMailer {
    AcsMailer::new(fake.endpoint(), AcsAuth::Token(credential.clone())).unwrap()
}

async fn send(mailer: &AcsMailer, email: &Email) -> Result<Receipt, SendError> {
    tokio::time::timeout(SEND_GUARD, mailer.send(email))
        .await
        .expect("send should finish in bounded time")
}

#[tokio::test]
async fn access_key_send_polls_until_succeeded() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(
        &email,
        vec![fake.accepted(&email, true)],
        vec![status(&email, "Running"), status(&email, "Succeeded")],
    );

    let receipt = send(&key_mailer(&fake, SERVER_KEY), &email).await.unwrap();

    let key = email.idempotency_key.hyphenated().to_string();
    assert_eq!(
        receipt,
        Receipt {
            message_id: key.clone()
        }
    );
    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.unanswered(), (0, 0));
    let requests = fake.requests();
    let summary: Vec<(String, String, String)> = requests
        .iter()
        .map(|r| (r.method.to_string(), r.path.clone(), r.query.clone()))
        .collect();
    let version = format!("api-version={API_VERSION}");
    let poll = format!("/emails/operations/{key}");
    assert_eq!(
        summary,
        [
            (
                "POST".to_owned(),
                "/emails:send".to_owned(),
                version.clone()
            ),
            ("GET".to_owned(), poll.clone(), version.clone()),
            ("GET".to_owned(), poll, version),
        ]
    );

    let post = &requests[0];
    let body: Value = serde_json::from_slice(&post.body).unwrap();
    assert_eq!(
        body,
        json!({
            "senderAddress": "DoNotReply@contoso.azurecomm.net",
            "recipients": {"to": [{"address": "leads@contoso.com"}, {"address": "sales@contoso.com"}]},
            "content": {
                "subject": "2 new marketplace leads",
                "plainText": "Zoë \"Z\" O'Brien — Contoso & Co\n",
                "html": "<p>Zoë &quot;Z&quot; O&#39;Brien — Contoso &amp; Co</p>"
            }
        })
    );
    assert_eq!(post.header("operation-id"), Some(key.as_str()));
    assert_eq!(post.header("host"), Some(fake.addr().to_string().as_str()));
    let request_ids: Vec<_> = requests
        .iter()
        .map(|r| r.header("x-ms-client-request-id").unwrap().to_owned())
        .collect();
    for id in &request_ids {
        Uuid::parse_str(id).expect("x-ms-client-request-id is a UUID");
    }
    assert_ne!(
        request_ids[0], request_ids[1],
        "a new request id per request"
    );
    for poll in &requests[1..] {
        assert!(poll.body.is_empty());
        assert_eq!(
            poll.header("x-ms-content-sha256"),
            Some("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="),
            "a GET signs the hash of the empty body"
        );
    }
}

#[tokio::test]
async fn throttled_send_waits_for_retry_after() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(
        &email,
        vec![throttled("1"), fake.accepted(&email, true)],
        vec![status(&email, "Succeeded")],
    );

    let receipt = send(&key_mailer(&fake, SERVER_KEY), &email).await.unwrap();

    assert_eq!(receipt.message_id, email.idempotency_key.to_string());
    assert_eq!(fake.problems(), Vec::<String>::new());
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].method, Method::POST);
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    // The retry is the same operation, freshly signed.
    assert_eq!(
        requests[0].header("operation-id"),
        requests[1].header("operation-id")
    );
    assert_ne!(
        requests[0].header("x-ms-client-request-id"),
        requests[1].header("x-ms-client-request-id")
    );
}

#[tokio::test]
async fn wrong_key_is_rejected_without_leaking_it() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(&email, vec![fake.accepted(&email, true)], Vec::new());

    let err = send(&key_mailer(&fake, WRONG_KEY), &email)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Rejected(_)), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("Denied by the resource provider"), "{text}");
    for secret in [WRONG_KEY, SERVER_KEY, WRONG_KEY.trim_end_matches('=')] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(
        fake.problems(),
        ["POST /emails:send: signature mismatch".to_owned()]
    );
    assert_eq!(fake.requests().len(), 1, "a 401 is not retried");
}

#[tokio::test]
async fn failed_operation_is_rejected() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    // No Operation-Location: the client must poll the documented URL.
    fake.script(
        &email,
        vec![fake.accepted(&email, false)],
        vec![
            status(&email, "NotStarted"),
            failed(
                &email,
                "EmailDroppedAllRecipientsSuppressed",
                "All recipients suppressed.",
            ),
        ],
    );

    let err = send(&key_mailer(&fake, SERVER_KEY), &email)
        .await
        .unwrap_err();

    let SendError::Rejected(reason) = &err else {
        panic!("expected Rejected, got {err:?}");
    };
    assert!(reason.contains("All recipients suppressed."), "{reason}");
    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.unanswered(), (0, 0));
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[2].path,
        format!("/emails/operations/{}", email.idempotency_key)
    );
}

#[tokio::test]
async fn an_identity_token_for_acs_is_sent_as_bearer() {
    let credential = Arc::new(FakeCredential::new());
    let fake = FakeAcs::start(ServerAuth::Bearer(credential.current_token())).await;
    let mailer = identity_mailer(&fake, &credential);

    for _ in 0..2 {
        let email = email();
        fake.script(
            &email,
            vec![fake.accepted(&email, true)],
            vec![status(&email, "Succeeded")],
        );
        let receipt = send(&mailer, &email).await.unwrap();
        assert_eq!(receipt.message_id, email.idempotency_key.to_string());
    }

    assert_eq!(fake.problems(), Vec::<String>::new());
    let scopes = credential.scopes();
    assert!(
        !scopes.is_empty() && scopes.iter().all(|s| s == ACS_SCOPE),
        "{scopes:?}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 4);
    let expected = format!("Bearer {}", credential.current_token());
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(expected.as_str()));
    }
    let printed = format!("{mailer:?}");
    assert!(!printed.contains(&credential.current_token()), "{printed}");
}

#[tokio::test]
async fn a_refused_identity_token_is_not_reused() {
    let credential = Arc::new(FakeCredential::new());
    let fake = FakeAcs::start(ServerAuth::Bearer(credential.current_token())).await;
    let mailer = identity_mailer(&fake, &credential);
    let first = email();
    // The fake accepts the token; the service then says it was revoked.
    fake.script(
        &first,
        vec![error_reply(
            401,
            "InvalidAuthenticationToken",
            "The token is expired.",
        )],
        Vec::new(),
    );
    let revoked = credential.current_token();
    let err = send(&mailer, &first).await.unwrap_err();
    assert!(matches!(err, SendError::Rejected(_)), "{err:?}");
    assert!(err.to_string().contains("The token is expired."), "{err}");
    assert!(!err.to_string().contains(&revoked), "{err}");
    assert_eq!(credential.clears(), 1, "the credential's cache is cleared");

    // The next send asks the credential again and gets a fresh token.
    fake.set_auth(ServerAuth::Bearer(credential.current_token()));
    let second = email();
    fake.script(
        &second,
        vec![fake.accepted(&second, true)],
        vec![status(&second, "Succeeded")],
    );
    send(&mailer, &second).await.unwrap();
    let last = fake.requests().pop().unwrap();
    assert_ne!(
        last.header("authorization"),
        Some(format!("Bearer {revoked}").as_str())
    );
    assert_eq!(fake.problems(), Vec::<String>::new());
}

#[tokio::test]
async fn unreachable_service_is_unavailable_promptly() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
    let mailer = AcsMailer::new(endpoint, AcsAuth::AccessKey(Secret::new(SERVER_KEY))).unwrap();

    let started = Instant::now();
    let err = send(&mailer, &email()).await.unwrap_err();

    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(!err.to_string().contains(SERVER_KEY));
}

#[tokio::test]
async fn persistent_throttling_gives_up_after_bounded_tries() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(
        &email,
        (0..10).map(|_| throttled("0")).collect(),
        Vec::new(),
    );

    let err = send(&key_mailer(&fake, SERVER_KEY), &email)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert_eq!(fake.problems(), Vec::<String>::new());
    assert_eq!(fake.requests().len(), 5);
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_is_not_waited_for() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let email = email();
    fake.script(&email, vec![throttled("3600")], Vec::new());

    let started = Instant::now();
    let err = send(&key_mailer(&fake, SERVER_KEY), &email)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn poll_survives_a_503_and_a_server_error_on_send_is_unavailable() {
    let fake = FakeAcs::start(ServerAuth::Key(SERVER_KEY)).await;
    let mailer = key_mailer(&fake, SERVER_KEY);
    let first = email();
    let unavailable = Reply {
        headers: vec![("retry-after", "0".to_owned())],
        ..error_reply(503, "ServiceUnavailable", "Try again.")
    };
    fake.script(
        &first,
        vec![fake.accepted(&first, true)],
        vec![unavailable, status(&first, "Succeeded")],
    );
    send(&mailer, &first).await.unwrap();
    assert_eq!(fake.requests().len(), 3);

    let second = email();
    fake.script(
        &second,
        vec![error_reply(500, "InternalServerError", "Boom.")],
        Vec::new(),
    );
    let err = send(&mailer, &second).await.unwrap_err();
    assert!(matches!(err, SendError::Unavailable(_)), "{err:?}");
    assert_eq!(fake.requests().len(), 4, "a 500 is not retried at once");
    assert_eq!(fake.problems(), Vec::<String>::new());
}
