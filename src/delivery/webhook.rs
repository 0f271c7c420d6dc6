//! Any HTTPS endpoint (`WEBHOOK_URL`): a JSON POST signed per the Standard
//! Webhooks specification, so Zapier, Make, n8n, a Salesforce flow or the
//! user's own code can verify what it gets. `webhook-id` is the delivery's
//! id, the same for one lead and destination across every retry: a
//! receiver that saw it already can drop the repeat.

use super::attempt::Attempt;
use crate::domain::Secret;
use crate::store::StoredLead;
use serde::Serialize;
use standardwebhooks::Webhook;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use url::Url;

pub const NAME: &str = "webhook";
const EVENT: &str = "lead.received";

pub struct WebhookDestination {
    url: Url,
    signer: Webhook,
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
    /// The body exactly as Partner Center sent it.
    raw: &'a str,
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
                lead_id: &stored.id,
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
                raw: &lead.raw,
            },
        }
    }
}

impl WebhookDestination {
    /// `secret` was checked at start-up (`whsec_` + base64).
    pub fn new(url: Url, secret: &Secret) -> Result<Self, String> {
        let signer = Webhook::new(secret.expose())
            .map_err(|_| "WEBHOOK_SECRET is not whsec_ + base64".to_owned())?;
        Ok(Self { url, signer })
    }

    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        lead: &StoredLead,
        delivery_id: uuid::Uuid,
        now: OffsetDateTime,
    ) -> Attempt {
        let body = match serde_json::to_vec(&Event::new(lead, now)) {
            Ok(body) => body,
            Err(e) => {
                return Attempt::Dead {
                    status: "not sent".into(),
                    error: format!("the event could not be encoded: {e}"),
                }
            }
        };
        let id = format!("msg_{}", delivery_id.simple());
        let timestamp = now.unix_timestamp();
        let signature = match self.signer.sign(&id, timestamp, &body) {
            Ok(signature) => signature,
            Err(e) => {
                return Attempt::Dead {
                    status: "not sent".into(),
                    error: format!("the event could not be signed: {e}"),
                }
            }
        };
        let sent = http
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        Attempt::of_sent(sent, now).await
    }
}
