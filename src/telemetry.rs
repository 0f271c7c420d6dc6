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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The host adds its own timestamps and colours are noise in its logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_writer(Redacting(io::stdout))
        .try_init();
}

/// For commands whose stdout is their output (`leads list`, `leads
/// export`, `digest --dry-run`): logs go to stderr, warnings and errors
/// only unless `RUST_LOG` says otherwise.
pub fn init_stderr() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Redacting(io::stderr))
        .with_target(false)
        .try_init();
}

/// Query parameters and settings whose value is a credential (the key
/// before its `=`, compared without regard to ASCII case).
const SECRET_KEYS: [&str; 6] = [
    "sig",
    "signature",
    "accountkey",
    "accesskey",
    "sharedaccesssignature",
    "code",
];

/// `line` with the value of every credential-looking `key=value` (a SAS
/// `sig=`, an `AccountKey=`, a function key's `code=`) and every `Bearer`
/// token replaced by `REDACTED`.
///
/// One pass, no allocation for a clean line: it runs on every log line, so
/// it looks only at the word before each `=` and at words starting `b`.
pub fn redact(line: &str) -> std::borrow::Cow<'_, str> {
    let bytes = line.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric();
    let value_end = |start: usize| {
        bytes[start..]
            .iter()
            .position(|&b| {
                matches!(b, b'&' | b';' | b'\'' | b'"' | b',' | b')' | b']' | b'}')
                    || b.is_ascii_whitespace()
            })
            .map_or(bytes.len(), |n| start + n)
    };
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for (at, &b) in bytes.iter().enumerate() {
        let start = match b {
            b'=' => {
                // The key is the word right before `=`, whole: `sig=` but
                // not `xsig=`.
                let key_start = bytes[..at]
                    .iter()
                    .rposition(|&b| !is_word(b))
                    .map_or(0, |n| n + 1);
                let key = &line[key_start..at];
                if !SECRET_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                    continue;
                }
                at + 1
            }
            b'b' | b'B' if at == 0 || !is_word(bytes[at - 1]) => match bytes.get(at..at + 7) {
                Some(word) if word.eq_ignore_ascii_case(b"bearer ") => at + 7,
                _ => continue,
            },
            _ => continue,
        };
        let end = value_end(start);
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
    fn ordinary_lines_are_untouched() {
        for line in [
            "lead stored lead_id=20261122-00 status=201",
            "xsig=1 design=ok",
            "subscriber set up; bearer",
            "status=201 outcome=created bytes=384",
            "",
        ] {
            assert!(
                matches!(redact(line), std::borrow::Cow::Borrowed(l) if l == line),
                "{line}"
            );
        }
    }
}
