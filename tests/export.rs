//! `handler leads list` and `handler leads export`: the real binary against
//! a real Azurite. Leads go in through the store (at chosen receive times)
//! or the real ingest endpoint; what comes out is read back with Python's
//! `csv` module, the reference CSV reader most import tools agree with.

use futures::StreamExt;
use marketplace_leads::domain::Lead;
use marketplace_leads::retry::{Decision, RetryPolicy};
use marketplace_leads::store::Consumer;
const DIGEST: Consumer = Consumer::Digest;
use marketplace_leads::store::{LeadStore, SaveOutcome, PAGE_ROWS as EXPORT_PAGE_ROWS};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration as StdDuration, Instant};
use testkit::{shared_azurite, spawn_app_with, AppOptions, Azurite, TestApp};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn options(storage: String) -> AppOptions {
    AppOptions {
        storage,
        smtp_url: None,
        key: None,
        host_port: None,
        extra: Vec::new(),
    }
}

async fn spawn() -> TestApp {
    spawn_app_with(options(shared_azurite().connection_string())).await
}

/// The binary, configured like the service: only the storage settings.
fn handler(storage: &str, table: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LEADS_STORAGE", storage)
        .env("LEADS_TABLE", table);
    command
}

/// Runs `handler leads <args>` to completion off the async runtime.
async fn leads(storage: &str, table: &str, args: &[&str]) -> Output {
    let mut command = handler(storage, table);
    command.arg("leads").args(args).stdin(Stdio::null());
    tokio::task::spawn_blocking(move || command.output().expect("run handler"))
        .await
        .expect("join")
}

fn succeeded(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "handler failed: {stderr}");
    stderr
}

fn lead(body: &Value) -> Lead {
    Lead::parse(body.to_string().as_bytes()).expect("a valid lead")
}

fn case_lead(case: &str, offer: &str) -> Value {
    json!({
        "UserDetails": {"FirstName": "Case", "LastName": case, "Email": format!("{case}@example.com"),
                        "Company": "Contoso", "Country": "US"},
        "OfferTitle": offer, "ActionCode": "INS", "LeadSource": "AzureMarketplace",
        "Description": case,
    })
}

fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8(stdout.to_vec())
        .expect("UTF-8")
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

