//! Credentials out of what a receiver says back. Many receivers and CRMs
//! echo the request in an error body — our token, the `Basic` value of a
//! `https://user:pass@…` URL, a Teams `sig=` — and that body is stored
//! (`LastError`, the digest's dead letter), listed by the command line and
//! mailed in the digest. Every text is cleared before it is stored: of the
//! secrets we hold (as sent, percent-encoded and base64-encoded) and of
//! anything credential-shaped ([`telemetry::redact`]).

use crate::domain::Secret;
use crate::telemetry;
use base64::Engine as _;

/// Shorter values are not searched for: they would match ordinary text.
const MIN_SECRET_CHARS: usize = 6;

#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} secrets)", self.secrets.len())
    }
}

impl Redactor {
    /// Redacts `secrets`, in each form they may be echoed in.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut redactor = Self::default();
        for secret in secrets {
            redactor.add(secret.expose());
        }
        redactor
    }

    /// Also redacts `value`.
    pub fn add(&mut self, value: &str) {
        let value = value.trim();
        if value.chars().count() < MIN_SECRET_CHARS {
            return;
        }
        let encoded: String =
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
                .collect();
        let base64 = base64::engine::general_purpose::STANDARD.encode(value);
        for form in [value.to_owned(), encoded, base64] {
            if !self.secrets.contains(&form) {
                self.secrets.push(form);
            }
        }
        // Longest first, so a secret that contains another goes whole.
        self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Adds the credentials a URL carries: its password, its `user:pass`
    /// as HTTP Basic sends it, and the values of its query parameters
    /// (a Teams workflow's `sig=`, a function's `code=`).
    pub fn add_url(&mut self, url: &url::Url) {
        if let Some(password) = url.password() {
            self.add(password);
            let user = percent_encoding::percent_decode_str(url.username()).decode_utf8_lossy();
            let password = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
            self.add(&password);
            self.add(&format!("{user}:{password}"));
        }
        for (_, value) in url.query_pairs() {
            self.add(&value);
        }
    }

    /// `text` without any secret of ours or credential-looking value.
    pub fn redact(&self, text: &str) -> String {
        let mut text = telemetry::redact(text).into_owned();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "REDACTED");
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_cleared_in_every_form_they_are_echoed_in() {
        let mut redactor = Redactor::new([&Secret::new("pat-na1-1234abcd")]);
        redactor.add_url(
            &url::Url::parse("https://zap:p%40ss-word@hooks.example/x?sig=s1gn4ture&y=1").unwrap(),
        );
        let echoed = "token pat-na1-1234abcd; pat%2Dna1%2D1234abcd; cGF0LW5hMS0xMjM0YWJjZA==; \
                      Authorization: Basic emFwOnBAc3Mtd29yZA==; password p@ss-word; sig s1gn4ture";
        let cleared = redactor.redact(echoed);
        for leaked in ["1234abcd", "emFwOnBAc3Mtd29yZA", "p@ss-word", "s1gn4ture"] {
            assert!(!cleared.contains(leaked), "{leaked} in {cleared}");
        }
    }

    #[test]
    fn ordinary_text_stays() {
        let redactor = Redactor::new([&Secret::new("abc")]);
        assert_eq!(
            redactor.redact("abc is too short to hunt"),
            "abc is too short to hunt"
        );
        assert_eq!(
            Redactor::default().redact("Property 'email' is invalid"),
            "Property 'email' is invalid"
        );
    }
}
