//! The Table service clients, built from the storage settings: account key,
//! SAS token or the app's identity, over one HTTP client of our own so that
//! every attempt is bounded and retries stay ours. The SDK's client reads
//! and writes single rows; transactions go through our own [`Batches`].

use super::batch::Batches;
use super::ATTEMPT_TIMEOUT;
use crate::configuration::{StorageAccount, StorageCredentials};
use anyhow::Context as _;
use azure_core::auth::TokenCredential;
use azure_data_tables::prelude::TableServiceClient;
use std::sync::Arc;
use std::time::Duration;

/// The SDK's client for the account (an import source reads only rows).
pub(super) fn service_client(account: &StorageAccount) -> anyhow::Result<TableServiceClient> {
    let identity = identity(account)?;
    service(account, http()?, identity)
}

/// The SDK's client and our transaction writer for the account, sharing
/// one connection pool and one identity (so one token cache).
pub(super) fn service_clients(
    account: &StorageAccount,
) -> anyhow::Result<(TableServiceClient, Batches)> {
    let http = http()?;
    let identity = identity(account)?;
    let batches = Batches::new(account, http.clone(), identity.clone())?;
    Ok((service(account, http, identity)?, batches))
}

/// The app's identity, when that is how the account is reached.
fn identity(account: &StorageAccount) -> anyhow::Result<Option<Arc<dyn TokenCredential>>> {
    Ok(match account.credentials {
        StorageCredentials::Identity => Some(
            crate::identity::default_credential()
                .context("Failed to set up the app's identity for storage")?,
        ),
        StorageCredentials::AccountKey(_) | StorageCredentials::SasToken(_) => None,
    })
}

fn http() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(ATTEMPT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .context("Failed to build the HTTP client")
}

fn service(
    account: &StorageAccount,
    http: reqwest::Client,
    identity: Option<Arc<dyn TokenCredential>>,
) -> anyhow::Result<TableServiceClient> {
    use azure_storage::{CloudLocation, StorageCredentials as Azure};
    let credentials = match (&account.credentials, identity) {
        (StorageCredentials::AccountKey(key), _) => {
            Azure::access_key(account.name.clone(), key.expose().to_owned())
        }
        // The crate's own message would quote the token: say only what failed.
        (StorageCredentials::SasToken(sas), _) => Azure::sas_token(sas.expose())
            .map_err(|_| anyhow::anyhow!("the SharedAccessSignature could not be read"))?,
        (StorageCredentials::Identity, Some(identity)) => Azure::token_credential(identity),
        (StorageCredentials::Identity, None) => anyhow::bail!("no identity for storage"),
    };
    let location = CloudLocation::Custom {
        account: account.name.clone(),
        uri: account
            .table_endpoint
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
    };
    Ok(
        azure_data_tables::clients::TableServiceClientBuilder::with_location(location, credentials)
            // Retries are ours (`LeadStore::retrying`): bounded by a deadline.
            .retry(azure_core::RetryOptions::none())
            .transport(azure_core::TransportOptions::new(Arc::new(http)))
            .build(),
    )
}