fn descriptions(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|row| row["Description"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_window_returns_exactly_the_leads_inside_it() {
    let app = spawn().await;
    let storage = shared_azurite().connection_string();
    let store = app.store();
    store.ensure_tables().await.unwrap();

    // Spans midnight at a month's end (leap day): two partitions.
    let since = datetime!(2020-02-29 23:00:00 UTC);
    let until = datetime!(2020-03-01 01:00:00 UTC);
    let us = Duration::microseconds(1);
    let cases = [
        ("day-before", since - Duration::days(1), false),
        ("just-before-since", since - us, false),
        ("at-since", since, true),
        ("after-since", since + us, true),
        (
            "last-of-february",
            datetime!(2020-02-29 23:59:59.999999 UTC),
            true,
        ),
        ("midnight", datetime!(2020-03-01 00:00:00 UTC), true),
        ("just-before-until", until - us, true),
        ("at-until", until, false),
        ("after-until", until + us, false),
        ("day-after", until + Duration::days(1), false),
    ];
    for (case, at, _) in cases {
        let saved = store
            .save(&lead(&case_lead(case, "Contoso Analytics")), at, &[DIGEST])
            .await;
        assert!(
            matches!(saved, Ok(SaveOutcome::Created(_))),
            "{case}: {saved:?}"
        );
    }
    let other_offer = lead(&case_lead("other-offer", "O'Brien Analytics"));
    store
        .save(&other_offer, since + Duration::minutes(30), &[DIGEST])
        .await
        .unwrap();
    let test_lead = lead(&json!({
        "UserDetails": {"FirstName": "MSFT_TEST_636573304831318844",
                        "Email": "MSFT_TEST_636573304831318844@test.com"},
        "Description": "test-lead", "OfferTitle": "Contoso Analytics",
    }));
    store
        .save(&test_lead, since + Duration::minutes(40), &[DIGEST])
        .await
        .unwrap();

    let mut inside: Vec<String> = cases
        .iter()
        .filter(|(_, _, inside)| *inside)
        .map(|(case, _, _)| case.to_string())
        .collect();
    inside.insert(2, "other-offer".into()); // 23:30, between after-since and last-of-february
    let window = [
        "--since",
        "2020-02-29T23:00:00Z",
        "--until",
        "2020-03-01T01:00:00Z",
    ];

    // JSON Lines: exactly the leads inside, oldest first.
    let args = [&["export", "--format", "jsonl"][..], &window].concat();
    let output = leads(&storage, &app.table, &args).await;
    let stderr = succeeded(&output);
    assert_eq!(descriptions(&json_lines(&output.stdout)), inside);
    assert!(
        stderr.contains("exported 6 leads to stdout (1 test lead left out)"),
        "{stderr}"
    );

    // Test leads on request, in their place.
    let args = [
        &["export", "--format", "jsonl", "--include-tests"][..],
        &window,
    ]
    .concat();
    let output = leads(&storage, &app.table, &args).await;
    succeeded(&output);
    let mut with_test = inside.clone();
    with_test.insert(3, "test-lead".into()); // 23:40
    assert_eq!(descriptions(&json_lines(&output.stdout)), with_test);

    // One offer, its title quoted in the OData filter.
    let args = [
        &[
            "export",
            "--format",
            "jsonl",
            "--offer",
            "O'Brien Analytics",
        ][..],
        &window,
    ]
    .concat();
    let output = leads(&storage, &app.table, &args).await;
    succeeded(&output);
    assert_eq!(descriptions(&json_lines(&output.stdout)), ["other-offer"]);

    // The same window as a table: newest last, then the count.
    let args = [&["list"][..], &window].concat();
    let output = leads(&storage, &app.table, &args).await;
    succeeded(&output);
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("RECEIVED (UTC)"), "{text}");
    assert_eq!(
        lines.last(),
        Some(&"6 leads (1 test lead hidden)"),
        "{text}"
    );
    // Columns are aligned under their headings.
    let name_at = lines[0].find("NAME").expect("a NAME column");
    let company_at = lines[0].find("COMPANY").expect("a COMPANY column");
    let names: Vec<&str> = lines[1..lines.len() - 1]
        .iter()
        .map(|line| line.get(name_at..company_at).unwrap_or_default().trim())
        .collect();
    let expected: Vec<String> = inside.iter().map(|case| format!("Case {case}")).collect();
    assert_eq!(names, expected, "{text}");
    assert!(lines[1].starts_with("2020-02-29 23:00  "), "{text}");
    assert!(lines[6].starts_with("2020-03-01 00:59  "), "{text}");

    let args = [&["list", "--include-tests"][..], &window].concat();
    let output = leads(&storage, &app.table, &args).await;
    succeeded(&output);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("MSFT_TEST_"), "{text}");
    assert!(text.ends_with("7 leads (1 test lead included)\n"), "{text}");

    // Relative forms count back from now; the leads above are years old.
    let recent = lead(&case_lead("two-hours-ago", "Contoso Analytics"));
    let now = OffsetDateTime::now_utc();
    store
        .save(&recent, now - Duration::hours(2), &[DIGEST])
        .await
        .unwrap();
    let older = lead(&case_lead("thirty-hours-ago", "Contoso Analytics"));
    store
        .save(&older, now - Duration::hours(30), &[DIGEST])
        .await
        .unwrap();
    let output = leads(&storage, &app.table, &["list", "--since", "24h"]).await;
    succeeded(&output);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Case two-hours-ago"), "{text}");
    assert!(text.ends_with("1 lead (0 test leads hidden)\n"), "{text}");
    let output = leads(&storage, &app.table, &["list"]).await; // default: 7d
    assert!(String::from_utf8(output.stdout)
        .unwrap()
        .ends_with("2 leads (0 test leads hidden)\n"));
    let args = ["list", "--since", "3d", "--until", "1d"];
    let output = leads(&storage, &app.table, &args).await;
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("Case thirty-hours-ago"), "{text}");
    assert!(text.ends_with("1 lead (0 test leads hidden)\n"), "{text}");

    let output = leads(&storage, &app.table, &["list", "--since", "yesterday"]).await;
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("24h"));
    let output = leads(
        &storage,
        &app.table,
        &["list", "--since", "1h", "--until", "2h"],
    )
    .await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("must be before --until"));

    app.stop().await;
}

