//! HubSpot (`HUBSPOT_TOKEN`: a Service Key — or an existing private app's
//! access token — with the scope `crm.objects.contacts.write`): the lead's customer as a contact, created
//! or updated by email through the CRM v3 API — `POST` to create; on 409
//! (a contact with that email exists) `PATCH` it by `idProperty=email`.
//! HubSpot de-duplicates contacts by email, so one lead never makes two
//! contacts, and a lead without an email cannot be written at all.
//!
//! The lead's note, offer, action and lead id go into the contact's
//! standard `message` property. Contacts have no standard property for a
//! rating (`hs_lead_status` is where sales work stands, and the Leads
//! object's `hs_lead_label` is not a contact's): with
//! `HUBSPOT_RATING_PROPERTY` the level (`hot`, `warm`, `cold`) goes into
//! the dropdown property the admin created with those internal values.

use super::crm::{fit, note};
use crate::configuration::{values, ConfigError, ConfigWarning, Scope, Settings};
use crate::delivery::destination::{Batch, Destination, Family};
use crate::delivery::outcome::{Answer, Outcome, Status};
use crate::domain::{DestinationName, EmailAddress, Secret};
use crate::store::StoredLead;
use futures::future::BoxFuture;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;
use url::Url;

pub const KIND: &str = "hubspot";
/// Its route settings start with this: `HUBSPOT_OFFERS`.
pub const PREFIX: &str = "HUBSPOT";
/// What it is called in help and lists.
pub const TITLE: &str = "HubSpot";
/// What it does with a lead, in a few words.
pub const ABOUT: &str = "a contact per lead";
/// Its settings: the first switches it on, the others refine it.
pub const HUBSPOT_TOKEN: &str = "HUBSPOT_TOKEN";
pub const HUBSPOT_API_URL: &str = "HUBSPOT_API_URL";
pub const HUBSPOT_RATING_PROPERTY: &str = "HUBSPOT_RATING_PROPERTY";
pub const SETTINGS: &[&str] = &[HUBSPOT_TOKEN, HUBSPOT_API_URL, HUBSPOT_RATING_PROPERTY];
const DEFAULT_API: &str = "https://api.hubapi.com";
/// What a refused token means, and where to get a good one.
const REFUSED: &str = "HubSpot refused HUBSPOT_TOKEN: use a Service Key (Settings > \
    Integrations > Service Keys; an existing private app's token also works) with the scope \
    crm.objects.contacts.write";
/// HubSpot's string properties hold up to 65,536 characters.
const MESSAGE_CHARS: usize = 10_000;
const VALUE_CHARS: usize = 1_000;

pub struct HubSpotDestination {
    name: DestinationName,
    api: Url,
    token: Secret,
    /// The contact property the rating's level goes into, if any.
    rating_property: Option<String>,
}

/// `HUBSPOT_TOKEN[__label]` (a Service Key), and `HUBSPOT_API_URL` only to
/// point elsewhere than `https://api.hubapi.com`.
pub fn build(
    scope: Scope<'_>,
    name: DestinationName,
    _: &Settings,
    _: &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError> {
    let token = scope.required(HUBSPOT_TOKEN)?;
    let token = values::secret(&scope.name(HUBSPOT_TOKEN), &token)?;
    let api = values::https_url(
        &scope.name(HUBSPOT_API_URL),
        &scope
            .get(HUBSPOT_API_URL)
            .unwrap_or_else(|| DEFAULT_API.to_owned()),
    )?;
    let rating_property = scope
        .get(HUBSPOT_RATING_PROPERTY)
        .map(|name| {
            let name = name.trim().to_owned();
            let internal = name.starts_with(|c: char| c.is_ascii_lowercase())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if internal {
                Ok(name)
            } else {
                Err(scope.error(
                    HUBSPOT_RATING_PROPERTY,
                    format!(
                        "{name:?} is not a property's internal name (lowercase letters, digits                          and _, e.g. marketplace_rating)"
                    ),
                ))
            }
        })
        .transpose()?;
    Ok(Box::new(HubSpotDestination {
        name,
        api,
        token,
        rating_property,
    }))
}

impl std::fmt::Debug for HubSpotDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSpotDestination")
            .field("api", &self.api.as_str())
            .finish_non_exhaustive()
    }
}

/// The contact's properties (HubSpot's internal names), the rating's
/// level in `rating_property` if given; `None` without a valid email.
pub fn properties(
    stored: &StoredLead,
    rating_property: Option<&str>,
) -> Option<Map<String, Value>> {
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
    if let (Some(property), Some(level)) = (rating_property, stored.lead.level()) {
        properties.insert(property.into(), json!(level.as_str()));
    }
    Some(properties)
}

