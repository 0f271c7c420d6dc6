//! Configuration: the app settings users set in Azure (or in
//! `local.settings.json`), read once at start-up and validated, so that a bad
//! value stops the process with a message naming the setting.
//!
//! Everything is parsed into typed values here; the rest of the program never
//! reads the environment. The components build themselves from these
//! values (`LeadStore::from_settings`, `Mailer::from_settings`,
//! `DigestRunner::from_settings`).
//!
//! - [`storage`] — the storage account, its credentials and the tables.
//! - [`email`] — the sender and the transport (ACS or SMTP).
//! - [`delivery`] — how long deliveries are retried, and how often swept.
//!   Each destination's own settings are read beside it
//!   (`delivery::destinations`), from the [`environment`] read here.
//! - [`environment`] — every setting as read once, names and labels.
//! - [`values`] — parsers shared by settings (URLs, booleans, secrets).
//! - [`spelling`] — names that are nearly a setting's ("did you mean …").

pub mod delivery;
pub mod email;
pub mod environment;
pub mod spelling;
pub mod storage;
pub mod values;

pub use delivery::DeliverySettings;
pub use email::{
    AcsAuth, AcsSettings, EmailSettings, SmtpSecurity, SmtpSettings, TransportSettings,
};
pub use environment::{Environment, Scope};
pub use storage::{StorageAccount, StorageCredentials, StorageSettings};

use crate::domain::{Recipients, Secret};
use crate::schedule::Schedule;
use std::borrow::Cow;
use std::time::Duration;

/// Names of the settings the handler reads, but for each destination's
/// own (in its module, listed by the delivery registry). `DEPLOYED` must all
/// be set by the deployment, `OPTIONAL` may be: `handler settings --list`
/// prints both with the destinations', which is what `tests/infra` checks
/// the Bicep template against and what the start-up check of names nearly
/// one of these ("did you mean …") reads.
pub mod setting {
    /// Declares each name as a constant and lists them all in `$list`.
    macro_rules! names {
        ($list:ident: $($name:ident = $value:literal;)*) => {
            $(pub const $name: &str = $value;)*
            pub const $list: &[&str] = &[$($name),*];
        };
    }

    names! {
        DEPLOYED:
        AZURE_WEBJOBS_STORAGE_ACCOUNT = "AzureWebJobsStorage__accountName";
        LEADS_TABLE = "LEADS_TABLE";
        DIGEST_SCHEDULE = "DIGEST_SCHEDULE";
        DIGEST_TO = "DIGEST_TO";
        DIGEST_FROM = "DIGEST_FROM";
        DIGEST_LOOKBACK_HOURS = "DIGEST_LOOKBACK_HOURS";
        ACS_ENDPOINT = "ACS_ENDPOINT";
    }

    names! {
        OPTIONAL:
        LEADS_STORAGE = "LEADS_STORAGE";
        LEADS_STORAGE_ACCOUNT = "LEADS_STORAGE__accountName";
        AZURE_WEBJOBS_STORAGE = "AzureWebJobsStorage";
        ACS_CONNECTION_STRING = "ACS_CONNECTION_STRING";
        SMTP_URL = "SMTP_URL";
        LEAD_INGEST_KEY = "LEAD_INGEST_KEY";
        HANDLER_PORT = "HANDLER_PORT";
        DELIVERY_MAX_AGE_HOURS = "DELIVERY_MAX_AGE_HOURS";
        DELIVERY_SCHEDULE = "DELIVERY_SCHEDULE";
        AZURE_AUTHORITY_HOST = "AZURE_AUTHORITY_HOST";
        CRM_INCLUDE_TEST_LEADS = "CRM_INCLUDE_TEST_LEADS";
        CRM_INCLUDE_DNC = "CRM_INCLUDE_DNC";
        RUST_LOG = "RUST_LOG";
        LEADS_RETENTION_DAYS = "LEADS_RETENTION_DAYS";
        LEAD_RATING = "LEAD_RATING";
    }

    /// Set by the Functions host, never by users.
    pub const FUNCTIONS_CUSTOMHANDLER_PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";

    /// Every setting a user may write (each destination's route settings
    /// are named by the delivery registry).
    pub fn all() -> impl Iterator<Item = &'static str> {
        DEPLOYED.iter().chain(OPTIONAL).copied()
    }
}

pub const DEFAULT_STANDALONE_PORT: u16 = 7071;
const DEFAULT_LOOKBACK_HOURS: u64 = 24;

