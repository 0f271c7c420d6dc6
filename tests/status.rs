//! The command line as an operator runs it, the real binary against the
//! app's table: `handler status` on a fresh deployment, after a failing
//! destination and after a digest two intervals late; what the CLI says
//! when storage refuses it; and what a new user ran into with `leads
//! list`, `deliveries list|retry|backfill` and `route`.

use marketplace_leads::store::RunRecord;
use std::process::Command;
use std::time::Duration;
use testkit::fakes::{Answer, Receiver};
use testkit::{report, spawn_app_with, AppOptions, TestApp};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// `handler status` with the app's settings: exit code and stdout.
fn status(app: &TestApp) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_handler"))
        .arg("status")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(app.env.iter().cloned())
        .output()
        .expect("run handler status");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (
        output.status.code().unwrap_or(-1),
        format!("{stdout}{stderr}"),
    )
}

fn contains_all(text: &str, expected: &[&str]) {
    for line in expected {
        assert!(text.contains(line), "{line:?} missing in:\n{text}");
    }
}

#[tokio::test]
async fn a_fresh_deployment_then_a_failing_destination() {
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(503));
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), receiver.url("/hook")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..AppOptions::default()
    })
    .await;
    app.store().ensure_tables().await.unwrap();

    let (code, fresh) = status(&app);
    report!("handler status, fresh:\n{fresh}");
    assert_eq!(code, 0, "{fresh}");
    contains_all(
        &fresh,
        &[
            "Leads today     0",
            "Digest          no run yet (0 0 * * * *; next at",
            "Destinations    webhook",
            "0 pending, 0 dead",
            "Delivery sweep  no sweep has run yet",
            "\nOK\n",
        ],
    );

    let answer = app
        .post_lead(testkit::testdata("appsource-contact-me.json"))
        .await;
    assert_eq!(answer.status(), 201);
    let deliverer = app.deliverer().expect("a destination");
    drop(deliverer.quiesce().await);
    deliverer.sweep(app.clock.now()).await.unwrap();
    let (code, failing) = status(&app);
    report!("handler status, the webhook answering 503:\n{failing}");
    assert_eq!(code, 0, "a failing destination is not an overdue timer");
    contains_all(
        &failing,
        &[
            "Leads today     1",
            "1 pending (oldest enqueued",
            "Delivery sweep  last",
        ],
    );

    // The receiver refuses for good: the delivery is dead.
    receiver.answer(Answer::Status(400));
    app.clock.advance(Duration::from_secs(3600));
    deliverer.sweep(app.clock.now()).await.unwrap();
    let (code, dead) = status(&app);
    report!("handler status, the delivery dead:\n{dead}");
    assert_eq!(code, 0);
    contains_all(
        &dead,
        &["0 pending, 1 dead in the last 7 days (handler deliveries list --status dead)"],
    );
    app.stop().await;
}

#[tokio::test]
async fn a_digest_two_intervals_late_exits_non_zero() {
    let app = spawn_app_with(AppOptions::default()).await;
    app.store().ensure_tables().await.unwrap();
    // The last run the history holds succeeded three and a half hours ago;
    // the hourly timer has not run since.
    let started_at = time::OffsetDateTime::now_utc() - time::Duration::minutes(210);
    app.store()
        .digest_state()
        .record(&RunRecord {
            run_id: uuid::Uuid::new_v4(),
            started_at,
            window_start: None,
            window_end: None,
            lead_count: 2,
            outcome: "sent".into(),
            message_id: Some("<x@example.com>".into()),
            error: None,
            duration: Duration::from_millis(300),
        })
        .await
        .unwrap();
    let (code, late) = status(&app);
    report!("handler status, the digest late:\n{late}");
    assert_eq!(code, 1, "{late}");
    contains_all(
        &late,
        &[
            "sent, 2 lead(s)",
            "OVERDUE: the digest has not succeeded since",
            "handler: overdue:",
        ],
    );

    // The next run puts it right.
    app.run_digest().await.unwrap();
    let (code, caught_up) = status(&app);
    assert_eq!(code, 0, "{caught_up}");
    contains_all(&caught_up, &["no-new-leads, 0 lead(s)", "\nOK\n"]);
    app.stop().await;
}

/// The storage account of the Bicep template takes identities only, and
/// each needs a data role: the CLI run by someone without it says which
/// role to grant, and how.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_without_the_data_role_says_which_role_to_grant() {
    use warp::Filter;
    // The Table service's refusal, as it answers an identity without a
    // data role: 403, the code in x-ms-error-code and the JSON body.
    let refusal = warp::any().map(|| {
        warp::http::Response::builder()
            .status(403)
            .header("x-ms-error-code", "AuthorizationPermissionMismatch")
            .header("content-type", "application/json;odata=minimalmetadata")
            .body(
                r#"{"odata.error":{"code":"AuthorizationPermissionMismatch","message":{"lang":"en-US","value":"This request is not authorized to perform this operation using this permission."}}}"#,
            )
            .unwrap()
    });
    let (addr, _stop) = testkit::serve_locally(refusal, 0).await;
    let output = Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["leads", "list", "--since", "1d"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(
            "LEADS_STORAGE",
            format!(
                "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};\
                 TableEndpoint=http://{addr}/devstoreaccount1;",
                testkit::DEV_KEY
            ),
        )
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    report!("handler leads list, refused:\n{said}");
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(
        said.contains("HTTP 403 AuthorizationPermissionMismatch"),
        "{said}"
    );
    assert!(
        said.contains("\"Storage Table Data Contributor\""),
        "{said}"
    );
    assert!(said.contains("az role assignment create"), "{said}");
}

