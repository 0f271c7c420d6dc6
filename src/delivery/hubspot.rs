//! HubSpot (`HUBSPOT_TOKEN`, a private app's token with the scope
//! `crm.objects.contacts.write`): the lead's customer as a contact, created
//! or updated by email through the CRM v3 API — `POST` to create; on 409
//! (a contact with that email exists) `PATCH` it by `idProperty=email`.
//! HubSpot de-duplicates contacts by email, so one lead never makes two
//! contacts, and a lead without an email cannot be written at all.
//!
//! The lead's note, offer, action and lead id go into the contact's
//! standard `message` property.

use super::attempt::{Answer, Attempt};
use super::crm::{fit, note};
use crate::domain::{EmailAddress, Secret};
use crate::store::StoredLead;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use url::Url;

pub const NAME: &str = "hubspot";
/// HubSpot's string properties hold up to 65,536 characters.
const MESSAGE_CHARS: usize = 10_000;
const VALUE_CHARS: usize = 1_000;

pub struct HubSpotDestination {
    api: Url,
    token: Secret,
}

impl std::fmt::Debug for HubSpotDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotDestination")
            .field("api", &self.api.as_str())
            .finish_non_exhaustive()
    }
}

/// The contact's properties (HubSpot's internal names); `None` without a
/// valid email.
pub fn properties(stored: &StoredLead) -> Option<Map<String, Value>> {
    let c = &stored.lead.customer;
    let email = EmailAddress::parse(c.email.as_deref()?).ok()?;
    let mut properties = Map::new();
    properties.insert("email".into(), json!(email.as_str()));
    for (name, value) in [
        ("firstname", &c.first_name),
        ("lastname", &c.last_name),
        ("phone", &c.phone),
        ("company", &c.company),
        ("jobtitle", &c.title),
        ("country", &c.country),
    ] {
        if let Some(value) = fit(value.as_deref(), VALUE_CHARS) {
            properties.insert(name.into(), json!(value));
        }
    }
    properties.insert(
        "message".into(),
        json!(fit(Some(&note(stored)), MESSAGE_CHARS)),
    );
    Some(properties)
}

impl HubSpotDestination {
    pub fn new(api: Url, token: Secret) -> Self {
        Self { api, token }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_str().trim_end_matches('/'))
    }

    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        lead: &StoredLead,
        now: OffsetDateTime,
    ) -> Attempt {
        let Some(properties) = properties(lead) else {
            return Attempt::Dead {
                status: "no email".into(),
                error: "HubSpot de-duplicates contacts by email, and this lead has no valid email \
                        address"
                    .into(),
            };
        };
        let email = properties["email"].as_str().unwrap_or_default().to_owned();
        let body = json!({ "properties": properties });
        let created = http
            .post(self.url("/crm/v3/objects/contacts"))
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await;
        let response = match created {
            Err(e) => return Attempt::unanswered(&e),
            Ok(response) => response,
        };
        if response.status().as_u16() != 409 {
            return self.answer(response, now).await;
        }
        // The contact exists: update it, found by its email.
        let mut url = match Url::parse(&self.url("/crm/v3/objects/contacts/")) {
            Ok(url) => url,
            Err(e) => {
                return Attempt::Dead {
                    status: "not sent".into(),
                    error: format!("HUBSPOT_API_URL: {e}"),
                }
            }
        };
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(&email);
        }
        url.query_pairs_mut().append_pair("idProperty", "email");
        match http
            .patch(url)
            .bearer_auth(self.token.expose())
            .json(&body)
            .send()
            .await
        {
            Err(e) => Attempt::unanswered(&e),
            Ok(response) => self.answer(response, now).await,
        }
    }

    async fn answer(&self, response: reqwest::Response, now: OffsetDateTime) -> Attempt {
        let answer = Answer::read(response, now).await;
        match answer.status.as_u16() {
            401 | 403 => answer.refused(
                "HubSpot refused HUBSPOT_TOKEN: use a private app's access token with the scope \
                 crm.objects.contacts.write (Settings > Integrations > Private apps)",
            ),
            _ => answer.attempt(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Lead;
    use time::macros::datetime;

    fn stored(body: &str) -> StoredLead {
        StoredLead {
            id: "20261122-0011223344556677".into(),
            received_at: datetime!(2026-11-22 10:15 UTC),
            lead: Lead::parse(body.as_bytes()).unwrap(),
        }
    }

    #[test]
    fn the_contact_has_hubspots_property_names() {
        let p = properties(&stored(
            r#"{"UserDetails":{"FirstName":"Zoë","Email":"zoe@fabrikam.example","Title":"CTO","Country":"Japan"},
            "OfferTitle":"Contoso Analytics","ActionCode":"PLT","Description":"Call me"}"#,
        ))
        .unwrap();
        assert_eq!(p["email"], "zoe@fabrikam.example");
        assert_eq!(p["firstname"], "Zoë");
        assert_eq!(p["jobtitle"], "CTO");
        assert_eq!(p["country"], "Japan");
        assert!(p.get("lastname").is_none());
        let message = p["message"].as_str().unwrap();
        assert!(message.starts_with("Call me"));
        assert!(message.contains("Offer: Contoso Analytics") && message.contains("Action: PLT"));
    }

    #[test]
    fn a_lead_without_a_valid_email_has_no_contact() {
        assert!(properties(&stored(r#"{"UserDetails":{"FirstName":"A"}}"#)).is_none());
        assert!(properties(&stored(r#"{"UserDetails":{"Email":"not an address"}}"#)).is_none());
    }
}
