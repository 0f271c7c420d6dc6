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

use super::crm::{fit_utf16 as fit, note};
use crate::configuration::{setting, values, ConfigError, ConfigWarning, Scope, Settings};
use crate::delivery::destination::{Batch, Destination, Family};
use crate::delivery::outcome::{Answer, Outcome, Status};
use crate::domain::{DestinationName, Secret};
use crate::store::StoredLead;
use azure_core::auth::TokenCredential;
use futures::future::BoxFuture;
use serde::Serialize;
use std::sync::Arc;
use url::Url;

pub const KIND: &str = "dataverse";
/// Its route settings start with this: `DATAVERSE_OFFERS`.
pub const PREFIX: &str = "DATAVERSE";
/// What it is called in help and lists.
pub const TITLE: &str = "Dynamics 365";
/// What it does with a lead, in a few words.
pub const ABOUT: &str = "a lead in a Dataverse environment";
/// Its settings: the first switches it on, the others refine it.
pub const DATAVERSE_URL: &str = "DATAVERSE_URL";
pub const DATAVERSE_TENANT_ID: &str = "DATAVERSE_TENANT_ID";
pub const DATAVERSE_CLIENT_ID: &str = "DATAVERSE_CLIENT_ID";
pub const DATAVERSE_CLIENT_SECRET: &str = "DATAVERSE_CLIENT_SECRET";
pub const SETTINGS: &[&str] = &[
    DATAVERSE_URL,
    DATAVERSE_TENANT_ID,
    DATAVERSE_CLIENT_ID,
    DATAVERSE_CLIENT_SECRET,
];
const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
/// Names our lead ids' UUIDs (v5) for Dataverse record keys.
const RECORD_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x6f1c_2c4e_8a7b_5d3e_9f10_a2b3_c4d5_e6f7);

pub struct DataverseDestination {
    name: DestinationName,
    base: Url,
    scope: String,
    credential: Arc<dyn TokenCredential>,
    secret: Option<Secret>,
}

/// `DATAVERSE_URL[__label]`, with the app's managed identity, or with an
/// app registration: `DATAVERSE_TENANT_ID`, `DATAVERSE_CLIENT_ID` and
/// `DATAVERSE_CLIENT_SECRET` together (`AZURE_AUTHORITY_HOST` for
/// sovereign clouds).
pub fn build(
    scope: Scope<'_>,
    name: DestinationName,
    settings: &Settings,
    _: &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError> {
    let app = (
        scope.get(DATAVERSE_TENANT_ID),
        scope.get(DATAVERSE_CLIENT_ID),
        scope.get(DATAVERSE_CLIENT_SECRET),
    );
    let url = scope.required(DATAVERSE_URL)?;
    let url = values::https_url(&scope.name(DATAVERSE_URL), &url)?;
    let (credential, secret) = match app {
        (None, None, None) => (
            crate::identity::default_credential().map_err(|_| {
                scope.error(DATAVERSE_URL, "no identity is available to get a token")
            })?,
            None,
        ),
        (Some(tenant_id), Some(client_id), Some(secret)) => {
            let authority_host = values::https_url(
                setting::AZURE_AUTHORITY_HOST,
                &settings
                    .delivery
                    .environment
                    .get(setting::AZURE_AUTHORITY_HOST)
                    .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned()),
            )?;
            let secret = values::secret(&scope.name(DATAVERSE_CLIENT_SECRET), &secret)?;
            (
                crate::identity::client_secret_credential(
                    authority_host,
                    tenant_id.trim(),
                    client_id.trim(),
                    secret.expose(),
                ),
                Some(secret),
            )
        }
        (tenant, client, _) => {
            let missing = if tenant.is_none() {
                DATAVERSE_TENANT_ID
            } else if client.is_none() {
                DATAVERSE_CLIENT_ID
            } else {
                DATAVERSE_CLIENT_SECRET
            };
            return Err(scope.error(
                missing,
                "an app registration needs DATAVERSE_TENANT_ID, DATAVERSE_CLIENT_ID and \
                 DATAVERSE_CLIENT_SECRET together (or none of them, for the managed identity)",
            ));
        }
    };
    // The token's audience is the organisation's URL.
    let token_scope = format!("{}/.default", url.as_str().trim_end_matches('/'));
    Ok(Box::new(DataverseDestination {
        name,
        base: url,
        scope: token_scope,
        credential,
        secret,
    }))
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
    /// Only for a "do not contact" lead (sent when `CRM_INCLUDE_DNC=true`):
    /// the record's own opt-outs, so no campaign or call list picks it up.
    #[serde(skip_serializing_if = "Option::is_none")]
    donotemail: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    donotphone: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    donotbulkemail: Option<bool>,
    /// The lead's rating, as the lead table's Rating choice: 1 Hot, 2 Warm,
    /// 3 Cold.
    #[serde(skip_serializing_if = "Option::is_none")]
    leadqualitycode: Option<u8>,
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
        let opted_out = lead.is_do_not_contact().then_some(true);
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
            donotemail: opted_out,
            donotphone: opted_out,
            donotbulkemail: opted_out,
            leadqualitycode: lead.level().map(|level| match level {
                crate::domain::Level::Hot => 1,
                crate::domain::Level::Warm => 2,
                crate::domain::Level::Cold => 3,
            }),
        }
    }
}

