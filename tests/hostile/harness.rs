//! Sending a case and checking what must hold after it: the answer, the
//! stored columns, keys and markers, no echo of the body, no panic.

use super::cases::{Body, Case, Column, Expect, Request};
use super::*;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Map;
use std::fmt::Write as _;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Once};

pub(crate) async fn run_table(table: &str, cases: Vec<Case>, key: Option<&str>) {
    watch_panics();
    let mut lines = String::new();
    let mut failures = String::new();
    for case in &cases {
        let app = spawn_app_with(AppOptions {
            key: key.map(str::to_owned),
            ..AppOptions::default()
        })
        .await;
        let (status, mut problems) = run_case(&app, case, key).await;
        if tokio::time::timeout(REQUEST_TIMEOUT, app.stop())
            .await
            .is_err()
        {
            problems.push("the server did not shut down: a connection was held open".into());
        }
        let verdict = if problems.is_empty() { "ok" } else { "FAILED" };
        let line = format!("{verdict:<6} {status:<24} {}\n", case.name);
        lines.push_str(&line);
        if !problems.is_empty() {
            failures.push_str(&line);
            for problem in &problems {
                let _ = writeln!(failures, "         - {problem}");
            }
        }
    }
    println!("{table} cases:\n{lines}");
    assert!(failures.is_empty(), "{table} cases failed:\n{failures}");
}

/// Sends the case's request and checks everything that follows from it.
/// Returns the status as shown in the table, and the problems found.
pub(crate) async fn run_case(
    app: &TestApp,
    case: &Case,
    key: Option<&str>,
) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let (expected_status, reason) = match &case.expect {
        Expect::Refused(status, reason) => (*status, Some(*reason)),
        Expect::Stored(_) => (201, None),
    };

    let status = match send(app, &case.request).await {
        Err(error) => {
            problems.push(error);
            "no answer".to_owned()
        }
        Ok(answer) => {
            if answer.status != expected_status {
                problems.push(format!(
                    "status {} (expected {expected_status}): {}",
                    answer.status,
                    show(&answer.text)
                ));
            }
            let mut keys = case.request.keys_given();
            keys.extend(key.map(str::to_owned));
            check_answer(&answer, &case.request, reason, &keys, &mut problems);
            match answer.pulled {
                Some(pulled) => format!(
                    "{} ({:.2} MiB sent)",
                    answer.status,
                    pulled as f64 / MIB as f64
                ),
                None => answer.status.to_string(),
            }
        }
    };

    match app.client.get(&app.address).send().await {
        Ok(ready) if ready.status() == 200 => {}
        Ok(ready) => problems.push(format!("GET / answered {} afterwards", ready.status())),
        Err(error) => problems.push(format!("GET / failed afterwards: {error}")),
    }
    let panics = PANICS.load(Ordering::SeqCst) - panics_before;
    if panics > 0 {
        problems.push(format!("{panics} panic(s) during the case"));
    }

    let rows = app.rows().await;
    check_keys_and_markers(&rows, &mut problems);
    let (quarantined, stored): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|r| r["PartitionKey"] == QUARANTINE);
    match &case.expect {
        Expect::Refused(..) if !stored.is_empty() => {
            problems.push(format!(
                "{} row(s) stored for a refused request",
                stored.len()
            ));
        }
        // A body the handler read and refused is kept, exactly; a request
        // refused before its body was read keeps nothing.
        Expect::Refused(status, _) => {
            check_quarantined(&quarantined, *status, &case.request, &mut problems)
        }
        Expect::Stored(columns) => {
            if !quarantined.is_empty() {
                problems.push("a stored lead was also quarantined".to_owned());
            }
            check_stored(&stored, &case.request, columns, &mut problems)
        }
    }
    (status, problems)
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) text: String,
    /// For streamed bodies: how much of the body the client had to send.
    pub(crate) pulled: Option<usize>,
}

