//! Logging: `tracing` to stdout, which the Functions host forwards to its
//! logs and Application Insights. `RUST_LOG` sets the level (default `info`).
//! Customer data is never logged at `info`.
//!
//! Every line passes through [`redact`] on its way out: the storage SDK logs
//! request URLs at `debug`, and a SAS token's `sig=` (or any other
//! credential a dependency prints) must never reach a log.

use std::io::{self, Write};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let (filter, problem) = log_filter(std::env::var("RUST_LOG").ok().as_deref(), "info");
    // The host adds its own timestamps and colours are noise in its logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(Redacting(io::stdout))
        .try_init();
    if let Some(problem) = problem {
        tracing::warn!("setting RUST_LOG: {problem}");
    }
}

/// For commands whose stdout is their output (`leads list`, `leads
/// export`, `digest --dry-run`): logs go to stderr, warnings and errors
/// only unless `RUST_LOG` says otherwise.
pub fn init_stderr() {
    let (filter, problem) = log_filter(std::env::var("RUST_LOG").ok().as_deref(), "warn");
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(io::stderr))
        .with_target(false)
        .try_init();
    if let Some(problem) = problem {
        tracing::warn!("setting RUST_LOG: {problem}");
    }
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// The log filter `RUST_LOG` asks for (blank or unset: `default`), and
/// what is wrong with it: a filter that does not parse is replaced by
/// `default`; a bare word that is not a level (`infoo`) parses, as a
/// module's name, and would silently turn off every other log.
fn log_filter(value: Option<&str>, default: &str) -> (EnvFilter, Option<String>) {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return (EnvFilter::new(default), None);
    };
    let not_levels: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && !d.contains(['=', '[', ':']))
        .filter(|d| !LEVELS.iter().any(|l| l.eq_ignore_ascii_case(d)))
        .collect();
    if !not_levels.is_empty() {
        return (
            EnvFilter::new(default),
            Some(format!(
                "{} is not a level ({}); logging at {default}",
                not_levels.join(", "),
                LEVELS.join(", ")
            )),
        );
    }
    match EnvFilter::builder().parse(value) {
        Ok(filter) => (filter, None),
        Err(e) => (
            EnvFilter::new(default),
            Some(format!("is not a log filter ({e}); logging at {default}")),
        ),
    }
}

/// Query parameters, settings and JSON members whose value is a
/// credential (the key before its `=` or `":`, compared without regard to
/// ASCII case).
const SECRET_KEYS: [&str; 13] = [
    "sig",
    "signature",
    "accountkey",
    "accesskey",
    "sharedaccesssignature",
    "code",
    "access_token",
    "refresh_token",
    "client_secret",
    "client_id",
    "password",
    "token",
    "api_key",
];

/// Authorization schemes whose credential follows them.
const SCHEMES: [&[u8]; 4] = [b"bearer ", b"basic ", b"sharedkey ", b"sharedkeylite "];

