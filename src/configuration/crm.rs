//! Writing each lead into a CRM: Dynamics 365 (Dataverse) and HubSpot, each
//! switched on by its own settings.

use super::delivery::https_url;
use super::{setting, ConfigError};
use crate::domain::Secret;
use url::Url;

const DEFAULT_AUTHORITY_HOST: &str = "https://login.microsoftonline.com";
const DEFAULT_HUBSPOT_API: &str = "https://api.hubapi.com";

#[derive(Debug, Clone, Default)]
pub struct CrmSettings {
    pub dataverse: Option<DataverseSettings>,
    pub hubspot: Option<HubSpotSettings>,
    /// Partner Center's test leads go to the CRMs too (`CRM_INCLUDE_TEST_LEADS`).
    pub include_test_leads: bool,
}

#[derive(Debug, Clone)]
pub struct DataverseSettings {
    /// `https://<org>.crm.dynamics.com`: the Web API's base and the token's
    /// audience.
    pub url: Url,
    pub auth: DataverseAuth,
}

#[derive(Debug, Clone)]
pub enum DataverseAuth {
    /// The app's managed identity (in Azure; `az login` elsewhere).
    Identity,
    /// An app registration's client secret (client-credentials flow).
    ClientSecret {
        authority_host: Url,
        tenant_id: String,
        client_id: String,
        secret: Secret,
    },
}

#[derive(Debug, Clone)]
pub struct HubSpotSettings {
    /// A private app's access token (scope `crm.objects.contacts.write`).
    pub token: Secret,
    pub api_url: Url,
}

pub(super) fn crm_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<CrmSettings, ConfigError> {
    let dataverse = match get(setting::DATAVERSE_URL) {
        None => None,
        Some(url) => {
            let url = https_url(setting::DATAVERSE_URL, &url)?;
            let app = (
                get(setting::DATAVERSE_TENANT_ID),
                get(setting::DATAVERSE_CLIENT_ID),
                get(setting::DATAVERSE_CLIENT_SECRET),
            );
            let auth = match app {
                (None, None, None) => DataverseAuth::Identity,
                (Some(tenant_id), Some(client_id), Some(secret)) => DataverseAuth::ClientSecret {
                    authority_host: https_url(
                        setting::AZURE_AUTHORITY_HOST,
                        &get(setting::AZURE_AUTHORITY_HOST)
                            .unwrap_or_else(|| DEFAULT_AUTHORITY_HOST.to_owned()),
                    )?,
                    tenant_id: tenant_id.trim().to_owned(),
                    client_id: client_id.trim().to_owned(),
                    secret: Secret::new(secret.trim()),
                },
                (tenant, client, _) => {
                    let missing = if tenant.is_none() {
                        setting::DATAVERSE_TENANT_ID
                    } else if client.is_none() {
                        setting::DATAVERSE_CLIENT_ID
                    } else {
                        setting::DATAVERSE_CLIENT_SECRET
                    };
                    return Err(ConfigError::new(
                        missing,
                        "an app registration needs DATAVERSE_TENANT_ID, DATAVERSE_CLIENT_ID and \
                         DATAVERSE_CLIENT_SECRET together (or none of them, for the managed identity)",
                    ));
                }
            };
            Some(DataverseSettings { url, auth })
        }
    };
    let hubspot = match get(setting::HUBSPOT_TOKEN) {
        None => None,
        Some(token) => Some(HubSpotSettings {
            token: Secret::new(token.trim()),
            api_url: https_url(
                setting::HUBSPOT_API_URL,
                &get(setting::HUBSPOT_API_URL).unwrap_or_else(|| DEFAULT_HUBSPOT_API.to_owned()),
            )?,
        }),
    };
    let include_test_leads = match get(setting::CRM_INCLUDE_TEST_LEADS) {
        None => false,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(ConfigError::new(
                    setting::CRM_INCLUDE_TEST_LEADS,
                    "must be true or false",
                ))
            }
        },
    };
    Ok(CrmSettings {
        dataverse,
        hubspot,
        include_test_leads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<CrmSettings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        crm_settings(&|name: &str| map.get(name).cloned())
    }

    #[test]
    fn dataverse_by_identity_or_by_app_registration() {
        let s = settings(&[("DATAVERSE_URL", "https://contoso.crm.dynamics.com")]).unwrap();
        assert!(matches!(s.dataverse.unwrap().auth, DataverseAuth::Identity));
        let s = settings(&[
            ("DATAVERSE_URL", "https://contoso.crm4.dynamics.com"),
            (
                "DATAVERSE_TENANT_ID",
                "72f988bf-86f1-41af-91ab-2d7cd011db47",
            ),
            (
                "DATAVERSE_CLIENT_ID",
                "00000000-0000-0000-0000-000000000001",
            ),
            ("DATAVERSE_CLIENT_SECRET", "s3cr3t~value"),
        ])
        .unwrap();
        let DataverseAuth::ClientSecret { authority_host, .. } = s.dataverse.unwrap().auth else {
            panic!("an app registration");
        };
        assert_eq!(
            authority_host.as_str(),
            "https://login.microsoftonline.com/"
        );
        assert!(!s.include_test_leads);
    }

    #[test]
    fn half_an_app_registration_is_named_without_the_secret() {
        let error = settings(&[
            ("DATAVERSE_URL", "https://contoso.crm.dynamics.com"),
            ("DATAVERSE_CLIENT_SECRET", "s3cr3t~value"),
        ])
        .unwrap_err();
        assert_eq!(error.setting, "DATAVERSE_TENANT_ID");
        assert!(!error.to_string().contains("s3cr3t"));
        assert_eq!(
            settings(&[("DATAVERSE_URL", "contoso")])
                .unwrap_err()
                .setting,
            "DATAVERSE_URL"
        );
        assert_eq!(
            settings(&[("CRM_INCLUDE_TEST_LEADS", "maybe")])
                .unwrap_err()
                .setting,
            "CRM_INCLUDE_TEST_LEADS"
        );
    }

    #[test]
    fn hubspot_by_its_token() {
        let s = settings(&[
            ("HUBSPOT_TOKEN", "pat-eu1-xyz"),
            ("CRM_INCLUDE_TEST_LEADS", "true"),
        ])
        .unwrap();
        let hubspot = s.hubspot.unwrap();
        assert_eq!(hubspot.api_url.as_str(), "https://api.hubapi.com/");
        assert!(s.include_test_leads);
        assert!(!format!("{hubspot:?}").contains("pat-eu1-xyz"));
    }
}