/// Parses a CSV file with Python's `csv` module: a list of rows.
fn python_csv(path: &Path) -> Vec<Vec<String>> {
    let output = Command::new("python3")
        .arg("-c")
        .arg(
            "import csv, json, sys\n\
             with open(sys.argv[1], encoding='utf-8-sig', newline='') as f:\n\
             \x20   json.dump(list(csv.reader(f, strict=True)), sys.stdout)",
        )
        .arg(path)
        .output()
        .expect("python3 (a standard CSV reader) must be installed");
    assert!(
        output.status.success(),
        "python csv: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("rows as JSON")
}

#[tokio::test]
async fn csv_round_trips_through_a_standard_reader_with_formulas_neutralised() {
    let app = spawn().await;
    let storage = shared_azurite().connection_string();
    let hostile = json!({
        "UserDetails": {
            "FirstName": "=HYPERLINK(\"http://evil.example/?q=1\",\"Click me\")",
            "LastName": "+1", "Company": "-2", "Title": "@SUM(A1:A9)",
            "Email": "mallory@example.com", "Phone": "+81 3-1234-5678", "Country": "Japan",
        },
        "Description": "multi\nline, with \"quotes\",\r\nand\ta tab; commas, too",
        "OfferTitle": "Contoso \"Analytics\", v2", "ActionCode": "INS",
        "LeadSource": "SPZA-PLT|fabrikam.contoso-analytics",
    });
    let unicode = json!({
        "UserDetails": {
            "FirstName": "Zoë", "LastName": "Nakamura-O'Brien", "Company": "Zoë 株式会社",
            "Title": "VP, Data & AI", "Email": "zoe@fabrikam.co.jp", "Phone": "16175555555",
            "Country": "日本",
        },
        "Description": "cr\ronly and a lone \" quote", "OfferTitle": "Contoso Analytics",
        "LeadSource": "AzurePortal-Create|fabrikam.gateway",
    });
    // Leading whitespace is trimmed at ingest; what it uncovers is neutralised.
    let uncovered = json!({
        "UserDetails": {"FirstName": "\t=cmd|' /C calc'!A0", "LastName": "\r@x",
                        "Email": "uncovered@example.com"},
        "OfferTitle": "Contoso Analytics",
    });
    let mut ids = Vec::new();
    for body in [&hostile, &unicode, &uncovered] {
        let response = app.post_lead(body.to_string()).await;
        assert_eq!(response.status(), 201);
        let answer: Value = response.json().await.unwrap();
        ids.push(answer["id"].as_str().unwrap().to_owned());
    }

    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("leads.csv");
    let file_arg = file.display().to_string();
    let args = ["export", "--format", "csv", "--bom", "--output", &file_arg];
    let output = leads(&storage, &app.table, &args).await;
    let stderr = succeeded(&output);
    assert!(output.stdout.is_empty(), "the CSV went to the file");
    assert!(
        !stderr.contains('\r') && !stderr.contains('…'),
        "no progress when piped: {stderr:?}"
    );
    assert!(stderr.contains("exported 3 leads to"), "{stderr}");

    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBFFirst Name,Last Name,Email,"));
    assert!(bytes.ends_with(b"\r\n"), "RFC 4180 line ends");
    let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "no temporary file left beside it");

    let rows = python_csv(&file);
    assert_eq!(
        rows[0],
        [
            "First Name",
            "Last Name",
            "Email",
            "Phone",
            "Company",
            "Job Title",
            "Country",
            "Description",
            "Offer",
            "Action",
            "Lead Source",
            "Received (UTC)",
            "Lead Id",
            "Rating",
            "Rating Reasons",
        ]
    );
    assert_eq!(rows.len(), 4, "{rows:?}");
    let received = |row: &[String]| {
        let at = &row[11];
        assert_eq!(at.len(), 19, "{at}");
        assert!(
            at.starts_with(&OffsetDateTime::now_utc().year().to_string()),
            "{at}"
        );
        at.clone()
    };
    let expected_hostile = [
        "'=HYPERLINK(\"http://evil.example/?q=1\",\"Click me\")",
        "'+1",
        "mallory@example.com",
        "'+81 3-1234-5678",
        "'-2",
        "'@SUM(A1:A9)",
        "Japan",
        "multi\nline, with \"quotes\",\r\nand\ta tab; commas, too",
        "Contoso \"Analytics\", v2",
        "INS",
        "SPZA-PLT|fabrikam.contoso-analytics",
        &received(&rows[1]),
        &ids[0],
        // Rated by what LeadSource says the customer did (PLT), as every
        // destination reads the action.
        "Hot",
        "asked to be contacted; company email domain; phone given; job title given; wrote a note",
    ];
    assert_eq!(rows[1], expected_hostile);
    let expected_unicode = [
        "Zoë",
        "Nakamura-O'Brien",
        "zoe@fabrikam.co.jp",
        "16175555555",
        "Zoë 株式会社",
        "VP, Data & AI",
        "日本",
        "cr\ronly and a lone \" quote",
        "Contoso Analytics",
        "Create", // no ActionCode: the action of the parsed LeadSource
        "AzurePortal-Create|fabrikam.gateway",
        &received(&rows[2]),
        &ids[1],
        "Hot",
        "bought in the Azure portal; company email domain; phone given; job title given; wrote a \
         note",
    ];
    assert_eq!(rows[2], expected_unicode);
    assert_eq!(rows[3][0], "'=cmd|' /C calc'!A0");
    assert_eq!(rows[3][1], "'@x");
    assert_eq!(rows[3][3], "", "absent values are empty cells");

    // To stdout, no BOM; JSON Lines keep every stored column and the raw payload.
    let output = leads(&storage, &app.table, &["export", "--format", "csv"]).await;
    succeeded(&output);
    assert!(output.stdout.starts_with(b"First Name,"));
    let output = leads(&storage, &app.table, &["export", "--format", "jsonl"]).await;
    succeeded(&output);
    let lines = json_lines(&output.stdout);
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[0]["RawBody"],
        hostile.to_string(),
        "the payload verbatim"
    );
    assert_eq!(
        lines[0]["FirstName"], hostile["UserDetails"]["FirstName"],
        "not neutralised"
    );
    assert_eq!(lines[1]["Company"], "Zoë 株式会社");
    assert_eq!(lines[1]["LeadId"], ids[1].as_str());
    assert_eq!(lines[1]["IsTestLead"], false);
    for column in [
        "PartitionKey",
        "RowKey",
        "Timestamp",
        "ReceivedAt",
        "Fingerprint",
        "CustomerInfo",
    ] {
        assert!(lines[1].get(column).is_some(), "{column} in {}", lines[1]);
    }
    assert!(lines[1]
        .as_object()
        .unwrap()
        .keys()
        .all(|k| !k.contains("odata")));

    let output = leads(
        &storage,
        &app.table,
        &["export", "--format", "jsonl", "--bom"],
    )
    .await;
    assert!(!output.status.success(), "--bom is for CSV");

    // For a CRM import: values as they are, quoted as RFC 4180 says.
    let output = leads(
        &storage,
        &app.table,
        &["export", "--format", "csv", "--no-formula-guard"],
    )
    .await;
    succeeded(&output);
    let raw = dir.path().join("raw.csv");
    std::fs::write(&raw, &output.stdout).unwrap();
    let rows = python_csv(&raw);
    assert_eq!(rows[1][3], "+81 3-1234-5678", "the phone as sent");
    assert_eq!(rows[1][1], "+1");
    assert_eq!(
        rows[1][7], expected_hostile[7],
        "still quoted, not neutralised"
    );

    app.stop().await;
}