pub(crate) async fn send(app: &TestApp, request: &Request) -> Result<Answer, String> {
    // A client of its own: no connection is shared between cases.
    let client = reqwest::Client::new();
    let mut builder = client.request(
        request.method.clone(),
        format!("{}{}", app.address, request.path),
    );
    for (name, value) in &request.headers {
        builder = builder.header(*name, value.clone());
    }
    let pulled = Arc::new(AtomicUsize::new(0));
    builder = match &request.body {
        Body::Bytes(bytes) => builder.body(bytes.clone()),
        Body::Chunked { total } => builder.body(streamed_body(*total, false, pulled.clone())),
        Body::Stalling { sent, length } => {
            let builder = builder.body(streamed_body(*sent, true, pulled.clone()));
            match length {
                Some(length) => builder.header("content-length", *length),
                None => builder,
            }
        }
    };
    let exchange = async {
        let response = builder
            .send()
            .await
            .map_err(|e| format!("no answer: {e:?}"))?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        let text = response
            .text()
            .await
            .map_err(|e| format!("answer body unreadable: {e:?}"))?;
        Ok::<_, String>((status, content_type, text))
    };
    let (status, content_type, text) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| {
            format!("no answer within {REQUEST_TIMEOUT:?}: the server waited for the body")
        })??;
    Ok(Answer {
        status,
        content_type,
        text,
        pulled: matches!(request.body, Body::Chunked { .. } | Body::Stalling { .. })
            .then(|| pulled.load(Ordering::SeqCst)),
    })
}

/// `{"Description":"xxx…` — the first `total` bytes of a lead too big to take.
pub(crate) fn streamed_bytes(total: usize) -> Vec<u8> {
    let mut bytes = br#"{"Description":""#.to_vec();
    bytes.resize(total, b'x');
    bytes
}

/// The body as a stream of 16 KiB chunks, counting what the client sent;
/// `stall`: then it neither ends nor sends more.
pub(crate) fn streamed_body(total: usize, stall: bool, pulled: Arc<AtomicUsize>) -> reqwest::Body {
    const CHUNK: usize = 16 * 1024;
    let bytes = Bytes::from(streamed_bytes(total));
    let chunks: Vec<Bytes> = (0..total)
        .step_by(CHUNK)
        .map(|at| bytes.slice(at..(at + CHUNK).min(total)))
        .collect();
    let chunks = futures::stream::iter(chunks).map(move |chunk| {
        pulled.fetch_add(chunk.len(), Ordering::SeqCst);
        Ok::<_, std::io::Error>(chunk)
    });
    if stall {
        reqwest::Body::wrap_stream(chunks.chain(futures::stream::pending()))
    } else {
        reqwest::Body::wrap_stream(chunks)
    }
}

/// Refusals are `{"error": "<reason>"}` JSON; successes `{"id", "status"}`;
/// no answer echoes the body or a key.
pub(crate) fn check_answer(
    answer: &Answer,
    request: &Request,
    reason: Option<&str>,
    keys: &[String],
    problems: &mut Vec<String>,
) {
    let json: Option<Value> = serde_json::from_str(&answer.text).ok();
    let mut texts = vec![answer.text.clone()];
    if (200..300).contains(&answer.status) {
        let fine = json
            .as_ref()
            .is_some_and(|j| j["id"].is_string() && j["status"] == "created");
        if !fine {
            problems.push(format!(
                "2xx answer is not {{id, status}}: {}",
                show(&answer.text)
            ));
        }
    } else {
        if !answer.content_type.starts_with("application/json") {
            problems.push(format!("content-type {:?}", answer.content_type));
        }
        let error = json
            .as_ref()
            .and_then(Value::as_object)
            .filter(|object| object.len() == 1)
            .and_then(|object| object.get("error"))
            .and_then(Value::as_str);
        match error {
            None => problems.push(format!("not {{\"error\": ...}}: {}", show(&answer.text))),
            Some(error) => {
                if let Some(reason) = reason.filter(|r| !error.contains(r)) {
                    problems.push(format!("error {error:?} does not say {reason:?}"));
                }
                texts.push(error.to_owned());
            }
        }
    }
    let body = request.body_start();
    for text in &texts {
        if let Some(window) = echoed(text, &body) {
            problems.push(format!("the answer echoes the body: {window:?}"));
        }
        for key in keys.iter().filter(|key| text.contains(key.as_str())) {
            problems.push(format!("the answer echoes a key: {key:?}"));
        }
    }
}