/// `handler` with `env` (the app's settings, changed), whatever its exit.
fn handler_with(env: &[(String, String)], args: &[&str]) -> (i32, String) {
    let output = testkit::run_cli(env!("CARGO_BIN_EXE_handler"), env.iter().cloned(), args);
    (output.status.code().unwrap_or(-1), testkit::said(&output))
}

/// Before: `leads list` showed no lead id (nothing to paste into
/// `deliveries show`) and `--offer` matched only the exact title; `deliveries
/// list --destination telegram` said "0 deliveries"; `deliveries retry` of a
/// delivered lead said "0 put back" without why, and nothing could send a
/// delivered lead again; `backfill` to a destination the running service
/// does not have succeeded silently.
#[tokio::test]
async fn what_a_new_user_ran_into_on_the_command_line() {
    let receiver = Receiver::start().await;
    let app = spawn_app_with(AppOptions {
        extra: vec![
            ("WEBHOOK_URL".into(), receiver.url("/hook")),
            ("WEBHOOK_SECRET".into(), SECRET.into()),
        ],
        ..AppOptions::default()
    })
    .await;
    let answer = app
        .post_lead(testkit::testdata("appsource-contact-me.json"))
        .await;
    let id = answer.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deliverer = app.deliverer().expect("a destination");
    drop(deliverer.quiesce().await);
    deliverer.sweep(app.clock.now()).await.unwrap();
    assert_eq!(receiver.received().len(), 1);

    // leads list: the id, and --offer as routes match it.
    for offer in [
        "CONTOSO analytics",
        "*analytics",
        "fabrikamsoftware.contoso-analytics",
    ] {
        let (code, listed) = handler_with(&app.env, &["leads", "list", "--offer", offer]);
        assert_eq!(code, 0, "{listed}");
        assert!(listed.contains(&id), "{offer}: {listed}");
    }
    let (_, none) = handler_with(&app.env, &["leads", "list", "--offer", "other*"]);
    assert!(!none.contains(&id) && none.contains("0 leads"), "{none}");

    // A destination kind that does not exist is named.
    let (code, said) = handler_with(
        &app.env,
        &["deliveries", "list", "--destination", "telegram"],
    );
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("telegram is not a destination"), "{said}");

    // Retry of a delivered lead says why nothing was put back; --again
    // sends it again, under a new idempotency key.
    let (code, said) = handler_with(&app.env, &["deliveries", "retry", &id]);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("has no dead delivery: webhook delivered") && said.contains("--again"),
        "{said}"
    );
    let (code, said) = handler_with(&app.env, &["deliveries", "retry", &id, "--again"]);
    assert_eq!(code, 0, "{said}");
    assert!(said.starts_with("1 delivery of"), "{said}");
    deliverer.sweep(app.clock.now()).await.unwrap();
    let received = receiver.received();
    assert_eq!(received.len(), 2, "sent again");
    assert_ne!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id"),
        "a new idempotency key"
    );

    // A backfill to a destination the running service does not have: the
    // CLI here configures Teams, the service (its last sweep says) does not.
    let mut env = app.env.clone();
    env.push(("TEAMS_WEBHOOK_URL".into(), receiver.url("/teams")));
    let (code, said) = handler_with(
        &env,
        &[
            "deliveries",
            "backfill",
            "--destination",
            "teams",
            "--since",
            "1d",
        ],
    );
    assert_eq!(code, 1, "{said}");
    assert!(
        said.contains("the running service does not deliver to teams") && said.contains("webhook"),
        "{said}"
    );
    report!("new-user CLI: ids listed, --offer as routes, telegram named, retry --again, backfill checked");
    app.stop().await;
}

/// Before: `handler route` refused to run without a storage setting,
/// although it reads none — and the README's example failed as written.
#[test]
fn route_needs_no_storage_and_the_readme_example_runs() {
    let env: Vec<(String, String)> = [
        (
            "TEAMS_WEBHOOK_URL__analytics",
            "https://prod-00.westus.logic.azure.com/workflows/example",
        ),
        ("TEAMS_OFFERS__analytics", "contoso.contoso-analytics"),
        ("HUBSPOT_TOKEN", "pat-na1-example"),
        ("HUBSPOT_ACTIONS", "INS"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/contact-me.json");
    let (code, said) = handler_with(&env, &["route", sample]);
    assert_eq!(code, 0, "{said}");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for line in said.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            readme.contains(line.trim_end()),
            "the README shows {line:?}"
        );
    }
}