/// A setting that is missing or wrong. The message names the setting and
/// never repeats a secret value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("setting {setting}: {reason}")]
pub struct ConfigError {
    /// As the user wrote it (`TEAMS_WEBHOOK_URL__analytics`).
    pub setting: Cow<'static, str>,
    pub reason: String,
}

impl ConfigError {
    pub fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting: Cow::Borrowed(setting),
            reason: reason.into(),
        }
    }

    /// About a setting whose name is made at run time (a named one).
    pub fn named(setting: impl AsRef<str>, reason: impl Into<String>) -> Self {
        Self {
            setting: Cow::Owned(setting.as_ref().to_owned()),
            reason: reason.into(),
        }
    }
}

/// A setting that does not stop start-up but probably does not do what
/// its writer meant (a route for a destination that is not configured, a
/// name one letter off one we read). Logged at start-up, naming the
/// setting; never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// As the user wrote it.
    pub setting: String,
    pub message: String,
}

impl ConfigWarning {
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "setting {}: {}", self.setting, self.message)
    }
}

/// Everything the handler needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `Some(port)` when running under the Functions host.
    pub host_port: Option<u16>,
    pub storage: StorageSettings,
    /// Key required by standalone mode (the Functions host checks keys itself).
    pub ingest_key: Option<Secret>,
    pub email: EmailSettings,
    pub digest: DigestSettings,
    pub delivery: DeliverySettings,
    /// Leads older than this many days are deleted (`None`: kept).
    pub retention_days: Option<u32>,
    /// Leads are rated as they arrive (`LEAD_RATING`, default true).
    pub rate_leads: bool,
}

#[derive(Debug, Clone)]
pub struct DigestSettings {
    pub schedule: Schedule,
    /// `None` when the digest is not configured: ingest still works and
    /// each digest run fails naming the missing setting.
    pub to: Option<Recipients>,
    /// How far back the very first digest (no checkpoint yet) looks.
    pub first_run_lookback: Duration,
}

impl Settings {
    /// Reads the process environment (variables that are not UTF-8 are
    /// no settings of ours).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        }))
    }

    /// As [`Settings::from_env`], for a command that reads no storage
    /// (`handler route`): without a storage setting it still reads every
    /// other one.
    pub fn from_env_without_storage() -> Result<Self, ConfigError> {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
            .collect();
        let storage_set = vars.iter().any(|(name, value)| {
            !value.trim().is_empty()
                && [
                    setting::LEADS_STORAGE,
                    setting::LEADS_STORAGE_ACCOUNT,
                    setting::AZURE_WEBJOBS_STORAGE,
                    setting::AZURE_WEBJOBS_STORAGE_ACCOUNT,
                ]
                .contains(&name.as_str())
        });
        if !storage_set {
            // Never used: the command reads no storage.
            vars.push((
                setting::LEADS_STORAGE.to_owned(),
                "UseDevelopmentStorage=true".to_owned(),
            ));
        }
        Self::from_vars(vars)
    }

    /// Reads settings from `vars`, so tests need not touch the process
    /// environment. Blank values count as unset, as in the Azure portal.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let environment = Environment::new(vars);
        let get = |name: &str| environment.get(name);
        let settings = Self {
            host_port: get(setting::FUNCTIONS_CUSTOMHANDLER_PORT)
                .map(|v| parse_port(setting::FUNCTIONS_CUSTOMHANDLER_PORT, &v))
                .transpose()?,
            storage: storage::storage_settings(&get)?,
            ingest_key: get(setting::LEAD_INGEST_KEY).map(Secret::new),
            email: email::email_settings(&get)?,
            digest: digest_settings(&get)?,
            delivery: delivery::delivery_settings(&get, environment.clone())?,
            retention_days: get(setting::LEADS_RETENTION_DAYS)
                .map(|v| {
                    values::number(
                        setting::LEADS_RETENTION_DAYS,
                        Some(&v),
                        1..=36_500,
                        0,
                        " of days to keep leads (empty: keep them)",
                    )
                })
                .transpose()?,
            rate_leads: values::boolean(
                setting::LEAD_RATING,
                get(setting::LEAD_RATING).as_deref(),
                true,
            )?,
        };
        Ok(settings)
    }
}

