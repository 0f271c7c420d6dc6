//! How requests to the storage account are authorized — account key, SAS
//! or the app's identity — resolved once from the settings, so that the
//! SDK's client and our transaction writer share one identity (and so one
//! token cache).

use crate::configuration::{StorageAccount, StorageCredentials};
use crate::domain::Secret;
use anyhow::Context as _;
use azure_core::auth::TokenCredential;
use std::sync::Arc;

/// How the account's requests are authorized.
pub(super) enum Access<'a> {
    AccountKey(&'a Secret),
    Sas(&'a Secret),
    Identity(Arc<dyn TokenCredential>),
}

impl<'a> Access<'a> {
    pub(super) fn of(account: &'a StorageAccount) -> anyhow::Result<Self> {
        Ok(match &account.credentials {
            StorageCredentials::AccountKey(key) => Self::AccountKey(key),
            StorageCredentials::SasToken(sas) => Self::Sas(sas),
            StorageCredentials::Identity => Self::Identity(
                crate::identity::default_credential()
                    .context("Failed to set up the app's identity for storage")?,
            ),
        })
    }
}
