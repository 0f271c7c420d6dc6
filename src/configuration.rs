//! Configuration: the app settings users set in Azure (or in
//! `local.settings.json`), read once at start-up and validated, so that a bad
//! value stops the process with a message naming the setting.
//!
//! Everything is parsed into typed values here; the rest of the program never
//! reads the environment.

use crate::email::{EmailAddress, Recipients};
use crate::schedule::Schedule;
use std::fmt;
use std::time::Duration;
use url::Url;

/// Names of the settings the handler reads. `tests/infra` checks the Bicep
/// template against the two marked blocks: the first must all be set by the
/// deployment, the second are alternatives it may set.
pub mod setting {
    // app-settings:azure:begin
    pub const AZURE_WEBJOBS_STORAGE_ACCOUNT: &str = "AzureWebJobsStorage__accountName";
    pub const LEADS_TABLE: &str = "LEADS_TABLE";
    pub const DIGEST_SCHEDULE: &str = "DIGEST_SCHEDULE";
    pub const DIGEST_TO: &str = "DIGEST_TO";
    pub const DIGEST_FROM: &str = "DIGEST_FROM";
    pub const DIGEST_LOOKBACK_HOURS: &str = "DIGEST_LOOKBACK_HOURS";
    pub const ACS_ENDPOINT: &str = "ACS_ENDPOINT";
    // app-settings:azure:end

    // app-settings:optional:begin
    pub const LEADS_STORAGE: &str = "LEADS_STORAGE";
    pub const LEADS_STORAGE_ACCOUNT: &str = "LEADS_STORAGE__accountName";
    pub const AZURE_WEBJOBS_STORAGE: &str = "AzureWebJobsStorage";
    pub const ACS_CONNECTION_STRING: &str = "ACS_CONNECTION_STRING";
    pub const SMTP_URL: &str = "SMTP_URL";
    pub const LEAD_INGEST_KEY: &str = "LEAD_INGEST_KEY";
    pub const HANDLER_PORT: &str = "HANDLER_PORT";
    // app-settings:optional:end

    /// Set by the Functions host, never by users.
    pub const FUNCTIONS_CUSTOMHANDLER_PORT: &str = "FUNCTIONS_CUSTOMHANDLER_PORT";
    /// Set by the Functions platform when the app has a managed identity.
    pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
    pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
}

pub const DEFAULT_LEADS_TABLE: &str = "MarketplaceLeads";
pub const DEFAULT_DIGEST_SCHEDULE: &str = "0 0 * * * *";
pub const DEFAULT_STANDALONE_PORT: u16 = 7071;
const DEFAULT_LOOKBACK_HOURS: u64 = 24;
/// The well-known Azurite account (public, documented: not a secret).
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EMULATOR_TABLE_ENDPOINT: &str = "http://127.0.0.1:10002/devstoreaccount1";

/// A setting that is missing or wrong. The message names the setting and
/// never repeats a secret value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("setting {setting}: {reason}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(setting: &'static str, reason: impl Into<String>) -> Self {
        Self {
            setting,
            reason: reason.into(),
        }
    }
}

/// A value that must not appear in logs or error messages.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
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
    pub digest: DigestSettings,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub account: StorageAccount,
    pub leads_table: String,
}

impl StorageSettings {
    /// The table holding the digest checkpoint and run history.
    pub fn digest_table(&self) -> String {
        format!("{}Digest", self.leads_table)
    }
}

/// How to reach the storage account's Table service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageAccount {
    pub name: String,
    /// Base URL of the Table service, e.g. `https://acct.table.core.windows.net`.
    pub table_endpoint: Url,
    pub credentials: StorageCredentials,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageCredentials {
    AccountKey(Secret),
    SasToken(Secret),
    /// Managed identity in Azure; `az login` and the like on a workstation.
    Identity,
}