/// A run of [`ECHO_WINDOW`] bytes that the body and the answer share.
pub(crate) fn echoed(answer: &str, body: &[u8]) -> Option<String> {
    let windows: std::collections::HashSet<&[u8]> =
        answer.as_bytes().windows(ECHO_WINDOW).collect();
    body.windows(ECHO_WINDOW)
        .find(|window| windows.contains(window))
        .map(|window| String::from_utf8_lossy(window).into_owned())
}

/// The partition refused bodies are kept in.
const QUARANTINE: &str = "quarantine";

/// A body refused by the handler (400, 413) is kept, as sent (at most
/// 64 KiB of it); a refusal before the body was read (401, 404, 405, 408,
/// 431) keeps nothing.
pub(crate) fn check_quarantined(
    rows: &[Map<String, Value>],
    status: u16,
    request: &Request,
    problems: &mut Vec<String>,
) {
    let expected =
        usize::from(matches!(status, 400 | 413) && request.method == reqwest::Method::POST);
    if rows.len() != expected {
        problems.push(format!(
            "{} quarantined body(ies), expected {expected}",
            rows.len()
        ));
        return;
    }
    let Some(row) = rows.first() else {
        return;
    };
    use base64::Engine as _;
    let kept = row["Body"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    let sent = request.body_start();
    if let Body::Bytes(body) = &request.body {
        // Declared too large, a body is refused unread: its length is kept.
        let expected: &[u8] = if status == 413 { &[] } else { body };
        if kept != expected {
            problems.push(format!(
                "the kept body ({} bytes) is not the one expected ({} of {} bytes sent)",
                kept.len(),
                expected.len(),
                sent.len()
            ));
        }
        if row["Length"].as_str() != Some(body.len().to_string().as_str()) {
            problems.push(format!(
                "kept length {}, sent {}",
                row["Length"],
                body.len()
            ));
        }
    }
    if row["Status"] != status {
        problems.push(format!(
            "kept with status {}, answered {status}",
            row["Status"]
        ));
    }
}

/// Keys come from time and hash only; every marker has its lead row, every
/// lead row its marker and its pending digest record (all written in one
/// transaction); refused bodies live apart, keyed by time.
pub(crate) fn check_keys_and_markers(rows: &[Map<String, Value>], problems: &mut Vec<String>) {
    let text = |row: &Map<String, Value>, column: &str| -> String {
        row.get(column)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    for row in rows {
        let (partition, row_key) = (text(row, "PartitionKey"), text(row, "RowKey"));
        if partition == QUARANTINE {
            if !shaped(&row_key, "R99999999T999999.999999Z-ffffffff") {
                problems.push(format!("quarantine RowKey {row_key:?} is not a time key"));
            }
            continue;
        }
        if !shaped(&partition, "9999-99-99") {
            problems.push(format!("PartitionKey {partition:?} is not a day"));
        }
        let shape = match row_key.chars().next() {
            Some('L') => "L99999999T999999.999999Z-ffffffffffffffff",
            Some('D') => "Dffffffffffffffff",
            Some('P') => "P.digest.L99999999T999999.999999Z-ffffffffffffffff",
            _ => "",
        };
        if !shaped(&row_key, shape) {
            problems.push(format!(
                "RowKey {row_key:?} is not a lead row or marker key"
            ));
        }
    }
    let find = |partition: &str, row_key: &str| {
        rows.iter()
            .find(|r| text(r, "PartitionKey") == partition && text(r, "RowKey") == row_key)
    };
    for row in rows {
        let (partition, row_key) = (text(row, "PartitionKey"), text(row, "RowKey"));
        if row_key.starts_with('D') {
            let lead_key = text(row, "LeadRowKey");
            match find(&partition, &lead_key) {
                None => problems.push(format!("marker {row_key} without its lead row {lead_key}")),
                Some(lead) if lead.get("LeadId") != row.get("LeadId") => {
                    problems.push(format!("marker {row_key} names another LeadId"));
                }
                Some(_) => {}
            }
        } else if row_key.starts_with('L') {
            let marker = format!("D{}", &row_key[row_key.len().saturating_sub(16)..]);
            if find(&partition, &marker).is_none() {
                problems.push(format!("lead row {row_key} without its marker"));
            }
            if find(&partition, &format!("P.digest.{row_key}")).is_none() {
                problems.push(format!(
                    "lead row {row_key} without its pending digest record"
                ));
            }
        } else if let Some(lead_key) = row_key.strip_prefix("P.digest.") {
            if find(&partition, lead_key).is_none() {
                problems.push(format!("pending record {row_key} without its lead row"));
            }
        }
    }
}

/// `9`: a digit, `f`: a lowercase hex digit, anything else: itself.
pub(crate) fn shaped(text: &str, shape: &str) -> bool {
    text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(c, s)| match s {
            '9' => c.is_ascii_digit(),
            'f' => c.is_ascii_digit() || ('a'..='f').contains(&c),
            _ => c == s,
        })
}

pub(crate) fn check_stored(
    rows: &[Map<String, Value>],
    request: &Request,
    columns: &[(&'static str, Column)],
    problems: &mut Vec<String>,
) {
    let starts = |prefix: char| {
        rows.iter()
            .filter(move |r| r["RowKey"].as_str().is_some_and(|k| k.starts_with(prefix)))
    };
    let leads: Vec<_> = starts('L').collect();
    if leads.len() != 1 || starts('D').count() != 1 || starts('P').count() != 1 || rows.len() != 3 {
        problems.push(format!(
            "{} rows, {} of them lead rows (expected one lead row, its marker and its \
             pending digest record)",
            rows.len(),
            leads.len()
        ));
    }
    let Some(row) = leads.first() else {
        return;
    };

    let raw: String = ["RawBody", "RawBody2", "RawBody3"]
        .iter()
        .map_while(|column| row.get(*column).and_then(Value::as_str))
        .collect();
    if raw.as_bytes() != request.body_start() {
        problems.push(format!(
            "the raw body columns hold {} bytes, not the {} sent",
            raw.len(),
            request.body_start().len()
        ));
    }
    for (name, value) in row.iter() {
        let units = value.as_str().map_or(0, |s| s.encode_utf16().count());
        if units > PROPERTY_LIMIT_UTF16 {
            problems.push(format!("{name} holds {units} UTF-16 units"));
        }
    }

    let mut truncated = std::collections::BTreeSet::new();
    for (name, column) in columns {
        let actual = row.get(*name).and_then(Value::as_str);
        match column {
            Column::Is(expected) if actual != Some(expected.as_str()) => problems.push(format!(
                "{name} is {} (expected {})",
                actual.map_or("absent".into(), show),
                show(expected)
            )),
            Column::Absent if row.contains_key(*name) => {
                problems.push(format!("{name} is present: {:?}", row[*name]));
            }
            Column::Present if actual.is_none() => problems.push(format!("{name} is absent")),
            Column::TruncatedFrom(original) => {
                truncated.insert(*name);
                let cut = actual.and_then(|a| a.strip_suffix(TRUNCATION_MARK));
                let units = actual.map_or(0, |a| a.encode_utf16().count());
                let fine = cut.is_some_and(|cut| original.starts_with(cut))
                    && (PROPERTY_LIMIT_UTF16 - 64..=PROPERTY_LIMIT_UTF16).contains(&units);
                if !fine {
                    problems.push(format!(
                        "{name} is not the value cut and marked: {}",
                        actual.map_or("absent".into(), show)
                    ));
                }
            }
            Column::JsonWithCutField(field, original) => {
                truncated.insert(*name);
                let json: Option<Value> = actual.and_then(|a| serde_json::from_str(a).ok());
                let value = json.as_ref().and_then(|j| j[*field].as_str());
                let cut = value.and_then(|v| v.strip_suffix(TRUNCATION_MARK));
                if !cut.is_some_and(|cut| !cut.is_empty() && original.starts_with(cut)) {
                    problems.push(format!(
                        "{name} is not JSON with {field} cut and marked: {}",
                        actual.map_or("absent".into(), show)
                    ));
                }
            }
            _ => {}
        }
    }
    let listed: std::collections::BTreeSet<&str> = row
        .get("TruncatedColumns")
        .and_then(Value::as_str)
        .map(|list| list.split(',').collect())
        .unwrap_or_default();
    if listed != truncated {
        problems.push(format!(
            "TruncatedColumns lists {listed:?}, expected {truncated:?}"
        ));
    }
}

/// A value for a message: long ones shortened.
pub(crate) fn show(text: &str) -> String {
    let count = text.chars().count();
    if count <= 80 {
        format!("{text:?}")
    } else {
        let start: String = text.chars().take(60).collect();
        format!("{start:?}… ({count} characters)")
    }
}

/// Panics anywhere in this test binary, counted: a case must cause none.
pub(crate) static PANICS: AtomicUsize = AtomicUsize::new(0);

pub(crate) fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn echo_check_finds_a_shared_run_of_bytes() {
        let body = br#"{"OfferTitle":"Contoso Analytics"}"#;
        assert_eq!(
            echoed(r#"{"error":"bad value Contoso Analytics"}"#, body).as_deref(),
            Some("Contoso Anal")
        );
        assert_eq!(echoed(r#"{"error":"body is not valid JSON"}"#, body), None);
    }

    #[test]
    fn key_and_marker_check_finds_orphans_and_unsafe_keys() {
        let row = |pairs: &[(&str, &str)]| -> Map<String, Value> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect()
        };
        let lead_key = "L20261122T101500.123456Z-0123456789abcdef";
        let lead = row(&[
            ("PartitionKey", "2026-11-22"),
            ("RowKey", lead_key),
            ("LeadId", "x"),
        ]);
        let marker = row(&[
            ("PartitionKey", "2026-11-22"),
            ("RowKey", "D0123456789abcdef"),
            ("LeadRowKey", lead_key),
            ("LeadId", "x"),
        ]);
        let pending = row(&[
            ("PartitionKey", "2026-11-22"),
            ("RowKey", &format!("P.digest.{lead_key}")),
            ("LeadRowKey", lead_key),
        ]);
        let kept = row(&[
            ("PartitionKey", "quarantine"),
            ("RowKey", "R20261122T101500.123456Z-0123abcd"),
        ]);
        let problems = |rows: &[Map<String, Value>]| {
            let mut problems = Vec::new();
            check_keys_and_markers(rows, &mut problems);
            problems
        };
        assert_eq!(
            problems(&[lead.clone(), marker.clone(), pending.clone(), kept]),
            Vec::<String>::new()
        );
        assert_eq!(
            problems(&[marker.clone(), pending.clone()]).len(),
            2,
            "marker and pending record without lead row"
        );
        assert_eq!(
            problems(&[lead.clone(), pending.clone()]).len(),
            1,
            "lead row without marker"
        );
        assert_eq!(
            problems(&[lead.clone(), marker.clone()]).len(),
            1,
            "lead row without its pending digest record"
        );
        let mut unsafe_key = lead.clone();
        unsafe_key.insert("RowKey".into(), json!("LO'Brien/#?"));
        assert!(!problems(&[unsafe_key]).is_empty());
    }
}