#[tokio::test]
async fn a_failed_export_leaves_no_file() {
    let storage = shared_azurite().connection_string();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("leads.csv");
    let file_arg = file.display().to_string();
    let args = ["export", "--format", "csv", "--output", &file_arg];
    let output = leads(&storage, "NoSuchTable0000", &args).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("table NoSuchTable0000"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(
        left.is_empty(),
        "neither the file nor its temporary: {left:?}"
    );
}

#[tokio::test]
async fn progress_shows_on_a_terminal() {
    // Fails rather than passing silently: the check needs a terminal.
    if Command::new("script").arg("--version").output().is_err() {
        panic!(
            "util-linux `script` (a pseudo-terminal for this test) is not installed: \
             apt-get install bsdutils"
        );
    }
    let app = spawn().await;
    let storage = shared_azurite().connection_string();
    assert_eq!(
        app.post_lead(case_lead("tty", "Contoso Analytics").to_string())
            .await
            .status(),
        201
    );
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("leads.csv");
    let command = format!(
        "'{}' leads export --format csv --output '{}'",
        env!("CARGO_BIN_EXE_handler"),
        file.display()
    );
    // `script` runs the command on a pseudo-terminal: stderr is a terminal.
    let mut script = Command::new("script");
    script
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LEADS_STORAGE", &storage)
        .env("LEADS_TABLE", &app.table)
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::null());
    let output = tokio::task::spawn_blocking(move || script.output().unwrap())
        .await
        .unwrap();
    let seen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{seen}");
    assert!(seen.contains("\rexported 1 lead…"), "{seen:?}");
    assert!(seen.contains("exported 1 lead to "), "{seen:?}");
    assert!(file.exists());
    app.stop().await;
}

