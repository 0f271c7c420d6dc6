//! Load and faults, end to end, in a test binary of its own: the real routes
//! against a real Azurite and a real MailDev (the API tests' harness), all on
//! loopback, every loop bounded.
//!
//! - 10,000 distinct leads over 64 concurrent connections: every lead
//!   answered 2xx is in the table exactly once, under the id it was given.
//! - The same while Azurite is stopped a third of the way in and started
//!   again: every lead answered 2xx is stored, every lead not stored was
//!   refused; a refused lead that was stored anyway is counted, not hidden.
//! - The digest with the mail sink down for a run, storage down for a run,
//!   and storage cut between the send and the checkpoint: after recovery
//!   every lead was reported, and the leads reported twice are counted.
//!
//! Counts are printed to stderr (not captured), so a normal `cargo test`
//! run shows them. Timing is printed, never asserted beyond generous bounds.

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use futures::StreamExt;
use helpers::{spawn_app_with, AppOptions, Azurite, MailDev, TestApp};
use marketplace_leads::digest::{DigestError, Outcome, CLAIM_LEASE};
use marketplace_leads::store::LeadStore;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEADS: usize = 10_000;
const CONNECTIONS: usize = 64;
/// Longer than the handler's write deadline (6 s), so that some leads are
/// refused while storage is down.
const OUTAGE: Duration = Duration::from_secs(8);
/// Every load run stops by itself well within this.
const LOAD_BOUND: Duration = Duration::from_secs(300);

/// These tests measure throughput and stop services: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Prints past the test harness's capture: the counts are the point.
macro_rules! report {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

fn options(storage: String, smtp_url: Option<String>) -> AppOptions {
    AppOptions {
        storage,
        smtp_url,
        key: None,
        host_port: None,
        extra: Vec::new(),
    }
}

/// A distinct lead of realistic size (about 450 bytes, like Partner
/// Center's samples); its `Email` says which one it is.
fn lead_body(run: &str, i: usize) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"Load{i}","LastName":"Tester","Email":"{}",
"Phone":"+1 425 555 {:04}","Country":"United States","Company":"Contoso Load {i}","Title":"Buyer"}},
"LeadSource":"SPZA-PLT|contoso.load-test","ActionCode":"PLT","OfferTitle":"Contoso Load",
"Description":"Lead {i} of run {run}: please contact me about pricing for 500 seats."}}"#,
        lead_email(run, i),
        i % 10_000
    )
}

fn lead_email(run: &str, i: usize) -> String {
    format!("load{i}.{run}@contoso.example")
}

fn index_of(run: &str, email: &str) -> Option<usize> {
    email
        .strip_prefix("load")?
        .strip_suffix(&format!(".{run}@contoso.example"))?
        .parse()
        .ok()
}

fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_owned()
}

/// What the client got back for one lead.
#[derive(Debug, Clone)]
enum Answer {
    /// 2xx, with the id from the answer's JSON.
    Accepted { status: u16, id: Option<String> },
    /// Any other status.
    Refused { status: u16 },
    /// No answer at all (connection error, client timeout).
    Unanswered { error: String },
}

/// Posts every body over at most [`CONNECTIONS`] concurrent connections;
/// `answered` counts the answers as they come.
async fn post_leads(address: &str, bodies: Vec<String>, answered: Arc<AtomicUsize>) -> Vec<Answer> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client");
    let url = format!("{address}/api/LeadIngest");
    let mut answers: Vec<Option<Answer>> = vec![None; bodies.len()];
    let mut results = futures::stream::iter(bodies.into_iter().enumerate())
        .map(|(i, body)| {
            let (client, url, answered) = (client.clone(), url.clone(), answered.clone());
            async move {
                let answer = match client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(response) if response.status().is_success() => {
                        let status = response.status().as_u16();
                        let body: Option<Value> = response.json().await.ok();
                        Answer::Accepted {
                            status,
                            id: body.and_then(|b| b["id"].as_str().map(str::to_owned)),
                        }
                    }
                    Ok(response) => Answer::Refused {
                        status: response.status().as_u16(),
                    },
                    Err(e) => Answer::Unanswered {
                        error: e.to_string(),
                    },
                };
                answered.fetch_add(1, Ordering::Relaxed);
                (i, answer)
            }
        })
        .buffer_unordered(CONNECTIONS);
    while let Some((i, answer)) = results.next().await {
        answers[i] = Some(answer);
    }
    answers
        .into_iter()
        .map(|a| a.expect("every lead answered"))
        .collect()
}