#[derive(Debug, Clone)]
pub struct DigestSettings {
    pub schedule: Schedule,
    /// Both `None` when the digest is not configured: ingest still works and
    /// each digest run fails naming the missing settings.
    pub to: Option<Recipients>,
    pub from: Option<EmailAddress>,
    /// How far back the very first digest (no checkpoint yet) looks.
    pub first_run_lookback: Duration,
    pub transport: Option<TransportSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSettings {
    Acs {
        endpoint: Url,
        auth: AcsAuth,
    },
    /// `smtp://`, `smtps://` or `smtp://...?tls=required` URL, credentials included.
    Smtp(Secret),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcsAuth {
    AccessKey(Secret),
    ManagedIdentity {
        identity_endpoint: Url,
        identity_header: Secret,
    },
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests need not touch the process
    /// environment. Blank values count as unset, as in the Azure portal.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let host_port = get(setting::FUNCTIONS_CUSTOMHANDLER_PORT)
            .map(|v| parse_port(setting::FUNCTIONS_CUSTOMHANDLER_PORT, &v))
            .transpose()?;

        let storage = StorageSettings {
            account: storage_account(&get)?,
            leads_table: match get(setting::LEADS_TABLE) {
                Some(name) => parse_table_name(&name)?,
                None => DEFAULT_LEADS_TABLE.to_owned(),
            },
        };

        let ingest_key = get(setting::LEAD_INGEST_KEY).map(Secret::new);

        let schedule_text =
            get(setting::DIGEST_SCHEDULE).unwrap_or_else(|| DEFAULT_DIGEST_SCHEDULE.to_owned());
        let schedule = Schedule::parse(&schedule_text)
            .map_err(|e| ConfigError::new(setting::DIGEST_SCHEDULE, e))?;
        let to = get(setting::DIGEST_TO)
            .map(|v| Recipients::parse(&v).map_err(|e| ConfigError::new(setting::DIGEST_TO, e)))
            .transpose()?;
        let from = get(setting::DIGEST_FROM)
            .map(|v| EmailAddress::parse(&v).map_err(|e| ConfigError::new(setting::DIGEST_FROM, e)))
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

        Ok(Self {
            host_port,
            storage,
            ingest_key,
            digest: DigestSettings {
                schedule,
                to,
                from,
                first_run_lookback: Duration::from_secs(lookback_hours * 3600),
                transport: transport(&get)?,
            },
        })
    }
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

/// Table names: 3–63 letters and digits, starting with a letter.
fn parse_table_name(name: &str) -> Result<String, ConfigError> {
    let name = name.trim();
    let valid = (3..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
        // "Digest" is appended for the state table, which must fit too.
        && name.len() + "Digest".len() <= 63;
    if valid {
        Ok(name.to_owned())
    } else {
        Err(ConfigError::new(
            setting::LEADS_TABLE,
            "must be 3-57 letters and digits, starting with a letter",
        ))
    }
}

/// `LEADS_STORAGE` falls back to `AzureWebJobsStorage`, and each to its
/// identity-based form `<name>__accountName`, as Functions bindings do.
fn storage_account(get: &impl Fn(&str) -> Option<String>) -> Result<StorageAccount, ConfigError> {
    let candidates = [
        (setting::LEADS_STORAGE, setting::LEADS_STORAGE_ACCOUNT),
        (
            setting::AZURE_WEBJOBS_STORAGE,
            setting::AZURE_WEBJOBS_STORAGE_ACCOUNT,
        ),
    ];
    for (connection_setting, account_setting) in candidates {
        if let Some(connection) = get(connection_setting) {
            return parse_connection_string(connection_setting, &connection);
        }
        if let Some(account) = get(account_setting) {
            return identity_account(account_setting, &account);
        }
    }
    Err(ConfigError::new(
        setting::LEADS_STORAGE,
        "not set: give a connection string (UseDevelopmentStorage=true for Azurite), \
         or LEADS_STORAGE__accountName / AzureWebJobsStorage__accountName for managed identity",
    ))
}

fn identity_account(setting: &'static str, account: &str) -> Result<StorageAccount, ConfigError> {
    let name = account.trim();
    if !(3..=24).contains(&name.len()) || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(ConfigError::new(
            setting,
            "must be a storage account name (3-24 letters and digits)",
        ));
    }
    let endpoint = format!("https://{name}.table.core.windows.net");
    Ok(StorageAccount {
        name: name.to_owned(),
        table_endpoint: Url::parse(&endpoint)
            .map_err(|_| ConfigError::new(setting, "is not a valid account name"))?,
        credentials: StorageCredentials::Identity,
    })
}

/// Parses an Azure Storage connection string: `UseDevelopmentStorage=true`,
/// or `AccountName`/`AccountKey` (or `SharedAccessSignature`) with
/// `DefaultEndpointsProtocol`, `EndpointSuffix` and/or `TableEndpoint`.
pub fn parse_connection_string(
    setting: &'static str,
    connection: &str,
) -> Result<StorageAccount, ConfigError> {
    let mut parts = std::collections::HashMap::new();
    for pair in connection.split(';').filter(|p| !p.trim().is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            ConfigError::new(
                setting,
                "is not a connection string (expected Key=Value;...)",
            )
        })?;
        parts.insert(key.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let part = |key: &str| parts.get(key).filter(|v| !v.is_empty()).cloned();

    let table_endpoint = |endpoint: String| {
        Url::parse(endpoint.trim_end_matches('/'))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| ConfigError::new(setting, "TableEndpoint is not an http(s) URL"))
    };

    if part("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let endpoint = match part("developmentstorageproxyuri") {
            Some(proxy) => format!("{}:10002/{EMULATOR_ACCOUNT}", proxy.trim_end_matches('/')),
            None => EMULATOR_TABLE_ENDPOINT.to_owned(),
        };
        return Ok(StorageAccount {
            name: EMULATOR_ACCOUNT.to_owned(),
            table_endpoint: table_endpoint(endpoint)?,
            credentials: StorageCredentials::AccountKey(Secret::new(EMULATOR_KEY)),
        });
    }

