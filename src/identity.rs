//! The app's identity, for every Azure service reached without a key
//! (Table storage, Communication Services, Dataverse): one `azure_identity`
//! credential chain — environment variables, the Functions managed
//! identity, then the Azure CLI's `az login` — so the same binary works
//! deployed and on a workstation; or an app registration's client secret
//! where one is configured. Tokens are cached by the credential.

use azure_core::auth::TokenCredential;
use std::sync::Arc;
use url::Url;

/// The default credential chain, built once per component.
pub fn default_credential() -> azure_core::Result<Arc<dyn TokenCredential>> {
    azure_identity::create_default_credential()
}

/// An app registration's client-credentials flow against `authority_host`
/// (`https://login.microsoftonline.com`, or a sovereign cloud's).
pub fn client_secret_credential(
    authority_host: Url,
    tenant_id: &str,
    client_id: &str,
    secret: &str,
) -> Arc<dyn TokenCredential> {
    Arc::new(azure_identity::ClientSecretCredential::new(
        azure_core::new_http_client(),
        authority_host,
        tenant_id.to_owned(),
        client_id.to_owned(),
        secret.to_owned(),
    ))
}
