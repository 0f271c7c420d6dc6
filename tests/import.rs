//! `handler leads import`, end to end against real Azurite: a table written
//! the way Partner Center's "Azure Table" destination writes it — by
//! Microsoft's JavaScript Tables client, a second writer — is imported once
//! (1,000 leads; a second run imports none), a lead that also reached our
//! endpoint is stored once, a row whose CustomerInfo is not JSON is
//! reported and kept, `--deliver` reaches a local receiver once per lead;
//! and our JSON Lines export imported elsewhere exports identically.

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use testkit::fakes::{Answer, Receiver};
use testkit::{report, shared_azurite, spawn_app_with, AppOptions, TestApp};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwZ2xKZVdZdjA=";

/// Zoë's lead as Partner Center posts it (the documented shape), and the
/// same lead as its table row holds it.
fn zoe_posted() -> Value {
    json!({
        "UserDetails": {"FirstName": "Zoë", "LastName": "Nakamura", "Email": "zoe@fabrikam.example",
            "Phone": "+81 3-1234-5678", "Country": "Japan", "Company": "Fabrikam", "Title": "CTO"},
        "LeadSource": "SPZA-PLT|fabrikam.analytics", "ActionCode": "PLT",
        "OfferTitle": "Contoso Analytics", "Description": "Please call me",
    })
}

fn zoe_row(created: &str) -> Value {
    let posted = zoe_posted();
    json!({
        "ActionCode": "PLT", "CreatedTime": created,
        "CustomerInfo": posted["UserDetails"].to_string(),
        "Description": "Please call me", "LeadSource": "SPZA-PLT|fabrikam.analytics",
        "OfferDisplayName": "Contoso Analytics",
    })
}

