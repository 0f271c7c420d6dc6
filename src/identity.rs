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

/// Whether Microsoft Entra ID answered a token request with a refusal that
/// no retry can fix — a wrong or expired client secret, an unknown client
/// or tenant, a bad scope — rather than failing to answer.
pub fn is_refused(error: &azure_core::Error) -> bool {
    use oauth2::basic::{BasicErrorResponse, BasicErrorResponseType as Refusal};
    type TokenError = oauth2::RequestTokenError<azure_core::Error, BasicErrorResponse>;
    match error.downcast_ref::<TokenError>() {
        Some(oauth2::RequestTokenError::ServerResponse(answer)) => matches!(
            answer.error(),
            Refusal::InvalidClient
                | Refusal::UnauthorizedClient
                | Refusal::InvalidRequest
                | Refusal::InvalidGrant
                | Refusal::InvalidScope
        ),
        _ => false,
    }
}
