//! The app settings as read once at start-up: every non-blank variable, so
//! that settings can be looked up by name and a destination configured
//! more than once found by its names (`TEAMS_WEBHOOK_URL`,
//! `TEAMS_WEBHOOK_URL__analytics` — the `__` Azure Functions uses for
//! hierarchy).

use super::ConfigError;
use std::collections::BTreeMap;

/// What follows a setting's name for a named destination.
pub const LABEL_SEPARATOR: &str = "__";

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Environment(BTreeMap<String, String>);

impl std::fmt::Debug for Environment {
    // Values may be secrets: names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Environment {
    /// Blank values count as unset, as in the Azure portal.
    pub fn new(vars: impl IntoIterator<Item = (String, String)>) -> Self {
        Self(
            vars.into_iter()
                .filter(|(_, value)| !value.trim().is_empty())
                .collect(),
        )
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }

    /// The labels `name` is set under: `None` for `name` itself, `Some(x)`
    /// for `name__x`, in order.
    pub fn labels(&self, name: &str) -> Vec<Option<String>> {
        let prefix = format!("{name}{LABEL_SEPARATOR}");
        let plain = self.0.contains_key(name).then_some(None);
        let named = self
            .0
            .range(prefix.clone()..)
            .take_while(|(key, _)| key.starts_with(&prefix))
            .map(|(key, _)| Some(key[prefix.len()..].to_owned()));
        plain.into_iter().chain(named).collect()
    }

    /// The settings of one destination: `name` for the unnamed one,
    /// `name__<label>` for a named one.
    pub fn scope<'a>(&'a self, label: Option<&'a str>) -> Scope<'a> {
        Scope { env: self, label }
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// The settings of one (possibly named) destination.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    env: &'a Environment,
    label: Option<&'a str>,
}

impl<'a> Scope<'a> {
    pub fn label(&self) -> Option<&'a str> {
        self.label
    }

    /// The setting's name as the user wrote it: `NAME` or `NAME__label`.
    pub fn name(&self, name: &str) -> String {
        match self.label {
            Some(label) => format!("{name}{LABEL_SEPARATOR}{label}"),
            None => name.to_owned(),
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.env.get(&self.name(name))
    }

    /// `name`'s value, or an error saying it must be set.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| self.error(name, "must be set"))
    }

    /// A warning about `name` as the user wrote it.
    pub fn warning(&self, name: &str, message: impl Into<String>) -> super::ConfigWarning {
        super::ConfigWarning::new(self.name(name), message)
    }

    /// An error about `name` as the user wrote it.
    pub fn error(&self, name: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::named(self.name(name), reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_found_and_scoped() {
        let env = Environment::new(
            [
                ("TEAMS_WEBHOOK_URL", "a"),
                ("TEAMS_WEBHOOK_URL__analytics", "b"),
                ("TEAMS_WEBHOOK_URL__sales", "c"),
                ("TEAMS_WEBHOOK_URLX", "d"),
                ("NOTIFY_TO__backup", " "),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        assert_eq!(
            env.labels("TEAMS_WEBHOOK_URL"),
            vec![None, Some("analytics".into()), Some("sales".into())]
        );
        assert!(env.labels("NOTIFY_TO").is_empty(), "blank is unset");
        let scope = env.scope(Some("sales"));
        assert_eq!(scope.get("TEAMS_WEBHOOK_URL").as_deref(), Some("c"));
        assert_eq!(scope.name("WEBHOOK_SECRET"), "WEBHOOK_SECRET__sales");
        assert!(!format!("{env:?}").contains("\"a\""));
    }
}