/// The table compared with the answers.
#[derive(Debug, Default)]
struct Verdict {
    accepted: usize,
    /// 200 `duplicate` for a distinct lead: a retry after a lost answer.
    accepted_as_duplicate: usize,
    refused: BTreeMap<u16, usize>,
    no_answer: usize,
    lead_rows: usize,
    markers: usize,
    /// Refused (non-2xx) yet in the table: the write landed, the answer
    /// said it had not.
    refused_but_stored: Vec<usize>,
    /// No answer at all, yet in the table.
    unanswered_but_stored: Vec<usize>,
    /// Broken promises: anything here fails the test.
    problems: Vec<String>,
}

impl Verdict {
    fn refused_total(&self) -> usize {
        self.refused.values().sum()
    }
}

async fn verify(app: &TestApp, run: &str, answers: &[Answer]) -> Verdict {
    let mut verdict = Verdict::default();
    let mut stored: HashMap<usize, Vec<String>> = HashMap::new();
    for row in app.rows().await {
        let key = row["RowKey"].as_str().unwrap_or_default();
        if key.starts_with('D') {
            verdict.markers += 1;
            continue;
        }
        if !key.starts_with('L') {
            verdict.problems.push(format!("unexpected row {key}"));
            continue;
        }
        verdict.lead_rows += 1;
        let email = row.get("Email").and_then(Value::as_str).unwrap_or_default();
        match index_of(run, email) {
            Some(i) if i < answers.len() => stored
                .entry(i)
                .or_default()
                .push(row["LeadId"].as_str().unwrap_or_default().to_owned()),
            _ => verdict
                .problems
                .push(format!("row {key} is no lead of this run: {email:?}")),
        }
    }
    for (i, answer) in answers.iter().enumerate() {
        let copies = stored.get(&i).map(Vec::as_slice).unwrap_or_default();
        if copies.len() > 1 {
            verdict
                .problems
                .push(format!("lead {i} stored {} times", copies.len()));
        }
        match answer {
            Answer::Accepted { status, id } => {
                verdict.accepted += 1;
                if *status == 200 {
                    verdict.accepted_as_duplicate += 1;
                }
                let stored_once = copies.len() == 1 && id.as_deref() == Some(copies[0].as_str());
                if !stored_once {
                    verdict.problems.push(format!(
                        "lead {i} answered {status} with id {id:?}, stored as {copies:?}"
                    ));
                }
            }
            Answer::Refused { status } => {
                *verdict.refused.entry(*status).or_default() += 1;
                if !copies.is_empty() {
                    verdict.refused_but_stored.push(i);
                }
            }
            Answer::Unanswered { error } => {
                verdict.no_answer += 1;
                if verdict.no_answer <= 3 {
                    report!("  lead {i}: no answer: {error}");
                }
                if !copies.is_empty() {
                    verdict.unanswered_but_stored.push(i);
                }
            }
        }
    }
    verdict
}

/// The promises that hold under load and faults alike.
fn assert_promises_kept(verdict: &Verdict) {
    assert!(
        verdict.problems.is_empty(),
        "{} problem(s), first ones: {:#?}",
        verdict.problems.len(),
        &verdict.problems[..verdict.problems.len().min(10)]
    );
    assert_eq!(
        verdict.lead_rows,
        verdict.accepted + verdict.refused_but_stored.len() + verdict.unanswered_but_stored.len(),
        "lead rows are the 2xx leads (plus any refused or unanswered lead whose write landed)"
    );
    assert_eq!(
        verdict.markers, verdict.lead_rows,
        "every lead row has its de-duplication marker and no marker is alone"
    );
}

