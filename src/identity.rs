//! The app's identity, for every Azure service reached without a key
//! (Table storage, Communication Services): one `azure_identity` credential
//! chain — environment variables, the Functions managed identity, then the
//! Azure CLI's `az login` — so the same binary works deployed and on a
//! workstation. Tokens are cached by the credential.

use azure_core::auth::TokenCredential;
use std::sync::Arc;

/// The default credential chain, built once per component.
pub fn default_credential() -> azure_core::Result<Arc<dyn TokenCredential>> {
    azure_identity::create_default_credential()
}
