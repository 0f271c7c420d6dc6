//! What the CRM writers share: a lead's fields cut to the lengths a CRM
//! column takes, a country as its ISO code, the note that carries what has
//! no column of its own, and
//! the access token a writer asks for (OAuth 2.0 client credentials) and
//! holds between sends.

use crate::delivery::outcome::{Answer, Outcome, Status};
use crate::domain::{text, Secret};
use crate::store::StoredLead;
use serde::de::DeserializeOwned;
use std::future::Future;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// The client credentials grant's parameters (a form or a query).
pub fn client_credentials<'a>(
    client_id: &'a str,
    client_secret: &'a Secret,
) -> [(&'static str, &'a str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", client_secret.expose()),
    ]
}

/// Sends a token request: the answer, read whole, or — when `endpoint`
/// (named as the user set it) cannot be reached — the outcome to record.
pub async fn token_answer(
    request: reqwest::RequestBuilder,
    now: OffsetDateTime,
    endpoint: &str,
) -> Result<Answer, Outcome> {
    match request.send().await {
        Ok(response) => Ok(Answer::read_whole(response, now).await),
        Err(e) => Err(Outcome::retry(
            Status::NoToken,
            format!(
                "could not reach {endpoint} for a token ({})",
                Outcome::unanswered(&e).status()
            ),
        )),
    }
}

/// A granted token, read from `crm`'s successful answer.
pub fn granted<T: DeserializeOwned>(answer: &Answer, crm: &str) -> Result<T, Outcome> {
    serde_json::from_slice(&answer.body).map_err(|_| {
        Outcome::retry(
            Status::NoToken,
            format!("{crm}'s token answer could not be read"),
        )
    })
}

/// A CRM's access token, fetched once and shared by the sends that need
/// it (one fetch at a time), until it expires or the CRM refuses it.
pub struct TokenCache<T>(Mutex<Option<(T, Option<OffsetDateTime>)>>);

impl<T> Default for TokenCache<T> {
    fn default() -> Self {
        Self(Mutex::new(None))
    }
}

impl<T: Clone> TokenCache<T> {
    /// The token held, if still good at `now`; else the one `fetch` gets
    /// (with when it expires, if the CRM says), held for the next sends.
    /// `Err` is the outcome to record.
    pub async fn get<F, Fut>(&self, now: OffsetDateTime, fetch: F) -> Result<T, Outcome>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(T, Option<OffsetDateTime>), Outcome>>,
    {
        let mut held = self.0.lock().await;
        if let Some((token, until)) = held.as_ref() {
            if until.is_none_or(|until| now < until) {
                return Ok(token.clone());
            }
        }
        let (token, until) = fetch().await?;
        *held = Some((token.clone(), until));
        Ok(token)
    }

    /// Drops the token the CRM refused: the next send fetches a new one.
    pub async fn forget(&self) {
        *self.0.lock().await = None;
    }
}

/// The ISO 3166-1 alpha-2 code of a country as a customer wrote it
/// (`USA`, `United States`, `Japan`, `JP`); `None` when it names none.
pub fn country_code(text: &str) -> Option<&'static str> {
    use std::str::FromStr;
    // celes keys names without spaces or punctuation: "United States" is
    // "unitedstates", "U.S.A." is "usa".
    let key: String = text
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    if key.is_empty() {
        return None;
    }
    celes::Country::from_str(&key)
        .ok()
        .map(|country| country.alpha2)
}

/// `value` cut to `max` characters (CRMs refuse longer values outright).
pub fn fit(value: Option<&str>, max: usize) -> Option<String> {
    value.map(|v| text::truncated(v, max).into_owned())
}

/// `value` cut to `max` UTF-16 code units, as Dataverse and Salesforce
/// count a column's length (an emoji is two), never inside a surrogate
/// pair, and ending in `…` when cut.
pub fn fit_utf16(value: Option<&str>, max: usize) -> Option<String> {
    value.map(|v| text::truncated_utf16(v, max).into_owned())
}

/// The customer's note, then the offer, action, `LeadSource` and our lead
/// id, one per line: the lead's context in the CRM's free-text field.
pub fn note(lead: &StoredLead) -> String {
    let l = &lead.lead;
    let mut lines = Vec::new();
    if let Some(note) = &l.description {
        lines.push(note.clone());
        lines.push(String::new());
    }
    let mut field = |label: &str, value: Option<&str>| {
        if let Some(value) = value {
            lines.push(format!("{label}: {value}"));
        }
    };
    field("Offer", l.offer_title.as_deref());
    field("Action", l.action_code.as_deref());
    field("Lead source", l.lead_source.as_deref());
    field("Marketplace lead id", Some(lead.id.as_str()));
    if l.is_test {
        lines.push("(Partner Center test lead)".to_owned());
    }
    lines.join("\n")
}
