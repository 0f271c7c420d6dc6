//! The Table service client, built from the storage settings: account key,
//! SAS token or the app's identity, with our own HTTP client so that every
//! attempt is bounded and retries stay ours.

use super::ATTEMPT_TIMEOUT;
use crate::configuration::{StorageAccount, StorageCredentials};
use anyhow::Context as _;
use azure_data_tables::prelude::TableServiceClient;
use std::sync::Arc;
use std::time::Duration;

pub(super) fn service_client(account: &StorageAccount) -> anyhow::Result<TableServiceClient> {
    use azure_storage::{CloudLocation, StorageCredentials as Azure};
    let credentials = match &account.credentials {
        StorageCredentials::AccountKey(key) => {
            Azure::access_key(account.name.clone(), key.expose().to_owned())
        }
        // The crate's own message would quote the token: say only what failed.
        StorageCredentials::SasToken(sas) => Azure::sas_token(sas.expose())
            .map_err(|_| anyhow::anyhow!("the SharedAccessSignature could not be read"))?,
        StorageCredentials::Identity => Azure::token_credential(
            crate::identity::default_credential()
                .context("Failed to set up the app's identity for storage")?,
        ),
    };
    let http = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .timeout(ATTEMPT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .context("Failed to build the HTTP client")?;
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