fn digest_settings(get: &impl Fn(&str) -> Option<String>) -> Result<DigestSettings, ConfigError> {
    let schedule = match get(setting::DIGEST_SCHEDULE) {
        Some(text) => Schedule::parse(&text),
        None => Schedule::parse(crate::schedule::HOURLY),
    }
    .map_err(|e| ConfigError::new(setting::DIGEST_SCHEDULE, e))?;
    let to = get(setting::DIGEST_TO)
        .map(|v| Recipients::parse(&v).map_err(|e| ConfigError::new(setting::DIGEST_TO, e)))
        .transpose()?;
    let lookback_hours = match get(setting::DIGEST_LOOKBACK_HOURS) {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|h| (1..=24 * 90).contains(h))
            .ok_or_else(|| {
                ConfigError::new(
                    setting::DIGEST_LOOKBACK_HOURS,
                    "must be a whole number of hours from 1 to 2160",
                )
            })?,
        None => DEFAULT_LOOKBACK_HOURS,
    };
    Ok(DigestSettings {
        schedule,
        to,
        first_run_lookback: Duration::from_secs(lookback_hours * 3600),
    })
}

fn parse_port(name: &'static str, value: &str) -> Result<u16, ConfigError> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|_| ConfigError::new(name, "must be a TCP port number"))
}