/// `line` with every credential-looking value replaced by `REDACTED`: the
/// value of a credential `key=value` (a SAS `sig=`, an `AccountKey=`, a
/// function key's `code=`) or JSON member (`"access_token": "…"`), the
/// credential after `Bearer`, `Basic` and `SharedKey`, a JSON Web Token
/// anywhere, and the user information of a URL (`https://user:pass@…`).
///
/// One pass, no allocation for a clean line: it runs on every log line, so
/// it looks only at the word before each `=` or `:`, at words starting with
/// a scheme's letter and at `eyJ`.
pub fn redact(line: &str) -> std::borrow::Cow<'_, str> {
    let bytes = line.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let value_end = |start: usize| {
        bytes[start..]
            .iter()
            .position(|&b| {
                matches!(
                    b,
                    b'&' | b';' | b'\'' | b'"' | b',' | b')' | b']' | b'}' | b'\\'
                ) || b.is_ascii_whitespace()
            })
            .map_or(bytes.len(), |n| start + n)
    };
    let is_secret_key = |key: &str| SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key));
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (at, &b) in bytes.iter().enumerate() {
        let span = match b {
            b'=' => {
                // The key is the word right before `=`, whole: `sig=` but
                // not `xsig=`.
                let key_start = bytes[..at]
                    .iter()
                    .rposition(|&b| !is_word(b))
                    .map_or(0, |n| n + 1);
                if !is_secret_key(&line[key_start..at]) {
                    continue;
                }
                (at + 1, value_end(at + 1))
            }
            // `"key": "value"`, `"key":"value"`, and the same escaped
            // inside a JSON string (`\"key\":\"value\"`).
            b':' if at > 0 && bytes[at - 1] == b'"' => {
                let key_end = if at > 1 && bytes[at - 2] == b'\\' {
                    at - 2
                } else {
                    at - 1
                };
                let key_start = bytes[..key_end]
                    .iter()
                    .rposition(|&b| !is_word(b))
                    .map_or(0, |n| n + 1);
                if key_start == 0 || bytes[key_start - 1] != b'"' {
                    continue;
                }
                // A JSON `code` is an error code (Dataverse's
                // `"code": "0x80040220"`), not a function key.
                let key = &line[key_start..key_end];
                if !is_secret_key(key) || key.eq_ignore_ascii_case("code") {
                    continue;
                }
                let mut start = at + 1;
                while bytes.get(start).is_some_and(|b| b.is_ascii_whitespace()) {
                    start += 1;
                }
                if bytes.get(start) == Some(&b'\\') {
                    start += 1;
                }
                if bytes.get(start) != Some(&b'"') {
                    continue;
                }
                (start + 1, value_end(start + 1))
            }
            // `://user:pass@host`: everything between `//` and `@`.
            b':' if bytes.get(at + 1..at + 3) == Some(b"//") => {
                let start = at + 3;
                let end = value_end(start);
                let Some(userinfo) = bytes[start..end]
                    .iter()
                    .take_while(|&&b| b != b'/' && b != b'?' && b != b'#')
                    .position(|&b| b == b'@')
                else {
                    continue;
                };
                (start, start + userinfo)
            }
            b'b' | b'B' | b's' | b'S' if at == 0 || !is_word(bytes[at - 1]) => {
                let Some(scheme) = SCHEMES.iter().find(|scheme| {
                    bytes
                        .get(at..at + scheme.len())
                        .is_some_and(|word| word.eq_ignore_ascii_case(scheme))
                }) else {
                    continue;
                };
                let start = at + scheme.len();
                (start, value_end(start))
            }
            b'e' if (at == 0 || !is_word(bytes[at - 1]))
                && bytes.get(at..at + 3) == Some(b"eyJ") =>
            {
                // A JSON Web Token: base64url header `{"` …, then a dot.
                let end = bytes[at..]
                    .iter()
                    .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
                    .map_or(bytes.len(), |n| at + n);
                if !line[at..end].contains('.') {
                    continue;
                }
                (at, end)
            }
            _ => continue,
        };
        let (start, end) = span;
        if end > start && spans.last().is_none_or(|&(_, last)| start >= last) {
            spans.push((start, end));
        }
    }
    if spans.is_empty() {
        return line.into();
    }
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for (start, end) in spans {
        out.push_str(&line[at..start]);
        out.push_str("REDACTED");
        at = end;
    }
    out.push_str(&line[at..]);
    out.into()
}

/// A writer that redacts each log line before it reaches `make`'s writer.
struct Redacting<F>(F);

impl<'a, F, W> MakeWriter<'a> for Redacting<F>
where
    F: Fn() -> W + 'static,
    W: Write,
{
    type Writer = RedactingWriter<W>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingWriter {
            inner: (self.0)(),
            buffer: Vec::new(),
        }
    }
}

/// Collects one event, then writes it redacted (on drop, as `tracing`
/// writes each event through a fresh writer).
struct RedactingWriter<W: Write> {
    inner: W,
    buffer: Vec<u8>,
}

impl<W: Write> Write for RedactingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&self.buffer);
        self.inner.write_all(redact(&text).as_bytes())?;
        self.buffer.clear();
        self.inner.flush()
    }
}

