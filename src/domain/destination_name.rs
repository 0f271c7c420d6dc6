//! The name of a delivery destination: `teams`, or `teams:analytics` for a
//! second Teams channel configured under a name. It is part of table keys
//! (`P.<name>.<lead>`) and of the command line, so its shape is fixed:
//! a kind (`[a-z][a-z0-9]*`), optionally `:` and a label of lowercase
//! letters, digits and `-`. Never `.` (the key separator), never `digest`.

use std::fmt;

/// Longest label after the `:`.
const MAX_LABEL: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestinationName(String);

impl DestinationName {
    /// Parses `kind` or `kind:label`, ASCII case ignored.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim().to_ascii_lowercase();
        let (kind, label) = match text.split_once(':') {
            Some((kind, label)) => (kind, Some(label)),
            None => (text.as_str(), None),
        };
        let kind_ok = kind.starts_with(|c: char| c.is_ascii_lowercase())
            && kind
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !kind_ok || kind == "digest" {
            return Err(format!(
                "{text:?} is not a destination name (like teams or teams:analytics)"
            ));
        }
        if let Some(label) = label {
            let label_ok = !label.is_empty()
                && label.len() <= MAX_LABEL
                && !label.starts_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !label_ok {
                return Err(format!(
                    "{label:?} is not a destination label: 1 to {MAX_LABEL} lowercase letters, \
                     digits or -"
                ));
            }
        }
        Ok(Self(text))
    }

    /// `kind`, or `kind:label`.
    pub fn of(kind: &str, label: Option<&str>) -> Result<Self, String> {
        match label {
            Some(label) => Self::parse(&format!("{kind}:{label}")),
            None => Self::parse(kind),
        }
    }

    /// The kind: `teams` of `teams:analytics`.
    pub fn kind(&self) -> &str {
        self.0.split(':').next().unwrap_or(&self.0)
    }

    /// The label: `analytics` of `teams:analytics`; `None` for the unnamed one.
    pub fn label(&self) -> Option<&str> {
        self.0.split_once(':').map(|(_, label)| label)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DestinationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for DestinationName {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_labels() {
        let name = DestinationName::parse("Teams:Analytics").unwrap();
        assert_eq!(name.as_str(), "teams:analytics");
        assert_eq!(name.kind(), "teams");
        assert_eq!(name.label(), Some("analytics"));
        let plain = DestinationName::parse("hubspot").unwrap();
        assert_eq!((plain.kind(), plain.label()), ("hubspot", None));
        assert_eq!(
            DestinationName::of("email", Some("backup-2"))
                .unwrap()
                .as_str(),
            "email:backup-2"
        );
    }

    #[test]
    fn nothing_that_could_break_a_key_or_read_as_the_digest() {
        for bad in [
            "",
            "digest",
            "teams.x",
            "teams:",
            "teams:a.b",
            "teams:a/b",
            "9teams",
            "te ams",
            "teams:-x",
            "teams:a:b",
            "teams:ä",
        ] {
            assert!(DestinationName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(DestinationName::parse(&format!("teams:{}", "a".repeat(33))).is_err());
    }

    #[test]
    fn a_named_one_sorts_outside_the_unnamed_ones_key_range() {
        // P.teams. .. P.teams/ is the range of `teams`; `teams:x` is not in it.
        let key = "P.teams:x.L1";
        assert!(!("P.teams.".."P.teams/").contains(&key));
    }
}
