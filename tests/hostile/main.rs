//! Hostile and broken input against `POST /api/LeadIngest`, table-driven,
//! against a real Azurite (and a real MailDev for the digest) started by the
//! API tests' harness, in a test binary of its own.
//!
//! Every case is a request and what must follow it: the status (with the
//! reason, for a refusal) and what the leads table holds afterwards, read
//! back with a plain client. Every case also checks what holds after any
//! request: a refusal is `{"error": "..."}` JSON that echoes neither the body
//! nor a key; the server still answers `GET /`; nothing panicked; keys are
//! plain; every de-duplication marker has its lead row and every lead row
//! its marker. Each case gets a fresh application with its own tables.

mod cases;
mod digest;
mod harness;

use cases::{body_cases, key_cases, known_gap_cases, method_cases, KEY};
use harness::{run_table, watch_panics, PANICS};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;
use testkit::{spawn_app, spawn_app_with, testdata, AppOptions, TestApp};

/// The largest body accepted.
pub(crate) const LIMIT: usize = marketplace_leads::domain::MAX_BODY_BYTES;
pub(crate) const MIB: usize = 1024 * 1024;
/// Table storage's limit for a string property, in UTF-16 code units.
pub(crate) const PROPERTY_LIMIT_UTF16: usize = 32_000;
pub(crate) const TRUNCATION_MARK: &str = " …[truncated]";
pub(crate) const CUSTOMER_FIELDS: [&str; 7] = [
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "Country",
    "Company",
    "Title",
];

// What refusals say (a part of each message).
pub(crate) const NOT_JSON: &str = "not valid JSON";
pub(crate) const NOT_UTF8: &str = "not valid UTF-8";
pub(crate) const TOO_LARGE: &str = "larger than 65536 bytes";
pub(crate) const BAD_KEY: &str = "missing or wrong key";
pub(crate) const NO_METHOD: &str = "method not allowed";
pub(crate) const NO_ENDPOINT: &str = "no such endpoint";
/// A request that has not been answered by then counts as hung.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough that no error message could hold it by chance.
pub(crate) const ECHO_WINDOW: usize = 12;

/// A complete lead, compact (no trailing whitespace, so every proper prefix
/// is invalid JSON), with a two-byte character to cut through.
pub(crate) const LEAD: &str = r#"{"UserDetails":{"FirstName":"Zoë","LastName":"Nakamura","Email":"zoe@fabrikam.example","Phone":"+81 3-1234-5678","Country":"Japan","Company":"Fabrikam","Title":"CTO"},"LeadSource":"SPZA-PLT|fabrikam.analytics","ActionCode":"PLT","OfferTitle":"Contoso Analytics","Description":"Call me"}"#;

#[tokio::test]
#[ignore = "known gap: beyond 1,000 headers hyper answers 431 itself, before our handler"]
async fn known_gaps() {
    run_table("known gap", known_gap_cases(), None).await;
}

// ---------------------------------------------------------------------------
// Tables

#[tokio::test]
async fn hostile_and_broken_bodies() {
    run_table("body", body_cases(), None).await;
}

#[tokio::test]
async fn wrong_methods_and_paths() {
    run_table("method and path", method_cases(), None).await;
}

#[tokio::test]
async fn standalone_key_checks() {
    run_table("standalone key", key_cases(), Some(KEY)).await;
}

/// A 405 says which method the endpoint takes.
#[tokio::test]
async fn method_not_allowed_says_what_is() {
    let app = spawn_app().await;
    for (path, allow) in [
        ("/api/LeadIngest", "POST"),
        ("/LeadDigest", "POST"),
        ("/", "GET"),
    ] {
        let response = app
            .client
            .put(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{path}");
        assert_eq!(response.headers()["allow"], allow, "{path}");
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Beyond one request

/// With a key twice, the last value wins, and the lead is the parsed value:
/// its fingerprint is that of the body without the overridden value.
#[tokio::test]
async fn duplicate_keys_the_last_wins_and_identifies_the_lead() {
    let app = spawn_app().await;
    let first = app
        .post_lead(r#"{"OfferTitle":"a","OfferTitle":"b"}"#)
        .await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();

    let same = app.post_lead(r#"{"OfferTitle":"b"}"#).await;
    assert_eq!(same.status(), 200, "the same lead as parsed");
    let same: Value = same.json().await.unwrap();
    assert_eq!(same["status"], "duplicate");
    assert_eq!(same["id"], first["id"]);

    let swapped = app
        .post_lead(r#"{"OfferTitle":"b","OfferTitle":"a"}"#)
        .await;
    assert_eq!(swapped.status(), 201, "parsed as \"a\": another lead");

    let rows = app.lead_rows().await;
    let mut titles: Vec<_> = rows
        .iter()
        .map(|r| r["OfferTitle"].as_str().unwrap())
        .collect();
    titles.sort();
    assert_eq!(titles, ["a", "b"]);
    let raw = rows.iter().find(|r| r["OfferTitle"] == "b").unwrap()["RawBody"].clone();
    assert_eq!(
        raw, r#"{"OfferTitle":"a","OfferTitle":"b"}"#,
        "first body kept"
    );
    app.stop().await;
}