    let credentials = match (part("accountkey"), part("sharedaccesssignature")) {
        (Some(key), _) => StorageCredentials::AccountKey(Secret::new(key)),
        (None, Some(sas)) => StorageCredentials::SasToken(Secret::new(sas)),
        (None, None) => {
            return Err(ConfigError::new(
                setting,
                "connection string has neither AccountKey nor SharedAccessSignature \
                 (for managed identity use the __accountName setting instead)",
            ))
        }
    };
    let explicit_endpoint = part("tableendpoint").map(table_endpoint).transpose()?;
    let name = match part("accountname") {
        Some(name) => name,
        // Azurite-style endpoints carry the account as their first path segment.
        None => explicit_endpoint
            .as_ref()
            .and_then(|u| u.path_segments()?.next().map(str::to_owned))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::new(setting, "connection string has no AccountName"))?,
    };
    let endpoint = match explicit_endpoint {
        Some(endpoint) => endpoint,
        None => {
            let protocol = part("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
            let suffix = part("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
            table_endpoint(format!("{protocol}://{name}.table.{suffix}"))?
        }
    };
    Ok(StorageAccount {
        name,
        table_endpoint: endpoint,
        credentials,
    })
}

/// ACS wins when both transports are configured: it is the production path
/// that the Bicep template sets up.
fn transport(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TransportSettings>, ConfigError> {
    if let Some(connection) = get(setting::ACS_CONNECTION_STRING) {
        return parse_acs_connection_string(&connection).map(Some);
    }
    if let Some(endpoint) = get(setting::ACS_ENDPOINT) {
        let endpoint = parse_https_url(setting::ACS_ENDPOINT, &endpoint)?;
        let identity_endpoint = get(setting::IDENTITY_ENDPOINT).ok_or_else(|| {
            ConfigError::new(
                setting::ACS_ENDPOINT,
                "needs a managed identity (IDENTITY_ENDPOINT/IDENTITY_HEADER are not set); \
                 outside Azure use ACS_CONNECTION_STRING or SMTP_URL",
            )
        })?;
        let identity_header = get(setting::IDENTITY_HEADER).ok_or_else(|| {
            ConfigError::new(
                setting::IDENTITY_HEADER,
                "must be set with IDENTITY_ENDPOINT",
            )
        })?;
        let identity_endpoint = Url::parse(&identity_endpoint)
            .map_err(|_| ConfigError::new(setting::IDENTITY_ENDPOINT, "is not a URL"))?;
        return Ok(Some(TransportSettings::Acs {
            endpoint,
            auth: AcsAuth::ManagedIdentity {
                identity_endpoint,
                identity_header: Secret::new(identity_header),
            },
        }));
    }
    if let Some(url) = get(setting::SMTP_URL) {
        let parsed =
            Url::parse(&url).map_err(|_| ConfigError::new(setting::SMTP_URL, "is not a URL"))?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
            return Err(ConfigError::new(
                setting::SMTP_URL,
                "must look like smtp://host:port or smtps://user:password@host:465",
            ));
        }
        return Ok(Some(TransportSettings::Smtp(Secret::new(url))));
    }
    Ok(None)
}

fn parse_https_url(setting: &'static str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .ok_or_else(|| ConfigError::new(setting, "must be an https:// URL"))
}

/// `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`.
fn parse_acs_connection_string(connection: &str) -> Result<TransportSettings, ConfigError> {
    let name = setting::ACS_CONNECTION_STRING;
    let mut endpoint = None;
    let mut key = None;
    for pair in connection.split(';').filter(|p| !p.trim().is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("endpoint") => endpoint = Some(v.trim()),
            // The key is base64 and may itself end in '='.
            Some((k, v)) if k.trim().eq_ignore_ascii_case("accesskey") => key = Some(v.trim()),
            _ => {}
        }
    }
    let endpoint = parse_https_url(
        name,
        endpoint.ok_or_else(|| ConfigError::new(name, "has no endpoint=..."))?,
    )?;
    let key = key
        .filter(|k| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(k).is_ok()
        })
        .ok_or_else(|| ConfigError::new(name, "has no valid base64 accesskey=..."))?;
    Ok(TransportSettings::Acs {
        endpoint,
        auth: AcsAuth::AccessKey(Secret::new(key)),
    })
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
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    fn error_setting(pairs: &[(&str, &str)]) -> &'static str {
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
        assert!(s.digest.transport.is_none());
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
            error_setting(&[dev, ("ACS_ENDPOINT", "https://x.communication.azure.com")]),
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
            s.digest.transport,
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
        let Some(TransportSettings::Acs { endpoint, auth }) = s.digest.transport else {
            panic!("ACS expected");
        };
        assert_eq!(endpoint.as_str(), "https://r.communication.azure.com/");
        assert_eq!(auth, AcsAuth::AccessKey(Secret::new("a2V5PT0=")));

        let s = settings(&[
            dev,
            ("ACS_ENDPOINT", "https://r.communication.azure.com"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:41000/msi/token"),
            ("IDENTITY_HEADER", "h"),
        ])
        .unwrap();
        assert!(matches!(
            s.digest.transport,
            Some(TransportSettings::Acs {
                auth: AcsAuth::ManagedIdentity { .. },
                ..
            })
        ));
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