/// Reads a port setting on its own (the standalone server's `HANDLER_PORT`).
pub fn standalone_port(lookup: impl Fn(&str) -> Option<String>) -> Result<u16, ConfigError> {
    match lookup(setting::HANDLER_PORT).filter(|v| !v.trim().is_empty()) {
        Some(v) => parse_port(setting::HANDLER_PORT, &v),
        None => Ok(DEFAULT_STANDALONE_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_vars(map)
    }

    fn error_setting(pairs: &[(&str, &str)]) -> Cow<'static, str> {
        settings(pairs).expect_err("should be rejected").setting
    }

    #[test]
    fn development_storage_maps_to_azurite() {
        let s = settings(&[("AzureWebJobsStorage", "UseDevelopmentStorage=true")]).unwrap();
        assert_eq!(s.storage.account.name, "devstoreaccount1");
        assert_eq!(
            s.storage.account.table_endpoint.as_str(),
            "http://127.0.0.1:10002/devstoreaccount1"
        );
        assert_eq!(s.storage.leads_table, "MarketplaceLeads");
        assert_eq!(s.storage.digest_table(), "MarketplaceLeadsDigest");
        assert_eq!(s.host_port, None);
        assert!(s.email.transport.is_none());
        assert!(s.digest.to.is_none());
    }

    #[test]
    fn leads_storage_wins_over_webjobs_storage() {
        let s = settings(&[
            ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
            (
                "LEADS_STORAGE",
                "DefaultEndpointsProtocol=https;AccountName=leadsacct;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
            ),
        ])
        .unwrap();
        assert_eq!(s.storage.account.name, "leadsacct");
        assert_eq!(
            s.storage.account.table_endpoint.as_str(),
            "https://leadsacct.table.core.chinacloudapi.cn/"
        );
        assert_eq!(
            s.storage.account.credentials,
            StorageCredentials::AccountKey(Secret::new("a2V5"))
        );
    }

    #[test]
    fn table_endpoint_is_honoured() {
        let s = settings(&[(
            "LEADS_STORAGE",
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;TableEndpoint=http://127.0.0.1:41234/devstoreaccount1;",
        )])
        .unwrap();
        assert_eq!(
            s.storage.account.table_endpoint.as_str(),
            "http://127.0.0.1:41234/devstoreaccount1"
        );
    }

    #[test]
    fn identity_based_storage() {
        let s = settings(&[("AzureWebJobsStorage__accountName", "prodleads01")]).unwrap();
        assert_eq!(s.storage.account.credentials, StorageCredentials::Identity);
        assert_eq!(
            s.storage.account.table_endpoint.as_str(),
            "https://prodleads01.table.core.windows.net/"
        );
        assert_eq!(
            error_setting(&[("LEADS_STORAGE__accountName", "bad name!")]),
            "LEADS_STORAGE__accountName"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(error_setting(&[]), "LEADS_STORAGE");
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        assert_eq!(
            error_setting(&[("LEADS_STORAGE", "garbage")]),
            "LEADS_STORAGE"
        );
        assert_eq!(
            error_setting(&[("LEADS_STORAGE", "AccountName=x")]),
            "LEADS_STORAGE"
        );
        assert_eq!(
            error_setting(&[dev, ("LEADS_TABLE", "bad-name")]),
            "LEADS_TABLE"
        );
        assert_eq!(
            error_setting(&[dev, ("DIGEST_TO", "not an address")]),
            "DIGEST_TO"
        );
        assert_eq!(
            error_setting(&[dev, ("DIGEST_FROM", "a@b.c, d@e.f")]),
            "DIGEST_FROM"
        );
        assert_eq!(
            error_setting(&[dev, ("DIGEST_SCHEDULE", "hourly")]),
            "DIGEST_SCHEDULE"
        );
        assert_eq!(
            error_setting(&[dev, ("DIGEST_LOOKBACK_HOURS", "0")]),
            "DIGEST_LOOKBACK_HOURS"
        );
        assert_eq!(error_setting(&[dev, ("SMTP_URL", "http://x")]), "SMTP_URL");
        assert_eq!(
            error_setting(&[dev, ("ACS_ENDPOINT", "ftp://x")]),
            "ACS_ENDPOINT"
        );
        assert_eq!(
            error_setting(&[
                dev,
                ("ACS_CONNECTION_STRING", "endpoint=https://x;accesskey=***")
            ]),
            "ACS_CONNECTION_STRING"
        );
        assert_eq!(
            error_setting(&[dev, ("FUNCTIONS_CUSTOMHANDLER_PORT", "http")]),
            "FUNCTIONS_CUSTOMHANDLER_PORT"
        );
    }

    #[test]
    fn errors_never_repeat_secrets() {
        let err = settings(&[(
            "LEADS_STORAGE",
            "AccountName=a;AccountKey=c3VwZXJzZWNyZXQ=;TableEndpoint=ftp://x",
        )])
        .unwrap_err();
        assert!(!err.to_string().contains("c3VwZXJzZWNyZXQ"), "{err}");
        let s =
            settings(&[("LEADS_STORAGE", "AccountName=a;AccountKey=c3VwZXJzZWNyZXQ=")]).unwrap();
        assert!(!format!("{s:?}").contains("c3VwZXJzZWNyZXQ"));
    }

    #[test]
    fn transports() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        let s = settings(&[dev, ("SMTP_URL", "smtp://127.0.0.1:1025")]).unwrap();
        assert!(matches!(
            s.email.transport,
            Some(TransportSettings::Smtp(_))
        ));

        let s = settings(&[
            dev,
            ("SMTP_URL", "smtp://127.0.0.1:1025"),
            (
                "ACS_CONNECTION_STRING",
                "endpoint=https://r.communication.azure.com/;accesskey=a2V5PT0=",
            ),
        ])
        .unwrap();
        let Some(TransportSettings::Acs(AcsSettings { endpoint, auth })) = s.email.transport else {
            panic!("ACS expected");
        };
        assert_eq!(endpoint.as_str(), "https://r.communication.azure.com/");
        assert_eq!(auth, AcsAuth::AccessKey(Secret::new("a2V5PT0=")));

        // An identity needs no more settings: the managed identity in Azure,
        // `az login` on a workstation.
        let s = settings(&[dev, ("ACS_ENDPOINT", "https://r.communication.azure.com")]).unwrap();
        assert!(matches!(
            s.email.transport,
            Some(TransportSettings::Acs(AcsSettings {
                auth: AcsAuth::Identity,
                ..
            }))
        ));
    }

    #[test]
    fn settings_that_start_but_could_never_work_are_refused() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        for reserved in ["tables", "Tables", "TABLES"] {
            assert_eq!(
                error_setting(&[dev, ("LEADS_TABLE", reserved)]),
                "LEADS_TABLE"
            );
        }
        let err = settings(&[(
            "LEADS_STORAGE",
            "AccountName=a;AccountKey=not*base64!;EndpointSuffix=core.windows.net",
        )])
        .unwrap_err();
        assert_eq!(err.setting, "LEADS_STORAGE");
        assert!(!err.to_string().contains("not*base64"), "{err}");
        assert_eq!(
            error_setting(&[dev, ("SMTP_URL", "smtp://127.0.0.1:1025?tls=bogus")]),
            "SMTP_URL"
        );
        assert_eq!(
            error_setting(&[dev, ("DIGEST_SCHEDULE", "0 0 8 30 2 *")]),
            "DIGEST_SCHEDULE"
        );
    }

    #[test]
    fn recipients_and_lookback() {
        let s = settings(&[
            ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
            ("DIGEST_TO", "a@contoso.com; b@contoso.com,c@contoso.com"),
            ("DIGEST_FROM", "DoNotReply@x.azurecomm.net"),
            ("DIGEST_LOOKBACK_HOURS", "48"),
            ("FUNCTIONS_CUSTOMHANDLER_PORT", "40123"),
        ])
        .unwrap();
        assert_eq!(s.digest.to.map(|r| r.len()), Some(3));
        assert_eq!(s.digest.first_run_lookback, Duration::from_secs(48 * 3600));
        assert_eq!(s.host_port, Some(40123));
    }
}
