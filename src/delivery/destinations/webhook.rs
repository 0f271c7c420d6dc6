//! Any HTTPS endpoint (`WEBHOOK_URL`): a JSON POST signed per the Standard
//! Webhooks specification, so Zapier, Make, n8n, a Salesforce flow or the
//! user's own code can verify what it gets. `webhook-id` is the delivery's
//! id, the same for one lead and destination across every retry: a
//! receiver that saw it already can drop the repeat.

use crate::configuration::{values, ConfigError, ConfigWarning, Scope, Settings};
use crate::delivery::destination::{Batch, Destination};
use crate::delivery::outcome::{Outcome, Status};
use crate::domain::{DestinationName, Secret};
use crate::store::StoredLead;
use base64::Engine as _;
use futures::future::BoxFuture;
use serde::Serialize;
use standardwebhooks::Webhook;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use url::Url;

pub const KIND: &str = "webhook";
/// Its route settings start with this: `WEBHOOK_OFFERS`.
pub const PREFIX: &str = "WEBHOOK";
/// What it is called in help and lists.
pub const TITLE: &str = "webhooks";
/// What it does with a lead, in a few words.
pub const ABOUT: &str = "a signed POST per lead (Standard Webhooks)";
/// Its settings: the first switches it on, the others refine it.
pub const WEBHOOK_URL: &str = "WEBHOOK_URL";
pub const WEBHOOK_SECRET: &str = "WEBHOOK_SECRET";
pub const SETTINGS: &[&str] = &[WEBHOOK_URL, WEBHOOK_SECRET];
const EVENT: &str = "lead.received";
/// Standard Webhooks secrets are 24 to 64 random bytes.
const WEBHOOK_SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

pub struct WebhookDestination {
    name: DestinationName,
    url: Url,
    secret: Secret,
    signer: Webhook,
}

/// `WEBHOOK_URL[__label]` with `WEBHOOK_SECRET[__label]` (`whsec_` +
/// base64 of 24 to 64 random bytes).
pub fn build(
    scope: Scope<'_>,
    name: DestinationName,
    _: &Settings,
    _: &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError> {
    let url = scope.required(WEBHOOK_URL)?;
    let secret = scope.get(WEBHOOK_SECRET).ok_or_else(|| {
        scope.error(
            WEBHOOK_SECRET,
            format!(
                "must be set with {}: the whsec_... signing secret",
                scope.name(WEBHOOK_URL)
            ),
        )
    })?;
    let url = values::https_url(&scope.name(WEBHOOK_URL), &url)?;
    let secret = webhook_secret(scope, &secret)?;
    let signer = Webhook::new(secret.expose())
        .map_err(|_| scope.error(WEBHOOK_SECRET, "is not whsec_ + base64"))?;
    Ok(Box::new(WebhookDestination {
        name,
        url,
        secret,
        signer,
    }))
}

fn webhook_secret(scope: Scope<'_>, value: &str) -> Result<Secret, ConfigError> {
    let secret = values::secret(&scope.name(WEBHOOK_SECRET), value)?;
    let key = secret.expose().strip_prefix("whsec_").ok_or_else(|| {
        scope.error(
            WEBHOOK_SECRET,
            "must start with whsec_ followed by base64 (Standard Webhooks)",
        )
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| scope.error(WEBHOOK_SECRET, "is not whsec_ + base64"))?;
    if !WEBHOOK_SECRET_BYTES.contains(&bytes.len()) {
        return Err(scope.error(
            WEBHOOK_SECRET,
            format!(
                "must be 24 to 64 random bytes, not {} (e.g. whsec_$(openssl rand -base64 32))",
                bytes.len()
            ),
        ));
    }
    Ok(secret)
}

impl std::fmt::Debug for WebhookDestination {
    // The URL may carry a token; the signer holds the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookDestination")
            .field("host", &self.url.host_str())
            .finish_non_exhaustive()
    }
}

/// The body: `{"type": "lead.received", "timestamp": ..., "data": {...}}`.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    timestamp: String,
    data: LeadData<'a>,
}

/// Every normalised field, the parsed `LeadSource`, and the body as received.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeadData<'a> {
    lead_id: &'a str,
    received_at: String,
    is_test_lead: bool,
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    country: Option<&'a str>,
    company: Option<&'a str>,
    title: Option<&'a str>,
    offer_title: Option<&'a str>,
    action_code: Option<&'a str>,
    description: Option<&'a str>,
    lead_source: Option<&'a str>,
    source: Option<SourceParts<'a>>,
    /// `{"level","score","reasons"}`, as rated when it arrived.
    rating: Option<RatingData<'a>>,
    /// The body exactly as Partner Center sent it.
    raw: &'a str,
}

#[derive(Debug, Serialize)]
pub struct RatingData<'a> {
    level: &'static str,
    score: i32,
    reasons: &'a [String],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceParts<'a> {
    channel: &'a str,
    action: &'a str,
    offer_id: &'a str,
}