impl<W: Write> Drop for RedactingWriter<W> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marketo's token request carries the client id in its query, which
    /// the HTTP client logs at debug.
    #[test]
    fn client_ids_in_urls_are_masked() {
        let line = "GET https://123-abc-456.mktorest.com/identity/oauth/token?grant_type=client_credentials&client_id=5f1e2d3c-fake&client_secret=s3cret";
        let masked = redact(line);
        assert!(
            !masked.contains("5f1e2d3c") && !masked.contains("s3cret"),
            "{masked}"
        );
        assert!(masked.contains("grant_type=client_credentials"), "{masked}");
    }

    #[test]
    fn a_log_filter_that_would_log_nothing_is_named() {
        for fine in [
            None,
            Some(""),
            Some(" "),
            Some("info"),
            Some("WARN"),
            Some("info,marketplace_leads=debug"),
        ] {
            assert_eq!(log_filter(fine, "info").1, None, "{fine:?}");
        }
        let (filter, problem) = log_filter(Some("infoo"), "info");
        assert_eq!(filter.to_string(), "info");
        let problem = problem.unwrap();
        assert!(
            problem.starts_with("infoo is not a level (trace, debug, info"),
            "{problem}"
        );
        let (filter, problem) = log_filter(Some("x=notalevel"), "warn");
        assert_eq!(filter.to_string(), "warn");
        assert!(problem.unwrap().contains("is not a log filter"));
    }

    #[test]
    fn credentials_are_redacted_wherever_they_appear() {
        assert_eq!(
            redact("POST 'http://h/T?sv=2022&sig=c2VjcmV0%3D&se=x' with reqwest"),
            "POST 'http://h/T?sv=2022&sig=REDACTED&se=x' with reqwest"
        );
        assert_eq!(
            redact(r#"{"sas": "sp=r&SIG=abc"}"#),
            r#"{"sas": "sp=r&SIG=REDACTED"}"#
        );
        assert_eq!(
            redact("AccountName=a;AccountKey=a2V5;EndpointSuffix=x"),
            "AccountName=a;AccountKey=REDACTED;EndpointSuffix=x"
        );
        assert_eq!(
            redact("Authorization: Bearer eyJ0.abc"),
            "Authorization: Bearer REDACTED"
        );
        assert_eq!(
            redact("/api/LeadIngest?code=k3y&x=1"),
            "/api/LeadIngest?code=REDACTED&x=1"
        );
        assert_eq!(
            redact("HMAC-SHA256 SignedHeaders=x&Signature=abc="),
            "HMAC-SHA256 SignedHeaders=x&Signature=REDACTED"
        );
        assert_eq!(
            redact("TableEndpoint=https://a/;SharedAccessSignature=sv=1&sig=s3cr3t"),
            "TableEndpoint=https://a/;SharedAccessSignature=REDACTED&sig=REDACTED"
        );
        assert_eq!(
            redact("authorization=\"bearer t0k3n\" code=k,sig=z"),
            "authorization=\"bearer REDACTED\" code=REDACTED,sig=REDACTED"
        );
    }

    #[test]
    fn every_scheme_json_secret_token_and_userinfo_is_redacted() {
        assert_eq!(
            redact(r#""authorization": "SharedKey devstoreaccount1:Eby8vd+M/0Q==""#),
            r#""authorization": "SharedKey REDACTED""#
        );
        assert_eq!(
            redact("Authorization: Basic dXNlcjpwYXNz"),
            "Authorization: Basic REDACTED"
        );
        assert_eq!(
            redact(r#"{"access_token": "00D!AQ.x", "token":"pat-na1-1","name":"x"}"#),
            r#"{"access_token": "REDACTED", "token":"REDACTED","name":"x"}"#
        );
        assert_eq!(
            redact("POST https://user:p%40ss@hooks.example.com/x?y=1"),
            "POST https://REDACTED@hooks.example.com/x?y=1"
        );
        assert_eq!(
            redact("seen eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln here"),
            "seen REDACTED here"
        );
        assert_eq!(
            redact(r#"{\"client_secret\":\"s3cr3t\"}"#),
            r#"{\"client_secret\":\"s3cr3t\"}"#.replace("s3cr3t", "REDACTED")
        );
    }

    #[test]
    fn ordinary_lines_are_untouched() {
        for line in [
            "lead stored lead_id=20261122-00 status=201",
            "xsig=1 design=ok",
            "subscriber set up; bearer",
            "status=201 outcome=created bytes=384",
            "see https://example.com/a@b and mailto:a@b.example",
            "eyJ alone, basics, sharedkeys",
            r#"{"name": "token bucket", "status": "basic"}"#,
            r#"{"error":{"code":"0x80040220","message":"no"}}"#,
            "",
        ] {
            assert!(
                matches!(redact(line), std::borrow::Cow::Borrowed(l) if l == line),
                "{line}"
            );
        }
    }
}
