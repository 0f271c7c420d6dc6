//! Where the leads live: the storage account, how to authenticate to it, and
//! the table names. Parses Azure Storage connection strings the way the
//! Azure SDKs and the Functions host read them.

use super::{setting, ConfigError};
use crate::domain::Secret;
use base64::Engine as _;
use std::collections::HashMap;
use url::Url;

pub const DEFAULT_LEADS_TABLE: &str = "MarketplaceLeads";
/// The digest-state table is the leads table's name with this suffix.
const DIGEST_TABLE_SUFFIX: &str = "Digest";
/// The well-known Azurite account (public, documented: not a secret).
const EMULATOR_ACCOUNT: &str = "devstoreaccount1";
const EMULATOR_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const EMULATOR_TABLE_ENDPOINT: &str = "http://127.0.0.1:10002/devstoreaccount1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageSettings {
    pub account: StorageAccount,
    pub leads_table: String,
}

impl StorageSettings {
    /// The table holding the digest checkpoint and run history.
    pub fn digest_table(&self) -> String {
        format!("{}{DIGEST_TABLE_SUFFIX}", self.leads_table)
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

/// Reads the storage settings: `LEADS_STORAGE` falls back to
/// `AzureWebJobsStorage`, and each to its identity-based form
/// `<name>__accountName`, as Functions bindings do.
pub(super) fn storage_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<StorageSettings, ConfigError> {
    Ok(StorageSettings {
        account: storage_account(get)?,
        leads_table: match get(setting::LEADS_TABLE) {
            Some(name) => parse_table_name(&name)?,
            None => DEFAULT_LEADS_TABLE.to_owned(),
        },
    })
}

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

/// Table names: 3–63 letters and digits, starting with a letter, leaving
/// room for the digest table's suffix, and not the reserved name `tables`.
fn parse_table_name(name: &str) -> Result<String, ConfigError> {
    let name = name.trim();
    let valid = (3..=63 - DIGEST_TABLE_SUFFIX.len()).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric());
    if !valid {
        return Err(ConfigError::new(
            setting::LEADS_TABLE,
            "must be 3-57 letters and digits, starting with a letter",
        ));
    }
    // Table storage reserves "tables" (any case): every write to it fails.
    if name.eq_ignore_ascii_case("tables") {
        return Err(ConfigError::new(
            setting::LEADS_TABLE,
            "\"tables\" is reserved by Table storage; choose another name",
        ));
    }
    Ok(name.to_owned())
}

pub fn identity_account(
    setting: &'static str,
    account: &str,
) -> Result<StorageAccount, ConfigError> {
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
    let mut parts = HashMap::new();
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
        (Some(key), _) => {
            // A key that is not base64 cannot sign anything: every request
            // would fail after its retries. Say so now.
            if base64::engine::general_purpose::STANDARD
                .decode(key.as_bytes())
                .map_or(true, |k| k.is_empty())
            {
                return Err(ConfigError::new(
                    setting,
                    "AccountKey is not a base64 storage account key (copy it again from the \
                     portal's Access keys)",
                ));
            }
            StorageCredentials::AccountKey(Secret::new(key))
        }
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