/// Writes `count` leads and `extra` rows into `table` with the JS client.
fn write_partner_center_table(table: &str, count: usize, extra: &[Value]) {
    let dir = tempfile::tempdir().unwrap();
    let extra_file = dir.path().join("extra.json");
    std::fs::write(&extra_file, Value::Array(extra.to_vec()).to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/partner-center-table.js");
    let output = Command::new("node")
        .arg(script)
        .arg(shared_azurite().connection_string())
        .arg(table)
        .arg(count.to_string())
        .arg(&extra_file)
        .output()
        .expect("node runs (Node.js is a prerequisite; scripts/setup-dev installs the client)");
    assert!(
        output.status.success(),
        "the JS writer failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `handler <args>` with the app's settings; its output, which must succeed.
fn handler(app: &TestApp, args: &[&str]) -> Output {
    let output = handler_any(app, args);
    assert!(
        output.status.success(),
        "handler {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn source_table() -> String {
    format!(
        "PartnerCenter{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn app_with(extra: Vec<(String, String)>) -> TestApp {
    spawn_app_with(AppOptions {
        extra,
        ..AppOptions::default()
    })
    .await
}

#[tokio::test]
async fn a_partner_center_table_is_imported_once() {
    let app = app_with(Vec::new()).await;
    // Zoë reached our endpoint too.
    let response = app.post_lead(zoe_posted().to_string()).await;
    assert_eq!(response.status(), 201);
    let zoe_id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let table = source_table();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let malformed = json!({
        "ActionCode": "PLT", "CreatedTime": now,
        "CustomerInfo": "{FirstName: Mallory", "LeadSource": "SPZA-PLT|fabrikam.analytics",
    });
    write_partner_center_table(&table, 1_000, &[zoe_row(&now), malformed]);
    let connection = shared_azurite().connection_string();
    let args = [
        "leads",
        "import",
        "--from-table",
        &table,
        "--connection",
        &connection,
    ];

    let started = Instant::now();
    let first = stderr(&handler(&app, &args));
    let took = started.elapsed();
    assert!(
        first.contains(&format!(
            "read 1,002 rows from table {table}: 1000 imported, 1 already present, 1 unreadable"
        )),
        "{first}"
    );
    let leads = app.lead_rows().await;
    assert_eq!(leads.len(), 1_001, "1,000 imported and Zoë once");
    assert_eq!(
        leads
            .iter()
            .filter(|r| r["FirstName"] == "Zoë")
            .map(|r| r["LeadId"].as_str().unwrap())
            .collect::<Vec<_>>(),
        [zoe_id.as_str()],
        "Zoë stored once, under the id she was posted with"
    );
    // Imported leads are read back as the leads they are.
    let imported = leads.iter().find(|r| r["FirstName"] == "Lead7").unwrap();
    assert_eq!(imported["Email"], "lead7@contoso.example");
    assert_eq!(imported["OfferDisplayName"], "Contoso Analytics");
    assert_eq!(imported["Origin"], "PartnerCenterTable");
    // Not in a digest: only Zoë's own record waits for one.
    let digest_records = app
        .rows()
        .await
        .iter()
        .filter(|r| r["RowKey"].as_str().unwrap().starts_with("P.digest."))
        .count();
    assert_eq!(digest_records, 1);
    // The unreadable row is kept, with the reason.
    let rejected =
        String::from_utf8(handler(&app, &["leads", "rejected", "--since", "1h"]).stdout).unwrap();
    assert!(
        rejected.contains("import: CustomerInfo is not a JSON object"),
        "{rejected}"
    );

    let second = stderr(&handler(&app, &args));
    assert!(
        second.contains("0 imported, 1001 already present, 1 unreadable"),
        "{second}"
    );
    assert_eq!(app.lead_rows().await.len(), 1_001);
    // And the exported leads read back whole.
    let export = String::from_utf8(
        handler(
            &app,
            &["leads", "export", "--format", "csv", "--since", "2d"],
        )
        .stdout,
    )
    .unwrap();
    assert_eq!(export.lines().count(), 1 + 1_001, "header and every lead");
    assert!(export.contains("lead999@contoso.example"));
    report!(
        "import of a Partner Center table: 1,000 leads in {took:.1?}; {}; second run: {}",
        first.trim(),
        second.trim()
    );
    app.stop().await;
}

#[tokio::test]
async fn deliver_sends_imported_leads_once() {
    let receiver = Receiver::start().await;
    receiver.answer(Answer::Status(204));
    let app = app_with(vec![
        ("WEBHOOK_URL".into(), receiver.url("/hooks/history")),
        ("WEBHOOK_SECRET".into(), SECRET.into()),
        ("WEBHOOK_ACTIONS".into(), "PLT".into()),
    ])
    .await;
    let table = source_table();
    write_partner_center_table(&table, 30, &[]);
    let connection = shared_azurite().connection_string();
    let args = [
        "leads",
        "import",
        "--from-table",
        &table,
        "--connection",
        &connection,
        "--deliver",
        "webhook",
    ];
    let first = handler(&app, &args);
    // Every third lead is an install, which the webhook's route leaves out.
    let expected = (0..30).filter(|i| i % 3 != 0).count();
    assert!(
        String::from_utf8_lossy(&first.stdout)
            .contains(&format!("{expected} deliveries queued for webhook")),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let deliverer = app.deliverer().unwrap();
    let started = Instant::now();
    while receiver.received().len() < expected {
        assert!(started.elapsed() < Duration::from_secs(60), "not delivered");
        let _ = deliverer.sweep(app.clock.now()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = handler(&app, &args);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("0 deliveries queued"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    let _ = deliverer.sweep(app.clock.now()).await;
    let ids: std::collections::BTreeSet<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert_eq!(receiver.received().len(), expected, "each lead once");
    assert_eq!(ids.len(), expected);
    report!("import --deliver webhook: {expected} of 30 leads (PLT only) delivered once; a second run queued none");
    app.stop().await;
}

#[tokio::test]
async fn a_jsonl_export_imported_elsewhere_exports_identically() {
    let from = app_with(Vec::new()).await;
    for i in 0..25 {
        let mut lead = zoe_posted();
        lead["UserDetails"]["FirstName"] = json!(format!("Zoë{i}"));
        lead["Description"] = json!(format!("Line one\r\nline \"two\" <b>{i}</b>"));
        assert_eq!(from.post_lead(lead.to_string()).await.status(), 201);
    }
    // And imported ones, whose raw body is Partner Center's row.
    let table = source_table();
    write_partner_center_table(&table, 5, &[]);
    let connection = shared_azurite().connection_string();
    handler(
        &from,
        &[
            "leads",
            "import",
            "--from-table",
            &table,
            "--connection",
            &connection,
        ],
    );
    let export = |app: &TestApp| {
        String::from_utf8(
            handler(
                app,
                &[
                    "leads",
                    "export",
                    "--format",
                    "jsonl",
                    "--since",
                    "2d",
                    "--include-tests",
                ],
            )
            .stdout,
        )
        .unwrap()
    };
    let exported = export(&from);
    assert_eq!(exported.lines().count(), 30);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leads.jsonl");
    std::fs::write(&file, &exported).unwrap();

    let to = app_with(Vec::new()).await;
    let imported = stderr(&handler(
        &to,
        &["leads", "import", "--jsonl", file.to_str().unwrap()],
    ));
    assert!(
        imported.contains("30 imported, 0 already present, 0 unreadable"),
        "{imported}"
    );
    // Identical but for Timestamp, the time the service wrote the row.
    let leads = |jsonl: &str| {
        jsonl
            .lines()
            .map(|line| {
                let mut row: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
                assert!(row.remove("Timestamp").is_some());
                row
            })
            .collect::<Vec<_>>()
    };
    let round_trip = export(&to);
    assert_eq!(leads(&round_trip), leads(&exported), "identical leads");
    report!("JSON Lines round trip: 30 leads (5 from a Partner Center table) export → import → export identical");
    from.stop().await;
    to.stop().await;
}

/// `handler <args>` with the app's settings, whatever its exit code.
fn handler_any(app: &TestApp, args: &[&str]) -> Output {
    app.run_cli(env!("CARGO_BIN_EXE_handler"), args)
}

/// Before: `--from-table MarketplaceLeads` without `--account` read the
/// service's own table (Partner Center's default name is also ours): every
/// marker and record became a refused body, re-runs multiplied them. Now
/// our own table, or any table this handler wrote, is refused, saying why.
#[tokio::test]
async fn our_own_table_is_never_imported() {
    let app = app_with(Vec::new()).await;
    assert_eq!(app.post_lead(zoe_posted().to_string()).await.status(), 201);
    let before = app.rows().await.len();
    let refused = handler_any(&app, &["leads", "import", "--from-table", &app.table]);
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(
        said.contains("this service's own table") && said.contains("--account"),
        "{said}"
    );
    // The same table reached as "another" account (a connection string):
    // its rows are ours, so it is refused too.
    let refused = handler_any(
        &app,
        &[
            "leads",
            "import",
            "--from-table",
            &app.table,
            "--connection",
            &shared_azurite()
                .connection_string()
                .replace("127.0.0.1", "localhost"),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("written by this handler"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(app.rows().await.len(), before, "nothing was written");
    report!("importing our own table: refused, naming --account; nothing written");
    app.stop().await;
}

/// Before: `.NET`'s `DateTime.MaxValue` as CreatedTime made `--deliver`
/// panic (exit 101, on every re-run); an unreadable row was kept again by
/// every run. Now such a time makes the row unreadable, kept once.
#[tokio::test]
async fn far_future_rows_are_unreadable_and_unreadable_rows_kept_once() {
    let receiver = Receiver::start().await;
    let app = app_with(vec![
        ("WEBHOOK_URL".into(), receiver.url("/hook")),
        ("WEBHOOK_SECRET".into(), SECRET.into()),
    ])
    .await;
    let table = source_table();
    let future = zoe_row("9999-12-31T23:59:59Z");
    let broken = json!({"ActionCode": "PLT", "CustomerInfo": "{not json", "CreatedTime": "2026-11-01T10:00:00Z"});
    write_partner_center_table(&table, 3, &[future, broken]);
    let connection = shared_azurite().connection_string();
    let args = [
        "leads",
        "import",
        "--from-table",
        &table,
        "--connection",
        &connection,
        "--deliver",
        "webhook",
    ];
    for run in 1..=2 {
        let output = handler_any(&app, &args);
        let said = stderr(&output);
        assert!(output.status.success(), "run {run}: {said}");
        assert!(said.contains("2 unreadable"), "run {run}: {said}");
    }
    let rejected = handler(&app, &["leads", "rejected", "--since", "1h"]);
    let listed = String::from_utf8_lossy(&rejected.stdout).into_owned();
    assert_eq!(
        listed.matches("import:").count(),
        2,
        "each kept once:\n{listed}"
    );
    assert!(
        listed.contains("created at 9999-12-31T23:59:59Z"),
        "{listed}"
    );
    report!("a row created at 9999-12-31 and a broken one, imported twice: 2 kept, no panic");
    app.stop().await;
}

/// Before: a line that is not UTF-8 stopped the import without naming it,
/// and `--jsonl` given a CSV file exited 0 with every line refused.
#[tokio::test]
async fn jsonl_lines_are_named_and_a_wrong_file_is_an_error() {
    let app = app_with(Vec::new()).await;
    let dir = tempfile::tempdir().unwrap();
    let good = json!({
        "RawBody": zoe_posted().to_string(),
        "ReceivedAt": "2026-11-22T10:15:00Z",
    });
    let jsonl = dir.path().join("leads.jsonl");
    let mut bytes = format!("{good}\n").into_bytes();
    bytes.extend_from_slice(b"{\"RawBody\": \"\xff\xfe\"}\n");
    std::fs::write(&jsonl, bytes).unwrap();
    let output = handler(
        &app,
        &["leads", "import", "--jsonl", jsonl.to_str().unwrap()],
    );
    let said = stderr(&output);
    assert!(
        said.contains("1 imported") && said.contains("1 unreadable"),
        "{said}"
    );
    let rejected = handler(&app, &["leads", "rejected", "--since", "1h"]);
    assert!(
        String::from_utf8_lossy(&rejected.stdout).contains("line 2 is not UTF-8"),
        "the line is named"
    );
    let csv = dir.path().join("leads.csv");
    std::fs::write(&csv, "FirstName,LastName\nZoë,Nakamura\n").unwrap();
    let output = handler_any(&app, &["leads", "import", "--jsonl", csv.to_str().unwrap()]);
    assert!(!output.status.success(), "a CSV is no JSON Lines file");
    assert!(
        stderr(&output).contains("nothing in"),
        "{}",
        stderr(&output)
    );
    app.stop().await;
}

/// Before: a Partner Center row larger than three RawBody columns was cut
/// silently: "imported", then skipped by `--deliver` and refused after a
/// JSON Lines round trip. Now it is kept whole.
#[tokio::test]
async fn a_large_partner_center_row_is_kept_whole() {
    let receiver = Receiver::start().await;
    let app = app_with(vec![
        ("WEBHOOK_URL".into(), receiver.url("/hook")),
        ("WEBHOOK_SECRET".into(), SECRET.into()),
    ])
    .await;
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let info = json!({
        "FirstName": "Big", "LastName": "Row", "Email": "big@contoso.example",
        "Company": "Contoso", "Title": "\"".repeat(15_000),
    });
    let large = json!({
        "ActionCode": "PLT", "CreatedTime": now,
        "CustomerInfo": info.to_string(),
        "Description": "\"".repeat(31_000),
        "LeadSource": "SPZA-PLT|fabrikam.analytics",
        "OfferDisplayName": "Ö".repeat(1_500),
    });
    assert!(
        large.to_string().encode_utf16().count() > 96_000,
        "more than three columns"
    );
    let table = source_table();
    write_partner_center_table(&table, 0, &[large]);
    let connection = shared_azurite().connection_string();
    let output = handler(
        &app,
        &[
            "leads",
            "import",
            "--from-table",
            &table,
            "--connection",
            &connection,
            "--deliver",
            "webhook",
        ],
    );
    let said = stderr(&output);
    assert!(
        said.contains("1 imported") && said.contains("0 unreadable"),
        "{said}"
    );
    let queued = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(queued.starts_with("1 delivery queued"), "{queued}");
    // A JSON Lines round trip reads it back.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.jsonl");
    handler(
        &app,
        &[
            "leads",
            "export",
            "--format",
            "jsonl",
            "--since",
            "1d",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    let other = app_with(Vec::new()).await;
    let output = handler(
        &other,
        &["leads", "import", "--jsonl", file.to_str().unwrap()],
    );
    assert!(
        stderr(&output).contains("1 imported"),
        "{}",
        stderr(&output)
    );
    report!(
        "a {} KB Partner Center row: imported whole, queued, and through JSON Lines",
        large_kb(&file)
    );
    app.stop().await;
    other.stop().await;
}

fn large_kb(file: &Path) -> u64 {
    std::fs::metadata(file).map(|m| m.len() / 1024).unwrap_or(0)
}
