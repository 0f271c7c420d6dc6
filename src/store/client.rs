//! The Table service clients, built from the storage settings: account key,
//! SAS token or the app's identity, over one HTTP client of our own so that
//! every attempt is bounded and retries stay ours. The SDK's client reads
//! and writes single rows; transactions go through our own [`Batches`].

use super::access::Access;
use super::batch::Batches;
use super::ATTEMPT_TIMEOUT;
use crate::configuration::StorageAccount;
use anyhow::Context as _;
use azure_data_tables::prelude::TableServiceClient;
use std::sync::Arc;
use std::time::Duration;

/// The SDK's client for the account (an import source reads only rows).
pub(super) fn service_client(account: &StorageAccount) -> anyhow::Result<TableServiceClient> {
    service(account, http()?, &Access::of(account)?)
}

/// The SDK's client and our transaction writer for the account, sharing
/// one connection pool and one identity.
pub(super) fn service_clients(
    account: &StorageAccount,
) -> anyhow::Result<(TableServiceClient, Batches)> {
    let (http, access) = (http()?, Access::of(account)?);
    let batches = Batches::new(account, http.clone(), &access)?;
    Ok((service(account, http, &access)?, batches))
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
    access: &Access<'_>,
) -> anyhow::Result<TableServiceClient> {
    use azure_storage::{CloudLocation, StorageCredentials as Azure};
    let credentials = match access {
        Access::AccountKey(key) => Azure::access_key(account.name.clone(), key.expose().to_owned()),
        // The crate's own message would quote the token: say only what failed.
        Access::Sas(sas) => Azure::sas_token(sas.expose())
            .map_err(|_| anyhow::anyhow!("the SharedAccessSignature could not be read"))?,
        Access::Identity(identity) => Azure::token_credential(identity.clone()),
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