/// Leads for the large exports: received a minute apart from here on.
/// Azurite finds a row by scanning its partition, so 1,440 leads a day keep
/// inserts linear (7 s apart, 100,000 leads took 312 s instead of 106 s).
const LARGE_START: OffsetDateTime = datetime!(2021-01-01 00:00:00 UTC);
const LARGE_STEP_SECONDS: i64 = 60;
const PEAK_RSS_BOUND_KIB: u64 = 64 * 1024;

/// Peak RSS (VmHWM, KiB) of `command`, polled from /proc until it exits.
fn run_measuring_peak_rss(mut command: Command) -> (std::process::ExitStatus, u64, StdDuration) {
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn handler");
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0;
    loop {
        // VmHWM is the kernel's own high-water mark, so polling loses nothing
        // between reads; it is gone only once the process has exited.
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().expect("wait for handler") {
            return (status, peak_kib, started.elapsed());
        }
        std::thread::sleep(StdDuration::from_millis(5));
    }
}

/// A sender's resends. The store retries within its own write deadline;
/// under the whole suite's load Azurite sometimes drops connections for
/// longer, and then the sender sends again, as Partner Center does.
const RESEND: RetryPolicy = RetryPolicy {
    first_backoff: StdDuration::from_millis(200),
    max_backoff: StdDuration::from_secs(2),
    deadline: StdDuration::from_secs(60),
    max_attempts: 5,
};

/// Saves one lead as a sender would, resending after a refusal. Every lead
/// is new, so `Duplicate` on the first attempt is an error; on a resend it
/// means the refused attempt had landed after all (each save names its own
/// marker, so a second call finds another's). Returns the attempts it took.
async fn save_like_a_sender(
    store: &LeadStore,
    lead: &Lead,
    at: OffsetDateTime,
) -> Result<u32, String> {
    RESEND
        .run(
            |attempt| async move {
                match store.save(lead, at, &[DIGEST]).await {
                    Ok(SaveOutcome::Created(_)) => Ok(attempt.number),
                    Ok(SaveOutcome::Duplicate(_)) if attempt.number > 1 => Ok(attempt.number),
                    other => Err(other),
                }
            },
            |failed| match failed {
                Err(_) => Decision::Retry { after: None },
                Ok(_) => Decision::Stop,
            },
        )
        .await
        .map_err(|gave_up| format!("after {} attempt(s): {:?}", gave_up.attempts, gave_up.error))
}

