//! Each kind of destination in a file of its own: its settings, what it
//! sends, and how an answer becomes an [`Outcome`](super::Outcome).
//!
//! - [`notify`] — an email per lead; [`teams`] — an Adaptive Card;
//!   [`webhook`] — a Standard Webhooks signed POST.
//! - [`dataverse`] — a Dynamics 365 lead; [`hubspot`] — a contact;
//!   [`salesforce`] — a Lead, upserted by our id; [`marketo`] — a lead,
//!   synced by email; [`crm`] — what the CRM writers share.

pub mod crm;
pub mod dataverse;
pub mod hubspot;
pub mod marketo;
pub mod notify;
pub mod salesforce;
pub mod teams;
pub mod webhook;

#[cfg(test)]
pub(crate) mod testing {
    use crate::configuration::{ConfigError, Settings};
    use crate::delivery::destination::Build;
    use crate::domain::DestinationName;

    /// The names of the `kind` destinations `pairs` configure: unnamed,
    /// and under each label a setting in `pairs` carries (`NAME__label`).
    pub fn built(
        build: Build,
        kind: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Vec<String>, ConfigError> {
        let settings =
            Settings::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))?;
        let mut labels: Vec<Option<&str>> = vec![None];
        for (key, _) in pairs {
            if let Some((_, label)) = key.split_once("__") {
                if !labels.contains(&Some(label)) {
                    labels.push(Some(label));
                }
            }
        }
        let mut names = Vec::new();
        for label in labels {
            let scope = settings.delivery.environment.scope(label);
            let name = DestinationName::of(kind, label).map_err(|e| ConfigError::named(kind, e))?;
            if let Some(destination) = build(scope, name, &settings)? {
                names.push(destination.name().to_string());
            }
        }
        Ok(names)
    }
}
