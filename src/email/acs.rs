//! Azure Communication Services email REST API transport.

use super::{Email, Receipt, SendError};
use crate::configuration::AcsAuth;
use url::Url;

#[derive(Debug, Clone)]
pub struct AcsMailer {
    endpoint: Url,
    auth: AcsAuth,
}

impl AcsMailer {
    pub fn new(endpoint: Url, auth: AcsAuth) -> Self {
        Self { endpoint, auth }
    }

    pub async fn send(&self, _email: &Email) -> Result<Receipt, SendError> {
        let _ = (&self.endpoint, &self.auth);
        Err(SendError::Rejected("ACS transport not built yet".into()))
    }
}
