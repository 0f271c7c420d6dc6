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

#[path = "api/helpers.rs"]
#[allow(dead_code)]
mod helpers;

use bytes::Bytes;
use futures::StreamExt;
use helpers::{shared_maildev, spawn_app, spawn_app_with, testdata, AppOptions, TestApp};
use marketplace_leads::digest::Outcome;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// The largest body accepted.
const LIMIT: usize = marketplace_leads::lead::MAX_BODY_BYTES;
const MIB: usize = 1024 * 1024;
/// Table storage's limit for a string property, in UTF-16 code units.
const PROPERTY_LIMIT_UTF16: usize = 32_000;
const TRUNCATION_MARK: &str = " …[truncated]";
const CUSTOMER_FIELDS: [&str; 7] = [
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "Country",
    "Company",
    "Title",
];

// What refusals say (a part of each message).
const NOT_JSON: &str = "not valid JSON";
const NOT_UTF8: &str = "not valid UTF-8";
const TOO_LARGE: &str = "larger than 65536 bytes";
const BAD_KEY: &str = "missing or wrong key";
const NO_METHOD: &str = "method not allowed";
const NO_ENDPOINT: &str = "no such endpoint";
/// A request that has not been answered by then counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Long enough that no error message could hold it by chance.
const ECHO_WINDOW: usize = 12;

/// A complete lead, compact (no trailing whitespace, so every proper prefix
/// is invalid JSON), with a two-byte character to cut through.
const LEAD: &str = r#"{"UserDetails":{"FirstName":"Zoë","LastName":"Nakamura","Email":"zoe@fabrikam.example","Phone":"+81 3-1234-5678","Country":"Japan","Company":"Fabrikam","Title":"CTO"},"LeadSource":"SPZA-PLT|fabrikam.analytics","ActionCode":"PLT","OfferTitle":"Contoso Analytics","Description":"Call me"}"#;

// ---------------------------------------------------------------------------
// Cases

struct Case {
    name: String,
    request: Request,
    expect: Expect,
}