fn report_verdict(what: &str, verdict: &Verdict, elapsed: Duration) {
    report!(
        "{what}: {} leads in {:.1} s ({:.0}/s) over {CONNECTIONS} connections",
        LEADS,
        elapsed.as_secs_f64(),
        LEADS as f64 / elapsed.as_secs_f64()
    );
    report!(
        "  2xx {} (of which 200 duplicate {}), refused {:?}, no answer {}; \
         stored lead rows {}, markers {}; refused but stored {:?}, unanswered but stored {:?}",
        verdict.accepted,
        verdict.accepted_as_duplicate,
        verdict.refused,
        verdict.no_answer,
        verdict.lead_rows,
        verdict.markers,
        verdict.refused_but_stored,
        verdict.unanswered_but_stored,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_leads_over_64_connections_are_each_stored_once() {
    let _serial = SERIAL.lock().await;
    let azurite = Azurite::start();
    let app = spawn_app_with(options(azurite.connection_string(), None)).await;
    let run = new_run_id();
    let bodies = (0..LEADS).map(|i| lead_body(&run, i)).collect();

    let started = Instant::now();
    let answers =
        tokio::time::timeout(LOAD_BOUND, post_leads(&app.address, bodies, Arc::default()))
            .await
            .expect("the load finishes within its bound");
    let elapsed = started.elapsed();

    let verdict = verify(&app, &run, &answers).await;
    report_verdict("load", &verdict, elapsed);
    assert_promises_kept(&verdict);
    assert_eq!(verdict.no_answer, 0, "every request was answered");
    assert!(
        verdict.refused.keys().all(|s| *s == 503),
        "only 503 may refuse a valid lead: {:?}",
        verdict.refused
    );
    // Capacity, not correctness: storage is healthy, so (nearly) all stored.
    assert!(
        verdict.accepted * 100 >= LEADS * 99,
        "{} of {LEADS} accepted with storage healthy",
        verdict.accepted
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_restarted_under_load_loses_no_acknowledged_lead() {
    let _serial = SERIAL.lock().await;
    let azurite = Azurite::start_persistent();
    let app = spawn_app_with(options(azurite.connection_string(), None)).await;
    let run = new_run_id();
    let bodies = (0..LEADS).map(|i| lead_body(&run, i)).collect();
    let answered = Arc::new(AtomicUsize::new(0));

    // A third of the way in, stop Azurite; start it again after OUTAGE
    // while the load goes on. (stop: SIGINT, so Azurite flushes its data.)
    let fault = {
        let answered = answered.clone();
        tokio::task::spawn_blocking(move || {
            let mut azurite = azurite;
            let deadline = Instant::now() + LOAD_BOUND;
            while answered.load(Ordering::Relaxed) < LEADS / 3 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            let stopped_at = answered.load(Ordering::Relaxed);
            azurite.stop();
            std::thread::sleep(OUTAGE);
            let restart_at = answered.load(Ordering::Relaxed);
            let restarting = Instant::now();
            azurite.restart();
            let boot = restarting.elapsed();
            (azurite, stopped_at, restart_at, boot)
        })
    };

    let started = Instant::now();
    let answers = tokio::time::timeout(
        LOAD_BOUND,
        post_leads(&app.address, bodies, answered.clone()),
    )
    .await
    .expect("the load finishes within its bound");
    let elapsed = started.elapsed();
    let (azurite, stopped_at, restart_at, boot) = fault.await.expect("the fault task");

    let verdict = verify(&app, &run, &answers).await;
    report_verdict("load with Azurite restarted", &verdict, elapsed);
    report!(
        "  Azurite stopped after {stopped_at} answers, down {:.1} s, started again after \
         {restart_at} answers (ready in {:.1} s)",
        OUTAGE.as_secs_f64(),
        boot.as_secs_f64()
    );
    assert_promises_kept(&verdict);
    assert!(
        verdict.refused.keys().all(|s| *s == 503),
        "storage down means 503, nothing else: {:?}",
        verdict.refused
    );
    assert!(
        verdict.refused_total() > 0,
        "an outage longer than the write deadline refuses some leads"
    );
    assert!(
        verdict.accepted > LEADS / 2,
        "leads before and after the outage are stored: {}",
        verdict.accepted
    );

    // The documented recovery: post each refused lead's body (logged with
    // `lead NOT stored`) again. One whose write had landed anyway is
    // answered 200 duplicate; every lead is then stored exactly once.
    let day = time::OffsetDateTime::now_utc().date();
    let again: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| !matches!(a, Answer::Accepted { .. }))
        .map(|(i, _)| i)
        .collect();
    let reposted = post_leads(
        &app.address,
        again.iter().map(|i| lead_body(&run, *i)).collect(),
        Arc::default(),
    )
    .await;
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    for answer in &reposted {
        if let Answer::Accepted { status, .. } | Answer::Refused { status } = answer {
            *statuses.entry(*status).or_default() += 1;
        }
    }
    report!(
        "  re-posted the {} refused leads: {statuses:?} (200 = its earlier write had landed)",
        again.len()
    );
    let mut answers = answers;
    for (i, answer) in again.iter().zip(reposted) {
        answers[*i] = answer;
    }
    let after = verify(&app, &run, &answers).await;
    assert_promises_kept(&after);
    if time::OffsetDateTime::now_utc().date() == day {
        // Duplicates are recognised within a UTC day.
        assert_eq!(after.accepted, LEADS, "every lead stored after re-posting");
        assert_eq!(after.lead_rows, LEADS, "and each exactly once");
        assert_eq!(
            statuses.get(&200).copied().unwrap_or(0),
            verdict.refused_but_stored.len() + verdict.unanswered_but_stored.len(),
            "exactly the refused leads that had been stored are duplicates"
        );
    }
    app.stop().await;
    drop(azurite);
}

// ----- The digest under faults -------------------------------------------

/// What the storage proxy does with the next request.
const PASS: u8 = 0;
/// Cut storage at the first checkpoint write that carries no claim: right
/// after a digest was sent, before its checkpoint moves.
const CUT_AFTER_SEND: u8 = 1;
/// Storage is gone: every connection is closed unanswered.
const CUT: u8 = 2;

/// A loopback proxy in front of Azurite that can make storage vanish at an
/// exact request: the checkpoint write that follows a send. What that leaves
/// in the tables — the claim, with the email delivered — is exactly what a
/// process that crashed between sending and checkpointing leaves.
struct StorageProxy {
    port: u16,
    mode: Arc<AtomicU8>,
    task: tokio::task::JoinHandle<()>,
}

impl StorageProxy {
    async fn start(upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let shared = mode.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(proxy_connection(client, upstream, shared.clone()));
            }
        });
        Self { port, mode, task }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={a};AccountKey={k};\
             TableEndpoint=http://127.0.0.1:{}/{a};",
            self.port,
            a = helpers::DEV_ACCOUNT,
            k = helpers::DEV_KEY
        )
    }
}

