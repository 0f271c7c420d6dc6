//! Parsers shared by settings: URLs, booleans, whole numbers, secrets.
//! Each names the setting it refuses, never its value.

use super::ConfigError;
use crate::domain::Secret;
use url::Url;

/// An `https://` URL; plain `http://` only to this machine (local receivers).
pub fn https_url(name: &str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|_| ConfigError::named(name, "is not a URL (expected https://...)"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ConfigError::named(
            name,
            "must be an https:// URL (http:// only to 127.0.0.1 or localhost, for a local \
             receiver)",
        )),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`); `default` when unset.
pub fn boolean(name: &str, value: Option<&str>, default: bool) -> Result<bool, ConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(default),
        Some(v) => match v.as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError::named(name, "must be true or false")),
        },
    }
}

/// A whole number in `range`; `default` when unset.
pub fn number<T>(
    name: &str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<T>,
    default: T,
    what: &str,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
{
    match value {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<T>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ConfigError::named(
                    name,
                    format!(
                        "must be a whole number from {} to {}{what}",
                        range.start(),
                        range.end()
                    ),
                )
            }),
    }
}

/// A credential, trimmed. One with a line break or another control
/// character inside cannot be sent in a header, so every attempt would
/// fail as "connection failed": refused here instead.
pub fn secret(name: &str, value: &str) -> Result<Secret, ConfigError> {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(ConfigError::named(
            name,
            "contains a line break or another control character (pasted with a newline?)",
        ));
    }
    Ok(Secret::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_booleans_numbers_secrets() {
        assert!(https_url("X", "https://a.example/p").is_ok());
        assert!(https_url("X", "http://127.0.0.1:9/p").is_ok());
        assert_eq!(https_url("X", "http://a.example").unwrap_err().setting, "X");
        assert_eq!(boolean("B", Some(" Yes "), false), Ok(true));
        assert_eq!(boolean("B", None, true), Ok(true));
        assert!(boolean("B", Some("maybe"), false).is_err());
        assert_eq!(number("N", Some("5"), 1..=10, 3, ""), Ok(5));
        assert!(number("N", Some("11"), 1..=10, 3, "").is_err());
        let e = secret("HUBSPOT_TOKEN", "pat-na1-abc\n").map(|s| s.expose().to_owned());
        assert_eq!(
            e.as_deref(),
            Ok("pat-na1-abc"),
            "trailing whitespace is trimmed"
        );
        let e = secret("HUBSPOT_TOKEN", "pat-na1\nabc").unwrap_err();
        assert_eq!(e.setting, "HUBSPOT_TOKEN");
        assert!(!e.to_string().contains("abc"));
    }
}