impl HubSpotDestination {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.api.as_str().trim_end_matches('/'))
    }

    async fn write(&self, batch: Batch<'_>) -> Outcome {
        let (http, lead, now) = (batch.http, batch.lead(), batch.now);
        let Some(properties) = properties(lead, self.rating_property.as_deref()) else {
            return Outcome::dead(
                Status::NoEmail,
                "HubSpot de-duplicates contacts by email, and this lead has no valid email address",
            );
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
            Err(e) => return Outcome::unanswered(&e),
            Ok(response) => response,
        };
        if response.status().as_u16() != 409 {
            return self.answer(response, now).await;
        }
        // The contact exists: update it, found by its email.
        let mut url = match Url::parse(&self.url("/crm/v3/objects/contacts/")) {
            Ok(url) => url,
            Err(e) => return Outcome::dead(Status::NotSent, format!("HUBSPOT_API_URL: {e}")),
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
            Err(e) => Outcome::unanswered(&e),
            Ok(response) => self.answer(response, now).await,
        }
    }

    async fn answer(&self, response: reqwest::Response, now: OffsetDateTime) -> Outcome {
        let answer = Answer::read_whole(response, now).await;
        match answer.status.as_u16() {
            401 | 403 => answer.refused(REFUSED),
            _ => answer.outcome(),
        }
    }
}

impl Destination for HubSpotDestination {
    fn name(&self) -> &DestinationName {
        &self.name
    }

    /// HubSpot has no writable do-not-contact property on a contact.
    fn family(&self) -> Family {
        Family::Crm {
            writes_do_not_contact: false,
        }
    }

    fn secrets(&self) -> Vec<Secret> {
        vec![self.token.clone()]
    }

    fn deliver<'a>(&'a self, batch: Batch<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.write(batch))
    }
}

#[cfg(test)]
mod tests {
    fn built(pairs: &[(&str, &str)]) -> Result<Vec<String>, crate::configuration::ConfigError> {
        crate::delivery::destinations::testing::built(super::KIND, pairs)
    }

    use super::*;
    use crate::store::testing::stored;

    #[test]
    fn the_contact_has_hubspots_property_names() {
        let p = properties(&stored(
            r#"{"UserDetails":{"FirstName":"Zoë","Email":"zoe@fabrikam.example","Title":"CTO","Country":"Japan"},
            "OfferTitle":"Contoso Analytics","ActionCode":"PLT","Description":"Call me"}"#,
        ), None)
        .unwrap();
        assert_eq!(p["email"], "zoe@fabrikam.example");
        assert_eq!(p["firstname"], "Zoë");
        assert_eq!(p["jobtitle"], "CTO");
        assert_eq!(p["country"], "Japan");
        assert!(p.get("lastname").is_none());
        let message = p["message"].as_str().unwrap();
        assert!(message.starts_with("Call me"));
        assert!(message.contains("Offer: Contoso Analytics") && message.contains("Action: PLT"));
        assert_eq!(p.len(), 5, "no rating property unless one is named: {p:?}");
    }

    #[test]
    fn the_rating_goes_into_the_property_named() {
        let lead = stored(r#"{"UserDetails":{"Email":"zoe@gmail.com"},"ActionCode":"INS"}"#);
        let p = properties(&lead, Some("marketplace_rating")).unwrap();
        assert_eq!(p["marketplace_rating"], "cold");
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        let token = ("HUBSPOT_TOKEN", "pat-eu1-xyz");
        for bad in ["Marketplace Rating", "1rating", "rating-level"] {
            let error = built(&[dev, token, ("HUBSPOT_RATING_PROPERTY", bad)]).unwrap_err();
            assert_eq!(error.setting, "HUBSPOT_RATING_PROPERTY", "{bad}");
        }
        assert!(built(&[
            dev,
            token,
            ("HUBSPOT_RATING_PROPERTY", "marketplace_rating")
        ])
        .is_ok());
    }

    #[test]
    fn a_lead_without_a_valid_email_has_no_contact() {
        assert!(properties(&stored(r#"{"UserDetails":{"FirstName":"A"}}"#), None).is_none());
        assert!(properties(
            &stored(r#"{"UserDetails":{"Email":"not an address"}}"#),
            None
        )
        .is_none());
    }

    #[test]
    fn the_token_is_a_service_key_refused_with_a_line_break() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        let error = built(&[dev, ("HUBSPOT_TOKEN", "pat-eu1-xyz\r\nmore")]).unwrap_err();
        assert_eq!(error.setting, "HUBSPOT_TOKEN");
        assert!(!error.to_string().contains("xyz"));
        assert_eq!(
            built(&[dev, ("HUBSPOT_TOKEN", "pat-eu1-xyz")]).unwrap(),
            ["hubspot"]
        );
        assert!(REFUSED.contains("Service Key"));
    }
}