/// The record key of a lead: a UUID v5 of our lead id, the same every time.
pub fn record_id(lead_id: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&RECORD_NAMESPACE, lead_id.as_bytes())
}

impl DataverseDestination {
    async fn write(&self, batch: Batch<'_>) -> Outcome {
        let lead = batch.lead();
        let token = match self.credential.get_token(&[&self.scope]).await {
            Ok(token) => token,
            Err(e) if crate::identity::is_refused(&e) => {
                return Outcome::dead(
                    Status::TokenRefused,
                    "Microsoft Entra ID refused the app registration: check \
                     DATAVERSE_TENANT_ID, DATAVERSE_CLIENT_ID and DATAVERSE_CLIENT_SECRET \
                     (an expired secret?)",
                );
            }
            Err(_) => {
                // The credential's own text can name tenants and endpoints;
                // the operator gets what to check instead.
                return Outcome::retry(
                    Status::NoToken,
                    "could not get a token for DATAVERSE_URL from the managed identity or \
                     the app registration (DATAVERSE_TENANT_ID/CLIENT_ID/CLIENT_SECRET)",
                );
            }
        };
        let url = format!(
            "{}/api/data/v9.2/leads({})",
            self.base.as_str().trim_end_matches('/'),
            record_id(lead.id.as_str())
        );
        let sent = batch
            .http
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
            Err(e) => return Outcome::unanswered(&e),
            Ok(response) => Answer::read_whole(response, batch.now).await,
        };
        match answer.status.as_u16() {
            412 => Outcome::Delivered {
                status: Status::AlreadyThere,
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
            _ => answer.outcome(),
        }
    }
}

impl Destination for DataverseDestination {
    fn name(&self) -> &DestinationName {
        &self.name
    }

    fn family(&self) -> Family {
        Family::Crm {
            writes_do_not_contact: true,
        }
    }

    fn secrets(&self) -> Vec<Secret> {
        self.secret.iter().cloned().collect()
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

    /// Dataverse counts UTF-16 code units: 50 emoji are 100 units, which a
    /// 50-unit column refuses.
    #[test]
    fn lengths_are_counted_as_dataverse_counts_them() {
        let emoji = "😀".repeat(50);
        let record = LeadRecord::new(&stored(&format!(
            r#"{{"UserDetails":{{"FirstName":"{emoji}","LastName":"a{emoji}"}}}}"#
        )));
        let first = record.firstname.unwrap();
        assert!(
            first.encode_utf16().count() <= 50,
            "{}",
            first.encode_utf16().count()
        );
        let last = record.lastname.unwrap();
        assert!(last.encode_utf16().count() <= 50);
        assert!(last.starts_with('a') && last.chars().all(|c| c == 'a' || c == '😀' || c == '…'));
    }

    #[test]
    fn half_an_app_registration_is_named_without_the_secret() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        let error = built(&[
            dev,
            ("DATAVERSE_URL", "https://contoso.crm.dynamics.com"),
            ("DATAVERSE_CLIENT_SECRET", "s3cr3t~value"),
        ])
        .unwrap_err();
        assert_eq!(error.setting, "DATAVERSE_TENANT_ID");
        assert!(!error.to_string().contains("s3cr3t"));
        assert_eq!(
            built(&[dev, ("DATAVERSE_URL", "contoso")])
                .unwrap_err()
                .setting,
            "DATAVERSE_URL"
        );
        let secret_with_newline = built(&[
            dev,
            ("DATAVERSE_URL", "https://contoso.crm4.dynamics.com"),
            (
                "DATAVERSE_TENANT_ID",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
            ),
            (
                "DATAVERSE_CLIENT_ID",
                "00000000-0000-0000-0000-000000000001",
            ),
            ("DATAVERSE_CLIENT_SECRET", "s3cr3t\nvalue"),
        ])
        .unwrap_err();
        assert_eq!(secret_with_newline.setting, "DATAVERSE_CLIENT_SECRET");
        assert_eq!(
            built(&[
                dev,
                ("DATAVERSE_URL", "https://contoso.crm4.dynamics.com"),
                (
                    "DATAVERSE_TENANT_ID",
                    "72f988bf-86f1-41af-91ab-2d7cd011db47"
                ),
                (
                    "DATAVERSE_CLIENT_ID",
                    "00000000-0000-0000-0000-000000000001"
                ),
                ("DATAVERSE_CLIENT_SECRET", "s3cr3t~value"),
            ])
            .unwrap(),
            ["dataverse"]
        );
    }

    #[test]
    fn a_do_not_contact_lead_carries_the_records_opt_outs() {
        let plain = serde_json::to_value(LeadRecord::new(&stored(
            r#"{"LeadSource":"SPZA-Contact|a.b"}"#,
        )))
        .unwrap();
        assert!(plain.get("donotemail").is_none(), "{plain}");
        let dnc =
            serde_json::to_value(LeadRecord::new(&stored(r#"{"LeadSource":"SPZA-DNC|a.b"}"#)))
                .unwrap();
        for column in ["donotemail", "donotphone", "donotbulkemail"] {
            assert_eq!(dnc[column], true, "{column}: {dnc}");
        }
    }

    #[test]
    fn a_lead_always_has_the_same_record_id() {
        assert_eq!(record_id("20261122-00ff"), record_id("20261122-00ff"));
        assert_ne!(record_id("20261122-00ff"), record_id("20261122-00fe"));
        assert_eq!(record_id("x").get_version_num(), 5);
    }
}