impl<'a> Event<'a> {
    pub fn new(stored: &'a StoredLead, now: OffsetDateTime) -> Self {
        let lead = &stored.lead;
        let c = &lead.customer;
        let rfc3339 = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
        Self {
            kind: EVENT,
            timestamp: rfc3339(now),
            data: LeadData {
                lead_id: stored.id.as_str(),
                received_at: rfc3339(stored.received_at),
                is_test_lead: lead.is_test,
                first_name: c.first_name.as_deref(),
                last_name: c.last_name.as_deref(),
                email: c.email.as_deref(),
                phone: c.phone.as_deref(),
                country: c.country.as_deref(),
                company: c.company.as_deref(),
                title: c.title.as_deref(),
                offer_title: lead.offer_title.as_deref(),
                action_code: lead.action_code.as_deref(),
                description: lead.description.as_deref(),
                lead_source: lead.lead_source.as_deref(),
                source: lead.source.as_ref().map(|s| SourceParts {
                    channel: &s.channel,
                    action: &s.action,
                    offer_id: &s.offer_id,
                }),
                rating: lead.rating.as_ref().map(|r| RatingData {
                    level: r.level.as_str(),
                    score: r.score,
                    reasons: &r.reasons,
                }),
                raw: &lead.raw,
            },
        }
    }
}

impl WebhookDestination {
    async fn send(&self, batch: Batch<'_>) -> Outcome {
        let (lead, now) = (batch.lead(), batch.now);
        let body = match serde_json::to_vec(&Event::new(lead, now)) {
            Ok(body) => body,
            Err(e) => {
                return Outcome::dead(
                    Status::NotSent,
                    format!("the event could not be encoded: {e}"),
                )
            }
        };
        let id = format!("msg_{}", batch.key.simple());
        let timestamp = now.unix_timestamp();
        let signature = match self.signer.sign(&id, timestamp, &body) {
            Ok(signature) => signature,
            Err(e) => {
                return Outcome::dead(
                    Status::NotSent,
                    format!("the event could not be signed: {e}"),
                )
            }
        };
        let sent = batch
            .http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        Outcome::of_sent(sent, now).await
    }
}

impl Destination for WebhookDestination {
    fn name(&self) -> &DestinationName {
        &self.name
    }

    fn secrets(&self) -> Vec<Secret> {
        // The URL's password, as written and as HTTP Basic sends it with
        // its user, and its query's values (a token in `?key=`).
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let mut secrets = vec![self.secret.clone()];
        if let Some(password) = self.url.password() {
            secrets.push(Secret::new(decode(password)));
            secrets.push(Secret::new(format!(
                "{}:{}",
                decode(self.url.username()),
                decode(password)
            )));
        }
        secrets.extend(self.url.query_pairs().map(|(_, v)| Secret::new(v)));
        secrets
    }

    fn deliver<'a>(&'a self, batch: Batch<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(batch))
    }
}

#[cfg(test)]
mod tests {
    fn built(pairs: &[(&str, &str)]) -> Result<Vec<String>, crate::configuration::ConfigError> {
        crate::delivery::destinations::testing::built(super::KIND, pairs)
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn wrong_settings_are_named_without_their_secret() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        let error = |pairs: &[(&str, &str)]| built(&[&[dev], pairs].concat()).unwrap_err();
        assert_eq!(
            error(&[("WEBHOOK_URL", "https://x.example")]).setting,
            "WEBHOOK_SECRET"
        );
        // A secret with no URL to sign for switches nothing on: a warning.
        assert_eq!(
            crate::delivery::destinations::testing::warned(&[dev, ("WEBHOOK_SECRET", SECRET)]),
            ["WEBHOOK_SECRET"]
        );
        let short = error(&[
            ("WEBHOOK_URL", "https://x.example"),
            ("WEBHOOK_SECRET", "whsec_c2hvcnQ="),
        ]);
        assert_eq!(short.setting, "WEBHOOK_SECRET");
        assert!(!short.to_string().contains("c2hvcnQ"));
        // 100 bytes: beyond Standard Webhooks' 64.
        let long = format!(
            "whsec_{}",
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 100])
        );
        assert_eq!(
            error(&[
                ("WEBHOOK_URL", "https://x.example"),
                ("WEBHOOK_SECRET", &long)
            ])
            .setting,
            "WEBHOOK_SECRET"
        );
        assert_eq!(
            error(&[
                ("WEBHOOK_URL", "http://example.com/hook"),
                ("WEBHOOK_SECRET", SECRET)
            ])
            .setting,
            "WEBHOOK_URL"
        );
        assert_eq!(
            error(&[("WEBHOOK_URL__zap", "https://x.example")]).setting,
            "WEBHOOK_SECRET__zap"
        );
        assert_eq!(
            built(&[
                dev,
                ("WEBHOOK_URL", "http://127.0.0.1:9000/hook"),
                ("WEBHOOK_SECRET", SECRET)
            ])
            .unwrap(),
            ["webhook"]
        );
    }
}