/// Inserts `count` leads through the store (64 saves in flight) into a
/// fresh Azurite, exports part of them and then all of them to CSV files,
/// and checks that every lead comes out once and that peak RSS neither
/// passes the bound nor grows with the count.
async fn export_in_bounded_memory(count: usize) {
    const IN_FLIGHT: usize = 64;
    // Its own Azurite, so the other tests do not wait behind these writes.
    let azurite = Azurite::start();
    let storage = azurite.connection_string();
    let app = spawn_app_with(options(storage.clone())).await;
    let store = app.store();
    store.ensure_tables().await.unwrap();

    let started = Instant::now();
    let saved = futures::stream::iter(0..count)
        .map(|i| {
            let store = store.clone();
            async move {
                let body = json!({
                    "UserDetails": {"FirstName": "Bulk", "LastName": format!("Lead {i}"),
                                    "Email": format!("bulk{i}@example.com"), "Phone": "+1 425 555 0100",
                                    "Company": "Contoso, Ltd.", "Country": "United States", "Title": "CTO"},
                    "OfferTitle": "Contoso Analytics", "ActionCode": "INS",
                    "LeadSource": "SPZA-PLT|fabrikam.contoso-analytics",
                    "Description": format!("Lead number {i}, asking about \"pricing\"."),
                });
                let at = LARGE_START + Duration::seconds(i as i64 * LARGE_STEP_SECONDS);
                save_like_a_sender(&store, &lead(&body), at).await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await;
    let resent = saved
        .iter()
        .filter(|s| matches!(s, Ok(n) if *n > 1))
        .count();
    let failed: Vec<_> = saved.into_iter().filter(Result::is_err).collect();
    assert!(failed.is_empty(), "every lead stored: {:?}", failed.first());
    let took = started.elapsed();
    println!(
        "inserted {count} leads in {:.1} s ({:.0} leads/s, {IN_FLIGHT} in flight; {resent} resent after a refusal)",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let export = |until: OffsetDateTime, name: &str| {
        let file = dir.path().join(name);
        let until = until.format(&Rfc3339).unwrap();
        let mut command = handler(&storage, &app.table);
        command.args([
            "leads",
            "export",
            "--format",
            "csv",
            "--since",
            "2021-01-01",
        ]);
        command.args(["--until", &until, "--output"]).arg(&file);
        let (status, peak_kib, took) = run_measuring_peak_rss(command);
        assert!(status.success(), "export to {name} failed");
        let mut reader = csv::Reader::from_path(&file).expect("the exported file");
        let mut ids = BTreeSet::new();
        for record in reader.records() {
            let record = record.expect("a valid CSV record");
            assert!(
                ids.insert(record[12].to_owned()),
                "lead {} twice",
                &record[12]
            );
        }
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        println!(
            "exported {} leads ({:.1} MiB of CSV) in {:.1} s, peak RSS {:.1} MiB",
            ids.len(),
            size as f64 / (1024.0 * 1024.0),
            took.as_secs_f64(),
            peak_kib as f64 / 1024.0
        );
        (ids.len(), peak_kib)
    };
    let at = |i: usize| LARGE_START + Duration::seconds(i as i64 * LARGE_STEP_SECONDS);

    // A part first (two pages at least), to show that memory does not grow
    // with the count.
    let part = (count / 10).max(2 * EXPORT_PAGE_ROWS as usize);
    let (rows, small_peak) = tokio::task::block_in_place(|| export(at(part), "part.csv"));
    assert_eq!(rows, part);
    let (rows, peak) = tokio::task::block_in_place(|| export(at(count), "all.csv"));
    assert_eq!(rows, count);
    assert!(
        peak < PEAK_RSS_BOUND_KIB,
        "peak RSS {peak} KiB passes {PEAK_RSS_BOUND_KIB} KiB"
    );
    assert!(
        peak < small_peak + 8 * 1024,
        "memory grows with the export: {small_peak} KiB for {part} leads, {peak} KiB for all"
    );

    // Stopped half-way with Ctrl+C, an export leaves no file behind.
    let file = dir.path().join("interrupted.csv");
    let mut command = handler(&storage, &app.table);
    command.args([
        "leads",
        "export",
        "--format",
        "csv",
        "--since",
        "2021-01-01",
    ]);
    let until = at(count).format(&Rfc3339).unwrap();
    command.args(["--until", &until, "--output"]).arg(&file);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn handler");
    let deadline = Instant::now() + StdDuration::from_secs(60);
    let partial = loop {
        // Written to: past its first page, so past setting up its handler.
        let partial = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .find(|path| {
                path.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(".interrupted.csv."))
                    && std::fs::metadata(path).is_ok_and(|m| m.len() > 0)
            });
        if let Some(partial) = partial {
            break partial;
        }
        assert!(child.try_wait().unwrap().is_none(), "finished too soon");
        assert!(Instant::now() < deadline, "no partial file appeared");
        std::thread::sleep(StdDuration::from_millis(2));
    };
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted export fails");
    assert!(!partial.exists() && !file.exists(), "nothing left behind");
    app.stop().await;
}

/// Five pages, across partitions: continuation tokens lose and repeat
/// nothing, and memory stays bounded. About 10 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multi_page_export_streams_in_bounded_memory() {
    export_in_bounded_memory(5_000).await;
}

/// The figure: 100,000 leads. On this shared 2-core machine the
/// inserts take 106-133 s (750-940 leads/s; Azurite is one Node process)
/// and the export 25-42 s (Azurite scans and sorts the rest of the range
/// for every page, where Azure reads the key range), 2.5-3 minutes in all,
/// so it runs on request:
/// `cargo test --test export -- --ignored --nocapture 100k`.
/// Measured: peak RSS 30.8-31.2 MiB for 100,000 leads (23 MiB of CSV),
/// 29.9-30.5 MiB for 10,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about 3 minutes: 100,000 inserts into Azurite"]
async fn a_100k_lead_export_streams_in_bounded_memory() {
    export_in_bounded_memory(100_000).await;
}

#[tokio::test]
async fn refused_bodies_are_listed_and_shown_exactly_as_received() {
    let app = spawn().await;
    let storage = shared_azurite().connection_string();
    let body = testkit::testdata("invalid-missing-comma.json");
    assert_eq!(app.post_lead(body.clone()).await.status(), 400);
    let output = leads(&storage, &app.table, &["rejected", "--since", "1h"]).await;
    succeeded(&output);
    let listed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(listed.contains("1 body refused"), "{listed}");
    assert!(listed.contains("not valid JSON"), "{listed}");
    let id = listed
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(2))
        .expect("the id column")
        .to_owned();
    let shown = leads(
        &storage,
        &app.table,
        &["rejected", "--since", "1h", "--show", &id],
    )
    .await;
    assert!(shown.status.success());
    assert_eq!(shown.stdout, body, "byte for byte");
}

#[tokio::test]
async fn an_export_never_replaces_anything_but_a_regular_file() {
    let app = spawn().await;
    let storage = shared_azurite().connection_string();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("precious.txt");
    std::fs::write(&target, "precious").unwrap();
    let link = dir.path().join("leads.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for refused in [
        link.display().to_string(),
        "/dev/null".to_owned(),
        dir.path().display().to_string(),
    ] {
        let output = leads(
            &storage,
            &app.table,
            &["export", "--format", "csv", "--output", &refused],
        )
        .await;
        assert_eq!(output.status.code(), Some(1), "{refused}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("--output"), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    let file = dir.path().join("new.csv");
    let output = leads(
        &storage,
        &app.table,
        &[
            "export",
            "--format",
            "csv",
            "--output",
            &file.display().to_string(),
        ],
    )
    .await;
    assert!(output.status.success());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "personal data: readable by its owner only");
}

/// Ratings are listed and filtered as stored; `leads rate` shows what the
/// current rules would change — leads stored before ratings, and one rated
/// under older rules — writes nothing until `--apply`, then writes exactly
/// that, and a second run finds nothing to change.
#[tokio::test]
async fn ratings_are_listed_filtered_and_rerated_only_when_asked() {
    use marketplace_leads::domain::{Level, Rating};
    let app = spawn().await;
    let storage = shared_azurite().connection_string();
    let store = app.store();
    store.ensure_tables().await.unwrap();
    let at = datetime!(2021-05-10 09:00 UTC);
    let person = |name: &str, email: &str, source: &str, company: bool| {
        let mut body = json!({
            "UserDetails": {"FirstName": name, "LastName": "Buyer", "Email": email},
            "LeadSource": source, "OfferTitle": "Contoso Analytics",
        });
        if company {
            body["UserDetails"]["Company"] = json!("Contoso");
            body["UserDetails"]["Phone"] = json!("+1 425 555 0100");
        }
        lead(&body)
    };
    // Stored before ratings existed.
    let unrated = person("Una", "una@contoso.example", "SPZA-PLT|f.a", true);
    // Rated hot by older rules; the current ones say warm.
    let mut older = person(
        "Olly",
        "olly@contoso.example",
        "AzureMarketplace-INS|f.a",
        true,
    );
    older.rating = Some(Rating {
        level: Level::Hot,
        score: 99,
        reasons: vec!["older rules".into()],
        rules: 0,
    });
    // Rated as LeadIngest rates it today.
    let current = person(
        "Cy",
        "cy.buyer@gmail.com",
        "AzureMarketplace-INS|f.a",
        false,
    )
    .rated();
    for (i, lead) in [&unrated, &older, &current].into_iter().enumerate() {
        let saved = store
            .save(lead, at + Duration::minutes(i as i64), &[DIGEST])
            .await;
        assert!(matches!(saved, Ok(SaveOutcome::Created(_))), "{saved:?}");
    }
    let window = ["--since", "2021-05-10", "--until", "2021-05-11"];
    let names_rated = |level: &'static str| {
        let (storage, table) = (storage.clone(), app.table.clone());
        async move {
            let args = [&["list", "--rating", level][..], &window].concat();
            let output = leads(&storage, &table, &args).await;
            succeeded(&output);
            let text = String::from_utf8(output.stdout).unwrap();
            ["Una", "Olly", "Cy"]
                .into_iter()
                .filter(|name| text.contains(&format!("{name} Buyer")))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names_rated("hot").await, ["Olly"]);
    assert_eq!(names_rated("cold").await, ["Cy"]);

    let rate = |extra: &'static [&'static str]| {
        let (storage, table) = (storage.clone(), app.table.clone());
        async move {
            let args = [&["rate"][..], &window, extra].concat();
            let output = leads(&storage, &table, &args).await;
            succeeded(&output);
            String::from_utf8(output.stdout).unwrap()
        }
    };
    let dry = rate(&["--dry-run"]).await;
    assert!(
        dry.contains("3 leads read; 2 would change (unrated → hot: 1, hot → warm: 1)")
            && dry.contains("nothing written"),
        "{dry}"
    );
    let line = |name: &str| {
        dry.lines()
            .find(|l| l.contains(name))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("Una").contains("unrated") && line("Una").contains("hot ("),
        "{dry}"
    );
    assert!(
        line("Olly").contains("hot (99)") && line("Olly").contains("installed only"),
        "{dry}"
    );
    assert!(
        !dry.contains("Cy Buyer"),
        "an unchanged rating is not listed: {dry}"
    );
    assert_eq!(
        names_rated("hot").await,
        ["Olly"],
        "a dry run writes nothing"
    );

    let applied = rate(&["--apply"]).await;
    assert!(applied.contains("re-rated 2 leads"), "{applied}");
    assert_eq!(names_rated("hot").await, ["Una"]);
    assert_eq!(names_rated("warm").await, ["Olly"]);
    assert_eq!(names_rated("cold").await, ["Cy"]);
    let again = rate(&[]).await;
    assert!(again.contains("3 leads read; none would change"), "{again}");

    // Export filters by rating too, and says it.
    let args = [
        &["export", "--format", "jsonl", "--rating", "warm,cold"][..],
        &window,
    ]
    .concat();
    let output = leads(&storage, &app.table, &args).await;
    succeeded(&output);
    let rows = json_lines(&output.stdout);
    let ratings: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["FirstName"].as_str().unwrap(),
                r["Rating"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(ratings, [("Olly", "warm"), ("Cy", "cold")]);
    assert_eq!(rows[0]["RatingRules"], 1);
    let bad = leads(&storage, &app.table, &["list", "--rating", "tepid"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("\"tepid\" is not hot, warm or cold"));
    app.stop().await;
}
