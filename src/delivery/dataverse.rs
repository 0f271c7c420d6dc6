//! Dynamics 365 / Dataverse (`DATAVERSE_URL`): a `lead` record per lead,
//! through the Web API v9.2 with its documented OData headers.
//!
//! Never a second record for one lead: Dataverse lets the client choose a
//! record's key, so the record is `leads(<UUID v5 of our lead id>)`, written
//! with `PATCH` and `If-None-Match: *` — created once; any repeat is
//! answered 412, which means "already delivered".
//!
//! The bearer token is for the resource `DATAVERSE_URL`, from the app's
//! managed identity or an app registration's client secret.

use super::attempt::{Answer, Attempt};
use super::crm::{fit, note};
use crate::store::StoredLead;
use azure_core::auth::TokenCredential;
use serde::Serialize;
use std::sync::Arc;
use time::OffsetDateTime;
use url::Url;

pub const NAME: &str = "dataverse";
/// Names our lead ids' UUIDs (v5) for Dataverse record keys.
const RECORD_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1c_2c4e_8a7b_5d3e_9f10_a2b3_c4d5_e6f7);

pub struct DataverseDestination {
    base: Url,
    scope: String,
    credential: Arc<dyn TokenCredential>,
}

impl std::fmt::Debug for DataverseDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataverseDestination")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// The `lead` record's columns (Dataverse's logical names), each cut to
/// its column's maximum length.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct LeadRecord {
    subject: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    firstname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lastname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    emailaddress1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    telephone1: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    companyname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jobtitle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address1_country: Option<String>,
    description: String,
}

impl LeadRecord {
    pub fn new(stored: &StoredLead) -> Self {
        let lead = &stored.lead;
        let c = &lead.customer;
        let offer = lead
            .offer_title
            .as_deref()
            .or(lead.source.as_ref().map(|s| s.offer_id.as_str()));
        let subject = match offer {
            Some(offer) => format!("Marketplace lead: {offer}"),
            None => "Marketplace lead".to_owned(),
        };
        Self {
            subject: fit(Some(&subject), 300).unwrap_or_default(),
            firstname: fit(c.first_name.as_deref(), 50),
            lastname: fit(c.last_name.as_deref(), 50),
            emailaddress1: fit(c.email.as_deref(), 100),
            telephone1: fit(c.phone.as_deref(), 50),
            companyname: fit(c.company.as_deref(), 100),
            jobtitle: fit(c.title.as_deref(), 100),
            address1_country: fit(c.country.as_deref(), 80),
            description: fit(Some(&note(stored)), 2_000).unwrap_or_default(),
        }
    }
}

/// The record key of a lead: a UUID v5 of our lead id, the same every time.
pub fn record_id(lead_id: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&RECORD_NAMESPACE, lead_id.as_bytes())
}

impl DataverseDestination {
    pub fn new(base: Url, credential: Arc<dyn TokenCredential>) -> Self {
        // The token's audience is the organisation's URL.
        let scope = format!("{}/.default", base.as_str().trim_end_matches('/'));
        Self {
            base,
            scope,
            credential,
        }
    }

    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        lead: &StoredLead,
        now: OffsetDateTime,
    ) -> Attempt {
        let token = match self.credential.get_token(&[&self.scope]).await {
            Ok(token) => token,
            Err(e) if crate::identity::is_refused(&e) => {
                return Attempt::Dead {
                    status: "token refused".into(),
                    error: "Microsoft Entra ID refused the app registration: check \
                            DATAVERSE_TENANT_ID, DATAVERSE_CLIENT_ID and DATAVERSE_CLIENT_SECRET \
                            (an expired secret?)"
                        .into(),
                };
            }
            Err(_) => {
                // The credential's own text can name tenants and endpoints;
                // the operator gets what to check instead.
                return Attempt::Retry {
                    status: "no token".into(),
                    error: "could not get a token for DATAVERSE_URL from the managed identity or \
                            the app registration (DATAVERSE_TENANT_ID/CLIENT_ID/CLIENT_SECRET)"
                        .into(),
                    after: None,
                    maybe_done: false,
                };
            }
        };
        let url = format!(
            "{}/api/data/v9.2/leads({})",
            self.base.as_str().trim_end_matches('/'),
            record_id(&lead.id)
        );
        let sent = http
            .patch(url)
            .bearer_auth(token.token.secret())
            .header("OData-MaxVersion", "4.0")
            .header("OData-Version", "4.0")
            .header("Accept", "application/json")
            .header("Content-Type", "application/json; charset=utf-8")
            // Create only: an existing record is answered 412.
            .header("If-None-Match", "*")
            .json(&LeadRecord::new(lead))
            .send()
            .await;
        let answer = match sent {
            Err(e) => return Attempt::unanswered(&e),
            Ok(response) => Answer::read(response, now).await,
        };
        match answer.status.as_u16() {
            412 => Attempt::Delivered {
                status: "HTTP 412 (the record was already there)".into(),
            },
            401 | 403 => {
                if answer.status.as_u16() == 401 {
                    let _ = self.credential.clear_cache().await;
                }
                answer.refused(
                    "add the identity as an application user of the environment with a \
                     security role that can create leads (README: Dynamics 365)",
                )
            }
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
    fn the_record_has_the_documented_columns() {
        let record = LeadRecord::new(&stored(
            r#"{"UserDetails":{"FirstName":"Zoë","LastName":"Nakamura","Email":"zoe@fabrikam.example",
            "Phone":"+81 3","Country":"Japan","Company":"Fabrikam","Title":"CTO"},
            "LeadSource":"SPZA-PLT|fabrikam.analytics","ActionCode":"PLT","OfferTitle":"Contoso Analytics",
            "Description":"Call me"}"#,
        ));
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["subject"], "Marketplace lead: Contoso Analytics");
        assert_eq!(json["firstname"], "Zoë");
        assert_eq!(json["emailaddress1"], "zoe@fabrikam.example");
        assert_eq!(json["address1_country"], "Japan");
        let description = json["description"].as_str().unwrap();
        for part in [
            "Call me",
            "Offer: Contoso Analytics",
            "Action: PLT",
            "SPZA-PLT|fabrikam.analytics",
            "20261122-0011223344556677",
        ] {
            assert!(description.contains(part), "{description}");
        }
        let sparse =
            serde_json::to_value(LeadRecord::new(&stored(r#"{"OfferTitle":"O"}"#))).unwrap();
        assert!(
            sparse.get("firstname").is_none(),
            "absent fields are left out"
        );
    }

    #[test]
    fn values_fit_their_columns() {
        let long = "x".repeat(500);
        let record = LeadRecord::new(&stored(&format!(
            r#"{{"UserDetails":{{"FirstName":"{long}","Company":"{long}"}},"Description":"{}"}}"#,
            "y".repeat(5_000)
        )));
        assert_eq!(record.firstname.unwrap().chars().count(), 50);
        assert_eq!(record.companyname.unwrap().chars().count(), 100);
        assert_eq!(record.description.chars().count(), 2_000);
    }

    #[test]
    fn a_lead_always_has_the_same_record_id() {
        assert_eq!(record_id("20261122-00ff"), record_id("20261122-00ff"));
        assert_ne!(record_id("20261122-00ff"), record_id("20261122-00fe"));
        assert_eq!(record_id("x").get_version_num(), 5);
    }
}