enum Expect {
    /// Refused with this status; the error message contains the reason.
    Refused(u16, &'static str),
    /// Stored as one new lead (201) whose row holds these columns; the raw
    /// body columns always reassemble to the request body.
    Stored(Vec<(&'static str, Column)>),
}

enum Column {
    Is(String),
    Absent,
    Present,
    /// Cut to fit a property and marked (`TruncatedColumns` names it).
    TruncatedFrom(String),
    /// JSON that still parses after being shortened to fit (`CustomerInfo`):
    /// this field's value is the original cut and marked.
    JsonWithCutField(&'static str, String),
}

fn is(value: impl Into<String>) -> Column {
    Column::Is(value.into())
}

struct Request {
    method: Method,
    /// Path and query.
    path: String,
    headers: Vec<(&'static str, HeaderValue)>,
    body: Body,
}

enum Body {
    Bytes(Vec<u8>),
    /// `total` bytes streamed in chunks, no `Content-Length` (chunked).
    Chunked {
        total: usize,
    },
    /// `sent` bytes and then nothing, the connection held open; with
    /// `Content-Length: length` when given, chunked otherwise.
    Stalling {
        sent: usize,
        length: Option<usize>,
    },
}

impl Request {
    fn post(body: impl Into<Vec<u8>>) -> Self {
        Self::new(Method::POST, "/api/LeadIngest", Body::Bytes(body.into()))
    }

    /// `POST /api/LeadIngest` with a streamed body.
    fn streamed(body: Body) -> Self {
        Self::new(Method::POST, "/api/LeadIngest", body)
    }

    fn new(method: Method, path: &str, body: Body) -> Self {
        Self {
            method,
            path: path.to_owned(),
            headers: Vec::new(),
            body,
        }
    }

    fn header(mut self, name: &'static str, value: impl AsRef<[u8]>) -> Self {
        let value = HeaderValue::from_bytes(value.as_ref()).expect("a sendable header value");
        self.headers.push((name, value));
        self
    }

    fn query(mut self, query: &str) -> Self {
        self.path = format!("{}?{query}", self.path);
        self
    }

    /// The start of the body (all of it, unless it is huge): what an error
    /// message must not echo.
    fn body_start(&self) -> Vec<u8> {
        let bytes = match &self.body {
            Body::Bytes(bytes) => bytes.clone(),
            Body::Chunked { total } => streamed_bytes(*total),
            Body::Stalling { sent, .. } => streamed_bytes(*sent),
        };
        bytes[..bytes.len().min(LIMIT + 4096)].to_vec()
    }

    /// Values given as keys, which an answer must not echo either.
    fn keys_given(&self) -> Vec<String> {
        let from_header = self
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("x-functions-key"))
            .map(|(_, value)| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let query = self.path.split_once('?').map_or("", |(_, q)| q);
        let from_query = url::form_urlencoded::parse(query.as_bytes())
            .filter(|(name, _)| name == "code")
            .map(|(_, value)| value.into_owned());
        from_header
            .chain(from_query)
            .filter(|key| key.len() >= 4)
            .collect()
    }
}

fn refused(name: impl Into<String>, request: Request, status: u16, reason: &'static str) -> Case {
    Case {
        name: name.into(),
        request,
        expect: Expect::Refused(status, reason),
    }
}

/// `POST /api/LeadIngest` with this body is refused.
fn rejects(
    name: impl Into<String>,
    body: impl Into<Vec<u8>>,
    status: u16,
    reason: &'static str,
) -> Case {
    refused(name, Request::post(body), status, reason)
}

/// `POST /api/LeadIngest` with this body is stored.
fn stored(
    name: impl Into<String>,
    body: impl Into<Vec<u8>>,
    columns: Vec<(&'static str, Column)>,
) -> Case {
    stores(name, Request::post(body), columns)
}

fn stores(name: impl Into<String>, request: Request, columns: Vec<(&'static str, Column)>) -> Case {
    Case {
        name: name.into(),
        request,
        expect: Expect::Stored(columns),
    }
}

/// `{"<field>":"<value>"}` inside `UserDetails` when it is a customer field.
fn lead_with(field: &str, json_value: &str) -> String {
    if CUSTOMER_FIELDS.contains(&field) {
        format!(r#"{{"UserDetails":{{"{field}":{json_value}}},"OfferTitle":"O"}}"#)
    } else {
        format!(r#"{{"{field}":{json_value},"UserDetails":{{"FirstName":"F"}}}}"#)
    }
}

/// `CustomerInfo` as the store writes it, for a lead with only these fields.
fn customer_info(fields: &[(&str, &str)]) -> String {
    let mut info: Map<String, Value> = CUSTOMER_FIELDS
        .iter()
        .map(|name| ((*name).to_owned(), json!("")))
        .collect();
    for (name, value) in fields {
        info.insert((*name).to_owned(), json!(value));
    }
    Value::Object(info).to_string()
}

/// `{"OfferTitle":"O","Description":"ddd…"}` of exactly `size` bytes.
fn padded_lead(size: usize) -> String {
    format!(
        r#"{{"OfferTitle":"O","Description":"{}"}}"#,
        padding_for(size)
    )
}

fn padding_for(size: usize) -> String {
    let frame = r#"{"OfferTitle":"O","Description":""}"#.len();
    "d".repeat(size - frame)
}

fn body_cases() -> Vec<Case> {
    let mut cases = vec![
        rejects(
            "invalid JSON: Partner Center's FAQ sample (missing comma)",
            testdata("invalid-missing-comma.json"),
            400,
            NOT_JSON,
        ),
        rejects(
            "invalid JSON: single quotes",
            "{'OfferTitle':'O'}",
            400,
            NOT_JSON,
        ),
        rejects(
            "invalid JSON: trailing comma",
            r#"{"OfferTitle":"O",}"#,
            400,
            NOT_JSON,
        ),
        rejects(
            "invalid JSON: a second value after the object",
            format!("{LEAD} {LEAD}"),
            400,
            NOT_JSON,
        ),
        rejects(
            "invalid JSON: raw newline inside a string",
            "{\"Description\":\"line 1\nline 2\"}",
            400,
            NOT_JSON,
        ),
        rejects(
            "invalid JSON: raw U+0001 inside a string",
            "{\"Description\":\"a\u{1}b\"}",
            400,
            NOT_JSON,
        ),
        rejects(
            "invalid JSON: lone surrogate escape \\ud800",
            r#"{"OfferTitle":"\ud800"}"#,
            400,
            NOT_JSON,
        ),
        stores(
            "UTF-8 byte-order mark before the object: tolerated, kept in the raw body",
            Request::post([b"\xEF\xBB\xBF".as_slice(), LEAD.as_bytes()].concat()),
            vec![("FirstName", is("Zoë"))],
        ),
        stores(
            "x-functions-key not visible ASCII, no key required: ignored",
            Request::post(LEAD).header("x-functions-key", b"caf\xe9"),
            vec![("FirstName", is("Zoë"))],
        ),
        rejects("empty body", "", 400, "body is empty"),
        rejects("whitespace-only body", " \r\n\t ", 400, "body is empty"),
        rejects("empty JSON object", "{}", 400, "empty JSON object"),
        rejects(
            "JSON array holding a lead",
            format!("[{LEAD}]"),
            400,
            "must be a JSON object, not an array",
        ),
        rejects(
            "JSON number",
            "42",
            400,
            "must be a JSON object, not a number",
        ),
        rejects(
            "JSON string",
            r#""{\"OfferTitle\":\"O\"}""#,
            400,
            "must be a JSON object, not a string",
        ),
        rejects("JSON null", "null", 400, "must be a JSON object, not null"),
        rejects(
            "JSON true",
            "true",
            400,
            "must be a JSON object, not a boolean",
        ),
        rejects(
            "10,000 nested arrays",
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            400,
            NOT_JSON,
        ),
        refused(
            "10,000 nested objects",
            Request::post(format!(
                "{}1{}",
                r#"{"a":"#.repeat(10_000),
                "}".repeat(10_000)
            )),
            400,
            NOT_JSON,
        ),
        refused(
            "10,000 nested arrays inside a lead's Description",
            Request::post(format!(
                r#"{{"OfferTitle":"O","Description":{}{}}}"#,
                "[".repeat(10_000),
                "]".repeat(10_000)
            )),
            400,
            NOT_JSON,
        ),
        stored(
            "100 nested arrays in Description: kept as compact JSON text",
            format!(
                r#"{{"OfferTitle":"O","Description":{}1{}}}"#,
                "[".repeat(100),
                "]".repeat(100)
            ),
            vec![(
                "Description",
                is(format!("{}1{}", "[".repeat(100), "]".repeat(100))),
            )],
        ),
        rejects(
            "65 KiB body",
            format!(r#"{{"Description":"{}"}}"#, "x".repeat(65 * 1024)),
            413,
            TOO_LARGE,
        ),
        rejects(
            "65,537-byte body (one over the limit)",
            padded_lead(LIMIT + 1),
            413,
            TOO_LARGE,
        ),
        stored(
            "65,536-byte body (exactly the limit): raw body over three columns",
            padded_lead(LIMIT),
            vec![
                ("OfferTitle", is("O")),
                ("Description", Column::TruncatedFrom(padding_for(LIMIT))),
                ("RawBody3", Column::Present),
            ],
        ),
        rejects(
            "10 MiB body with Content-Length",
            vec![b'x'; 10 * MIB],
            413,
            TOO_LARGE,
        ),
        refused(
            "10 MiB chunked body, no Content-Length (Body::wrap_stream)",
            Request::streamed(Body::Chunked { total: 10 * MIB }),
            413,
            TOO_LARGE,
        ),
        refused(
            "Content-Length 10 MiB, body stalls after 16 KiB: refused from the header",
            Request::streamed(Body::Stalling {
                sent: 16 * 1024,
                length: Some(10 * MIB),
            }),
            413,
            TOO_LARGE,
        ),
        refused(
            "chunked body that never ends: refused once past the limit",
            Request::streamed(Body::Stalling {
                sent: 2 * LIMIT,
                length: None,
            }),
            413,
            TOO_LARGE,
        ),
        rejects(
            "invalid UTF-8: 0xFF in a string",
            b"{\"OfferTitle\":\"\xff\"}".to_vec(),
            400,
            NOT_UTF8,
        ),
        rejects(
            "invalid UTF-8: overlong encoding of '/'",
            b"{\"OfferTitle\":\"\xc0\xaf\"}".to_vec(),
            400,
            NOT_UTF8,
        ),
        rejects(
            "invalid UTF-8: encoded surrogate (CESU-8)",
            b"{\"OfferTitle\":\"\xed\xa0\x80\"}".to_vec(),
            400,
            NOT_UTF8,
        ),
        refused(
            "UTF-16LE body with its byte-order mark",
            Request::post(
                [0xFF, 0xFE]
                    .into_iter()
                    .chain(LEAD.encode_utf16().flat_map(u16::to_le_bytes))
                    .collect::<Vec<u8>>(),
            ),
            400,
            NOT_UTF8,
        ),
        stored(
            "escaped surrogate pair \\ud83d\\ude00 is one character",
            r#"{"OfferTitle":"\ud83d\ude00"}"#,
            vec![("OfferTitle", is("😀"))],
        ),
    ];

    // A valid lead cut short, anywhere, is refused; inside a character it is
    // not even UTF-8.
    let inside_e = LEAD.find('ë').expect("ë") + 1;
    for cut in [
        1,
        2,
        16,
        inside_e - 1,
        inside_e + 1,
        LEAD.len() / 2,
        LEAD.len() - 2,
        LEAD.len() - 1,
    ] {
        cases.push(rejects(
            format!("truncated body: first {cut} of {} bytes", LEAD.len()),
            &LEAD.as_bytes()[..cut],
            400,
            NOT_JSON,
        ));
    }
    cases.push(rejects(
        format!("truncated body: first {inside_e} bytes, inside 'ë'"),
        &LEAD.as_bytes()[..inside_e],
        400,
        NOT_UTF8,
    ));

    // Control characters are valid JSON when escaped, and stored as sent.
    for (escape, char) in [
        (r"\u0000", '\u{0}'),
        (r"\u0001", '\u{1}'),
        (r"\u001f", '\u{1f}'),
        (r"\u007f", '\u{7f}'),
        (r"\u009f", '\u{9f}'),
    ] {
        let first = format!("Ann{char}e");
        cases.push(stored(
            format!("control character {escape} in FirstName and Description"),
            format!(
                r#"{{"UserDetails":{{"FirstName":"Ann{escape}e"}},"Description":"{escape}","OfferTitle":"O"}}"#
            ),
            vec![
                ("FirstName", is(first.as_str())),
                ("Description", is(char)),
                ("CustomerInfo", is(customer_info(&[("FirstName", &first)]))),
            ],
        ));
    }
    cases.push(stored(
        "unescaped DEL and U+0085/U+009F (valid JSON), U+0085 at the ends trimmed",
        "{\"OfferTitle\":\"a\u{7f}b\u{9f}c\",\"Description\":\"\u{85}d\u{85}\"}",
        vec![
            ("OfferTitle", is("a\u{7f}b\u{9f}c")),
            ("Description", is("d")),
        ],
    ));

    // 40,000-character fields: cut and marked in the column, whole in the
    // raw body (checked for every stored case).
    let long = "d".repeat(40_000);
    cases.push(stored(
        "40,000-character Description",
        lead_with("Description", &format!("\"{long}\"")),
        vec![
            ("Description", Column::TruncatedFrom(long.clone())),
            ("FirstName", is("F")),
            ("RawBody2", Column::Present),
        ],
    ));
    cases.push(stored(
        "40,000-character FirstName: its column and CustomerInfo cut",
        lead_with("FirstName", &format!("\"{long}\"")),
        vec![
            ("FirstName", Column::TruncatedFrom(long.clone())),
            (
                "CustomerInfo",
                Column::JsonWithCutField("FirstName", long.clone()),
            ),
            ("OfferTitle", is("O")),
        ],
    ));
    cases.push(stored(
        "40,000-character OfferTitle: both offer columns cut",
        lead_with("OfferTitle", &format!("\"{long}\"")),
        vec![
            ("OfferTitle", Column::TruncatedFrom(long.clone())),
            ("OfferDisplayName", Column::TruncatedFrom(long.clone())),
        ],
    ));
    let emoji = "😀".repeat(16_100);
    cases.push(stored(
        "16,100 emoji (32,200 UTF-16 units) in Description: no pair split",
        lead_with("Description", &format!("\"{emoji}\"")),
        vec![("Description", Column::TruncatedFrom(emoji))],
    ));

    // Keys that differ only by case, duplicate keys, odd shapes.
    cases.extend([
        stored(
            "Email and email both present: the exact spelling wins",
            r#"{"UserDetails":{"email":"lower@x.example","Email":"exact@x.example"}}"#,
            vec![("Email", is("exact@x.example"))],
        ),
        stored(
            "blank Email, EMAIL and email: first non-blank in key order (EMAIL)",
            r#"{"UserDetails":{"Email":" ","email":"lower@x.example","EMAIL":"upper@x.example"}}"#,
            vec![("Email", is("upper@x.example"))],
        ),
        stored(
            "UserDetails and userDetails objects: the exact one wins, no merging",
            r#"{"userDetails":{"FirstName":"Lower"},"UserDetails":{"LastName":"Exact"}}"#,
            vec![("LastName", is("Exact")), ("FirstName", Column::Absent)],
        ),
        stored(
            r#"duplicate keys {"OfferTitle":"a","OfferTitle":"b"}: the last wins"#,
            r#"{"OfferTitle":"a","OfferTitle":"b"}"#,
            vec![("OfferTitle", is("b")), ("OfferDisplayName", is("b"))],
        ),
        stored(
            "duplicate keys inside UserDetails: the last wins",
            r#"{"UserDetails":{"Company":"first","Company":"second"}}"#,
            vec![("Company", is("second"))],
        ),
        stored(
            "UserDetails is a string: no customer columns, kept in the raw body",
            r#"{"UserDetails":"Ann Smith, ann@x.example","OfferTitle":"O"}"#,
            vec![
                ("OfferTitle", is("O")),
                ("FirstName", Column::Absent),
                ("Email", Column::Absent),
                ("CustomerInfo", is(customer_info(&[]))),
            ],
        ),
        stored(
            "5,000 unknown keys: no columns for them",
            format!(
                r#"{{"OfferTitle":"O",{}}}"#,
                (0..5_000)
                    .map(|i| format!(r#""k{i}":"v""#))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            vec![("OfferTitle", is("O")), ("k1", Column::Absent)],
        ),
    ]);

    // Characters that keys forbid, in every field: keys come from time and
    // content hash only (checked for every case), values stay intact.
    let nasty = r#"O'Brien #1 / R&D? C:\\temp\\ '' -- ' or 1 eq 1 or '"#;
    let nasty_value: String = serde_json::from_str(&format!("\"{nasty}\"")).expect("a JSON string");
    let user = CUSTOMER_FIELDS
        .iter()
        .map(|f| format!(r#""{f}":"{nasty}""#))
        .collect::<Vec<_>>()
        .join(",");
    let mut columns: Vec<(&'static str, Column)> = CUSTOMER_FIELDS
        .iter()
        .map(|f| (*f, is(nasty_value.as_str())))
        .collect();
    columns.extend([
        ("OfferTitle", is(nasty_value.as_str())),
        ("Description", is(nasty_value.as_str())),
        ("ActionCode", is(nasty_value.as_str())),
        ("LeadSource", is(format!("SPZA-PLT|{nasty_value}"))),
        ("LeadSourceOfferId", is(nasty_value.as_str())),
    ]);
    cases.push(stored(
        r#"' # / ? \ in every field: intact in columns, keys plain"#,
        format!(
            r#"{{"UserDetails":{{{user}}},"LeadSource":"SPZA-PLT|{nasty}","ActionCode":"{nasty}","OfferTitle":"{nasty}","Description":"{nasty}"}}"#
        ),
        columns,
    ));
    cases
}

fn method_cases() -> Vec<Case> {
    let mut cases: Vec<Case> = [
        Method::GET,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ]
    .into_iter()
    .map(|method| {
        refused(
            format!("{method} /api/LeadIngest with a lead"),
            Request::new(method, "/api/LeadIngest", Body::Bytes(LEAD.into())),
            405,
            NO_METHOD,
        )
    })
    .collect();
    cases.extend([
        refused(
            "POST /",
            Request::new(Method::POST, "/", Body::Bytes(LEAD.into())),
            405,
            NO_METHOD,
        ),
        refused(
            "POST /api/Nope",
            Request::new(Method::POST, "/api/Nope", Body::Bytes(LEAD.into())),
            404,
            NO_ENDPOINT,
        ),
        refused(
            "GET /api/Nope",
            Request::new(Method::GET, "/api/Nope", Body::Bytes(Vec::new())),
            404,
            NO_ENDPOINT,
        ),
        refused(
            "POST /api/LeadIngest/extra",
            Request::new(
                Method::POST,
                "/api/LeadIngest/extra",
                Body::Bytes(LEAD.into()),
            ),
            404,
            NO_ENDPOINT,
        ),
        refused(
            "POST /api/LeadIngest/../../etc/passwd (encoded)",
            Request::new(
                Method::POST,
                "/api/LeadIngest/..%2F..%2Fetc%2Fpasswd",
                Body::Bytes(LEAD.into()),
            ),
            404,
            NO_ENDPOINT,
        ),
    ]);
    cases
}

/// Requests handled wrongly today, each with the fix in its name. Not run
/// by default: `cargo test --test hostile -- --ignored` shows them failing;
/// move a case into its table once fixed.
fn known_gap_cases() -> Vec<Case> {
    vec![refused(
        "101 headers: hyper answers 431 itself, with an empty body, not JSON",
        (0..101).fold(Request::post(LEAD), |request, i| {
            request.header(HEADER_NAMES[i % HEADER_NAMES.len()], format!("v{i}"))
        }),
        431,
        "",
    )]
}

/// Header names to repeat (a name may appear many times).
const HEADER_NAMES: [&str; 4] = ["x-a", "x-b", "x-c", "x-d"];

#[tokio::test]
#[ignore = "known gap: hyper answers 431 itself, before our handler"]
async fn known_gaps() {
    run_table("known gap", known_gap_cases(), None).await;
}

const KEY: &str = "s3cret-Key-0123456789";

fn key_cases() -> Vec<Case> {
    let post = || Request::post(LEAD);
    let ok = || vec![("FirstName", is("Zoë")), ("Company", is("Fabrikam"))];
    let same_length_wrong = "s3cret-Key-0123456788";
    vec![
        refused("no key", post(), 401, BAD_KEY),
        refused(
            "wrong ?code= of the same length",
            post().query(&format!("code={same_length_wrong}")),
            401,
            BAD_KEY,
        ),
        refused(
            "wrong x-functions-key of the same length",
            post().header("x-functions-key", same_length_wrong),
            401,
            BAD_KEY,
        ),
        refused(
            "?code= a prefix of the key",
            post().query(&format!("code={}", &KEY[..10])),
            401,
            BAD_KEY,
        ),
        refused(
            "?code= the key plus one character",
            post().query(&format!("code={KEY}0")),
            401,
            BAD_KEY,
        ),
        refused(
            "x-functions-key the key plus one character",
            post().header("x-functions-key", format!("{KEY}0")),
            401,
            BAD_KEY,
        ),
        refused("empty ?code=", post().query("code="), 401, BAD_KEY),
        refused("?code without a value", post().query("code"), 401, BAD_KEY),
        refused(
            "empty x-functions-key",
            post().header("x-functions-key", ""),
            401,
            BAD_KEY,
        ),
        refused(
            "key under another parameter name (?key=)",
            post().query(&format!("key={KEY}")),
            401,
            BAD_KEY,
        ),
        refused(
            "?code=wrong&code=<key>: only the first code counts",
            post().query(&format!("code=not-the-key-000&code={KEY}")),
            401,
            BAD_KEY,
        ),
        refused(
            "wrong key with a 10 MiB body: 401 before the body",
            Request::streamed(Body::Stalling {
                sent: 16 * 1024,
                length: Some(10 * MIB),
            })
            .query("code=not-the-key-000"),
            401,
            BAD_KEY,
        ),
        refused(
            "right key, invalid body",
            Request::post("{\"OfferTitle\":").query(&format!("code={KEY}")),
            400,
            NOT_JSON,
        ),
        stores(
            "right key in ?code=",
            post().query(&format!("code={KEY}")),
            ok(),
        ),
        stores(
            "right key in x-functions-key",
            post().header("x-functions-key", KEY),
            ok(),
        ),
        stores(
            "right key in X-FUNCTIONS-KEY (header names ignore case)",
            post().header("X-FUNCTIONS-KEY", KEY),
            ok(),
        ),
        stores(
            "right key in both",
            post()
                .query(&format!("code={KEY}"))
                .header("x-functions-key", KEY),
            ok(),
        ),
        stores(
            "right header, wrong ?code=: either one suffices",
            post()
                .query("code=not-the-key-000")
                .header("x-functions-key", KEY),
            ok(),
        ),
        stores(
            "right key percent-encoded in ?code=",
            post().query("code=s3cret%2DKey%2D0123456789"),
            ok(),
        ),
    ]
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

/// Runs every case against its own application and fails with the whole
/// table (case, status, problems) if any case failed.
async fn run_table(table: &str, cases: Vec<Case>, key: Option<&str>) {
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
async fn run_case(app: &TestApp, case: &Case, key: Option<&str>) -> (String, Vec<String>) {
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
    match &case.expect {
        Expect::Refused(..) if !rows.is_empty() => {
            problems.push(format!(
                "{} row(s) stored for a refused request",
                rows.len()
            ));
        }
        Expect::Refused(..) => {}
        Expect::Stored(columns) => check_stored(&rows, &case.request, columns, &mut problems),
    }
    (status, problems)
}

struct Answer {
    status: u16,
    content_type: String,
    text: String,
    /// For streamed bodies: how much of the body the client had to send.
    pulled: Option<usize>,
}

async fn send(app: &TestApp, request: &Request) -> Result<Answer, String> {
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
fn streamed_bytes(total: usize) -> Vec<u8> {
    let mut bytes = br#"{"Description":""#.to_vec();
    bytes.resize(total, b'x');
    bytes
}

/// The body as a stream of 16 KiB chunks, counting what the client sent;
/// `stall`: then it neither ends nor sends more.
fn streamed_body(total: usize, stall: bool, pulled: Arc<AtomicUsize>) -> reqwest::Body {
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
fn check_answer(
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
fn echoed(answer: &str, body: &[u8]) -> Option<String> {
    let windows: std::collections::HashSet<&[u8]> =
        answer.as_bytes().windows(ECHO_WINDOW).collect();
    body.windows(ECHO_WINDOW)
        .find(|window| windows.contains(window))
        .map(|window| String::from_utf8_lossy(window).into_owned())
}

/// Keys come from time and hash only; every marker has its lead row and
/// every lead row its marker (they are written in one transaction).
fn check_keys_and_markers(rows: &[Map<String, Value>], problems: &mut Vec<String>) {
    let text = |row: &Map<String, Value>, column: &str| -> String {
        row.get(column)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    for row in rows {
        let (partition, row_key) = (text(row, "PartitionKey"), text(row, "RowKey"));
        if !shaped(&partition, "9999-99-99") {
            problems.push(format!("PartitionKey {partition:?} is not a day"));
        }
        let shape = match row_key.chars().next() {
            Some('L') => "L99999999T999999.999999Z-ffffffffffffffff",
            Some('D') => "Dffffffffffffffff",
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
        }
    }
}

/// `9`: a digit, `f`: a lowercase hex digit, anything else: itself.
fn shaped(text: &str, shape: &str) -> bool {
    text.len() == shape.len()
        && text.chars().zip(shape.chars()).all(|(c, s)| match s {
            '9' => c.is_ascii_digit(),
            'f' => c.is_ascii_digit() || ('a'..='f').contains(&c),
            _ => c == s,
        })
}

fn check_stored(
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
    if leads.len() != 1 || starts('D').count() != 1 || rows.len() != 2 {
        problems.push(format!(
            "{} rows, {} of them lead rows (expected one lead row and its marker)",
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
fn show(text: &str) -> String {
    let count = text.chars().count();
    if count <= 80 {
        format!("{text:?}")
    } else {
        let start: String = text.chars().take(60).collect();
        format!("{start:?}… ({count} characters)")
    }
}

/// Panics anywhere in this test binary, counted: a case must cause none.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
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

/// Leads whose every field tries to become markup, a mail header, an SMTP
/// command or a control character in the digest.
fn hostile_leads() -> Vec<Value> {
    let markup = [
        "<script>alert('FirstName')</script>",
        "<img src=x onerror=alert('LastName')>",
        "\"><svg onload=alert(1)>@evil.example",
        "<a href=\"javascript:alert(1)\">call</a>",
        "</td></tr></table><script>alert(2)</script>",
        "<iframe src=\"//evil.example\"></iframe>",
        "<body onload=alert(3)>",
    ];
    let crlf = |field: &str| {
        format!(
            "x\r\nBcc: injected-{field}@evil.example\r\nX-Injected: {field}\r\nSubject: injected\r\n\r\n<b>part</b>"
        )
    };
    let user = |values: &dyn Fn(usize, &str) -> String| -> Map<String, Value> {
        CUSTOMER_FIELDS
            .iter()
            .enumerate()
            .map(|(i, f)| ((*f).to_owned(), json!(values(i, f))))
            .collect()
    };
    vec![
        json!({
            "UserDetails": user(&|i, _| markup[i].to_owned()),
            "LeadSource": "SPZA-PLT|<script>alert(4)</script>",
            "ActionCode": "<img src=x onerror=alert(5)>",
            "OfferTitle": "<style>*{display:none}</style>",
            "Description": "{{ v.subject }} {% if true %}x{% endif %} <!-- ]]> <![CDATA[ onerror=alert(6) ]]>",
        }),
        json!({
            "UserDetails": user(&|_, f| crlf(f)),
            "LeadSource": crlf("LeadSource"),
            "ActionCode": crlf("ActionCode"),
            "OfferTitle": crlf("OfferTitle"),
            "Description": crlf("Description"),
        }),
        json!({
            "UserDetails": {"FirstName": "Smuggler", "LastName": "lf\n.\nlone-lf-dot", "Company": "cr\r.\rlone-cr-dot"},
            "OfferTitle": "O",
            "Description": "hello\r\n.\r\nMAIL FROM:<smuggler@evil.example>\r\nRCPT TO:<smuggled@evil.example>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\nafter-the-dot",
        }),
        json!({
            "UserDetails": {"FirstName": "Nul\u{0}Ctl\u{1}\u{1f}\u{7f}\u{9f}end", "Company": "\u{0}"},
            "OfferTitle": "Control",
            "Description": "bell\u{7} escape\u{1b}[31m backspace\u{8}",
        }),
    ]
}

#[tokio::test]
async fn hostile_text_reaches_no_mail_header_and_no_markup() {
    watch_panics();
    let panics_before = PANICS.load(Ordering::SeqCst);
    let app = spawn_app().await;
    let maildev = shared_maildev();
    let leads = hostile_leads();
    for lead in &leads {
        let response = app.post_lead(lead.to_string()).await;
        assert_eq!(response.status(), 201, "{lead}");
    }

    // Stored as sent (trimmed), not escaped: escaping is the reader's job.
    let rows = app.lead_rows().await;
    assert_eq!(rows.len(), leads.len());
    for lead in &leads {
        let row = rows
            .iter()
            .find(|r| r["RawBody"].as_str() == Some(lead.to_string().as_str()))
            .unwrap_or_else(|| panic!("a row for {lead}"));
        for field in CUSTOMER_FIELDS {
            if let Some(value) = lead["UserDetails"][field].as_str() {
                assert_eq!(row[field], value.trim(), "{field} of {lead}");
            }
        }
        for (field, column) in [("Description", "Description"), ("OfferTitle", "OfferTitle")] {
            assert_eq!(row[column], lead[field].as_str().unwrap().trim());
        }
    }

    let report = app.run_digest().await.expect("digest run");
    assert!(matches!(report.outcome, Outcome::Sent { .. }), "{report:?}");
    assert_eq!(report.lead_count, leads.len());

    let emails = maildev.emails_to(&app.recipient).await;
    assert_eq!(emails.len(), 1, "one digest, nothing split off");
    let email = &emails[0];

    // Headers: ours only.
    let subject = email["subject"].as_str().unwrap();
    assert!(
        subject.starts_with("4 new marketplace leads · "),
        "{subject}"
    );
    assert_eq!(email["to"].as_array().map(Vec::len), Some(1), "{email}");
    for list in ["cc", "bcc"] {
        assert!(
            email[list].as_array().is_none_or(Vec::is_empty),
            "{list}: {email}"
        );
    }
    let source = message_source(email).await;
    let headers = &source[..source.find("\r\n\r\n").expect("a header block")];
    for canary in [
        "evil.example",
        "injected",
        "Injected",
        "smuggled",
        "<script",
    ] {
        assert!(
            !headers.contains(canary),
            "{canary} in the headers:\n{headers}"
        );
    }
    assert!(
        email["headers"]
            .as_object()
            .is_some_and(|h| !h.keys().any(|k| k.eq_ignore_ascii_case("x-injected"))),
        "{}",
        email["headers"]
    );
    // No second message smuggled through SMTP, to anyone.
    let everything: Vec<Value> =
        reqwest::get(format!("http://127.0.0.1:{}/email", maildev.web_port))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    for other in &everything {
        let recipients = format!(
            "{} {} {} {}",
            other["to"], other["cc"], other["bcc"], other["envelope"]
        );
        assert!(!recipients.contains("evil.example"), "{other}");
    }
    assert!(
        email["attachments"].as_array().is_none_or(Vec::is_empty),
        "no extra MIME parts: {}",
        email["attachments"]
    );

    // HTML: customer text only ever as escaped text.
    let html = email["html"].as_str().unwrap();
    for tag in tags(html) {
        let name = tag
            .trim_start_matches(['<', '/'])
            .split(|c: char| c.is_whitespace() || c == '>' || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        assert!(ALLOWED_TAGS.contains(&name.as_str()), "tag {tag}");
        let lower = tag.to_ascii_lowercase();
        for word in ["script", "onerror", "onload", "javascript:", "evil.example"] {
            assert!(!lower.contains(word), "{word} inside the tag {tag}");
        }
        if name == "a" {
            assert!(lower.starts_with("<a href=\"mailto:"), "{tag}");
        }
    }
    assert!(
        html.contains("&lt;script&gt;alert("),
        "customer text is shown"
    );
    assert!(html.contains("onerror=alert("), "as text");
    assert!(
        html.contains("{{ v.subject }}"),
        "template syntax is plain text"
    );

    // The plain part is whole: the lone dots did not end the message.
    let text = email["text"].as_str().unwrap();
    for shown in ["after-the-dot", "lone-lf-dot", "lone-cr-dot", "Nul", "end"] {
        assert!(text.contains(shown), "{shown} missing from:\n{text}");
    }

    let ready = app.client.get(&app.address).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        panics_before,
        "nothing panicked"
    );
    app.stop().await;
}

/// Every tag the digest template writes.
const ALLOWED_TAGS: [&str; 18] = [
    "!doctype", "html", "head", "meta", "title", "body", "h1", "h2", "table", "thead", "tbody",
    "tr", "th", "td", "a", "p", "strong", "code",
];

/// Every `<…>` in an HTML text.
fn tags(html: &str) -> Vec<&str> {
    let mut tags = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..]
            .find('>')
            .map_or(rest.len(), |e| start + e + 1);
        tags.push(&rest[start..end]);
        rest = &rest[end..];
    }
    tags
}

/// The message as MailDev received it, headers and all.
async fn message_source(email: &Value) -> String {
    let id = email["id"].as_str().unwrap();
    reqwest::get(format!(
        "http://127.0.0.1:{}/email/{id}/source",
        shared_maildev().web_port
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------
// The checks themselves: each one can fail.

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
    let problems = |rows: &[Map<String, Value>]| {
        let mut problems = Vec::new();
        check_keys_and_markers(rows, &mut problems);
        problems
    };
    assert_eq!(
        problems(&[lead.clone(), marker.clone()]),
        Vec::<String>::new()
    );
    assert_eq!(
        problems(std::slice::from_ref(&marker)).len(),
        1,
        "marker without lead row"
    );
    assert_eq!(
        problems(std::slice::from_ref(&lead)).len(),
        1,
        "lead row without marker"
    );
    let mut unsafe_key = lead.clone();
    unsafe_key.insert("RowKey".into(), json!("LO'Brien/#?"));
    assert!(!problems(&[unsafe_key]).is_empty());
}

#[test]
fn tag_scan_sees_every_tag() {
    let html = "<p>a &lt;b&gt; <a href=\"mailto:x@y.z\">x</a></p>";
    assert_eq!(
        tags(html),
        ["<p>", "<a href=\"mailto:x@y.z\">", "</a>", "</p>"]
    );
}