impl Drop for StorageProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards one client connection request by request (the storage client
/// sends every body with a `Content-Length`), answers straight back, and
/// drops the connection unanswered when the mode says storage is gone.
async fn proxy_connection(client: tokio::net::TcpStream, upstream: u16, mode: Arc<AtomicU8>) {
    if mode.load(Ordering::SeqCst) == CUT {
        return;
    }
    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else {
        return; // Azurite is down: the client sees its connection closed.
    };
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = server.into_split();
    let answers = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    'requests: loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'requests,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
        assert!(
            !head.contains("transfer-encoding: chunked"),
            "the proxy expects Content-Length bodies"
        );
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            match from_client.read(&mut chunk).await {
                Ok(0) | Err(_) => break 'requests,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let request: Vec<u8> = buffer.drain(..head_end + length).collect();
        let text = String::from_utf8_lossy(&request);
        let request_line = text.lines().next().unwrap_or_default();
        let checkpoint_write = (request_line.starts_with("PUT ")
            || request_line.starts_with("MERGE "))
            && request_line.contains("checkpoint")
            && request_line.contains("LeadDigest");
        let cut = match mode.load(Ordering::SeqCst) {
            CUT => true,
            CUT_AFTER_SEND if checkpoint_write && !text.contains("ClaimRunId") => {
                mode.store(CUT, Ordering::SeqCst);
                true
            }
            _ => false,
        };
        if cut || to_server.write_all(&request).await.is_err() {
            break;
        }
    }
    answers.abort();
}

fn named_lead(name: &str) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"{name}","Email":"{name}@contoso.example"}},"OfferTitle":"Faults"}}"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_lead_is_reported_after_mail_storage_and_crash_faults() {
    let _serial = SERIAL.lock().await;
    let mut azurite = Azurite::start_persistent();
    let proxy = StorageProxy::start(azurite.port).await;
    let mut maildev = MailDev::start();
    let app = spawn_app_with(options(proxy.connection_string(), Some(maildev.smtp_url()))).await;
    let per_window = 10;
    let mut windows: Vec<(&str, Vec<String>)> = Vec::new();
    let mut ingest = |label: &'static str| {
        let names: Vec<String> = (0..per_window).map(|i| format!("{label}{i}")).collect();
        windows.push((label, names.clone()));
        let app = &app;
        async move {
            for name in names {
                assert_eq!(app.post_lead(named_lead(&name)).await.status(), 201);
            }
        }
    };

    // A first run with nothing to report sets the checkpoint.
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);

    // 1. The mail sink is down for a run.
    ingest("Mail").await;
    maildev.stop();
    let failed = app.run_digest().await.expect_err("the sink is down");
    assert!(matches!(failed, DigestError::Send { .. }), "{failed}");
    maildev.restart();
    let report = app.run_digest().await.expect("the sink is back");
    assert_eq!(report.lead_count, per_window);

    // 2. Storage is down for a run.
    ingest("Storage").await;
    azurite.stop();
    let failed = app.run_digest().await.expect_err("storage is down");
    assert!(matches!(failed, DigestError::Storage(_)), "{failed}");
    assert_eq!(maildev.emails_to(&app.recipient).await.len(), 1);
    azurite.restart();
    let report = app.run_digest().await.expect("storage is back");
    assert_eq!(report.lead_count, per_window);

    // 3. Storage vanishes right after the send, before the checkpoint
    //    moves: the state a crash between send and checkpoint leaves.
    ingest("Crash").await;
    proxy.set(CUT_AFTER_SEND);
    let failed = app.run_digest().await.expect_err("cut after the send");
    assert!(
        matches!(failed, DigestError::CheckpointAfterSend { .. }),
        "{failed}"
    );
    proxy.set(PASS);
    let store = LeadStore::new(&app.settings.storage).unwrap();
    let (left, _) = store.checkpoint().await.unwrap().unwrap();
    assert!(left.claim.is_some(), "the claim stays: {left:?}");
    assert_eq!(maildev.emails_to(&app.recipient).await.len(), 3);

    // Leads keep arriving; while the claim is fresh, runs stand back.
    ingest("Later").await;
    assert_eq!(
        app.run_digest().await.unwrap().outcome,
        Outcome::AnotherRunInProgress
    );
    // Recovery: after the lease the claimed window is sent again, then the
    // leads that came since.
    app.clock.advance(CLAIM_LEASE);
    let resent = app.run_digest().await.expect("the claimed window again");
    assert_eq!(resent.lead_count, per_window);
    let next = app.run_digest().await.expect("the leads since");
    assert_eq!(next.lead_count, per_window);
    assert_eq!(app.run_digest().await.unwrap().outcome, Outcome::NoNewLeads);

    // Count, over every email the sink got, each lead's reports.
    let emails = maildev.emails_to(&app.recipient).await;
    let texts: Vec<&str> = emails
        .iter()
        .map(|e| e["text"].as_str().unwrap_or_default())
        .collect();
    let mut twice_by_fault = BTreeMap::new();
    let mut total = 0;
    for (label, names) in &windows {
        for name in names {
            let address = format!("{name}@contoso.example");
            let times: usize = texts.iter().map(|t| t.matches(&address).count()).sum();
            assert!(times >= 1, "{name} was never reported");
            assert!(times <= 2, "{name} reported {times} times");
            total += 1;
            *twice_by_fault.entry(*label).or_insert(0) += usize::from(times == 2);
        }
    }
    let twice: usize = twice_by_fault.values().sum();
    report!(
        "digest under faults: {total} leads, {} emails; every lead reported; \
         reported twice: {twice} {twice_by_fault:?}",
        emails.len()
    );
    assert_eq!(emails.len(), 5, "five digests were accepted by the sink");
    assert_eq!(twice_by_fault["Mail"], 0);
    assert_eq!(twice_by_fault["Storage"], 0);
    assert_eq!(twice_by_fault["Later"], 0);
    assert_eq!(
        twice_by_fault["Crash"], per_window,
        "SMTP has no de-duplication: the crashed window is delivered twice"
    );
    // ... but both copies carry the same Message-ID, so a receiver (or ACS,
    // by Operation-Id) can tell them for one.
    let crash_ids: Vec<&str> = emails
        .iter()
        .filter(|e| {
            e["text"]
                .as_str()
                .unwrap_or_default()
                .contains("Crash0@contoso.example")
        })
        .filter_map(|e| e["messageId"].as_str())
        .collect();
    assert_eq!(crash_ids.len(), 2, "{crash_ids:?}");
    assert_eq!(crash_ids[0], crash_ids[1]);
    app.stop().await;
}
