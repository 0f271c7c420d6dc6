//! Each kind of destination in a file of its own: its name, settings and
//! one-line description (`KIND`, `PREFIX`, `TITLE`, `ABOUT`, `SETTINGS`),
//! how it is built from them, what it sends, and how an answer becomes an
//! [`Outcome`](super::Outcome). The registry
//! ([`super::registry::KINDS`]) lists them; `handler settings --list`
//! prints what each is. [`crm`] is what the CRM writers share.

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
    use crate::delivery::Destinations;

    /// The names of the `kind` destinations `pairs` configure, as the
    /// registry builds them (each label a setting in `pairs` carries).
    pub fn built(kind: &str, pairs: &[(&str, &str)]) -> Result<Vec<String>, ConfigError> {
        let settings =
            Settings::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))?;
        Ok(Destinations::from_settings(&settings)?
            .names()
            .iter()
            .map(ToString::to_string)
            .filter(|name| name.split(':').next() == Some(kind))
            .collect())
    }

    /// The settings `pairs` gets a warning about.
    pub fn warned(pairs: &[(&str, &str)]) -> Vec<String> {
        let settings =
            Settings::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
                .expect("settings");
        Destinations::from_settings(&settings)
            .expect("destinations")
            .warnings()
            .iter()
            .map(|w| w.setting.clone())
            .collect()
    }
}
