//! How email leaves: the sender address and one transport, Azure
//! Communication Services (by managed identity or access key) or SMTP.
//! Everything is parsed here, so a transport that could never send stops
//! the process at start-up instead of failing every run.

use super::{setting, ConfigError};
use crate::domain::{EmailAddress, Secret};
use base64::Engine as _;
use url::Url;

/// The sender and the transport; both `None` when email is not configured
/// (ingest still works; each digest run fails naming what is missing).
#[derive(Debug, Clone, Default)]
pub struct EmailSettings {
    pub from: Option<EmailAddress>,
    pub transport: Option<TransportSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSettings {
    Acs(AcsSettings),
    Smtp(SmtpSettings),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsSettings {
    /// `https://<resource>.communication.azure.com`.
    pub endpoint: Url,
    pub auth: AcsAuth,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcsAuth {
    /// Requests signed with HMAC-SHA256 (`ACS_CONNECTION_STRING`).
    AccessKey(Secret),
    /// A bearer token from the app's identity: the managed identity in
    /// Azure, `az login` on a workstation (`ACS_ENDPOINT`).
    Identity,
}

/// `SMTP_URL`, parsed: `smtp://host:port` (plain), `smtp://…?tls=required`
/// or `?tls=opportunistic` (STARTTLS), `smtps://…` (TLS from the start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub credentials: Option<SmtpCredentials>,
    /// The name sent in `EHLO` (the URL's path), when given.
    pub hello_name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS: local sinks only.
    None,
    StartTlsRequired,
    StartTlsOpportunistic,
    /// TLS from the first byte (`smtps://`, usually port 465).
    Tls,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpCredentials {
    pub user: String,
    pub password: Secret,
}

pub(super) fn email_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<EmailSettings, ConfigError> {
    Ok(EmailSettings {
        from: get(setting::DIGEST_FROM)
            .map(|v| EmailAddress::parse(&v).map_err(|e| ConfigError::new(setting::DIGEST_FROM, e)))
            .transpose()?,
        transport: transport(get)?,
    })
}

/// ACS wins when both transports are configured: it is the production path
/// that the Bicep template sets up.
fn transport(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<TransportSettings>, ConfigError> {
    if let Some(connection) = get(setting::ACS_CONNECTION_STRING) {
        return parse_acs_connection_string(&connection)
            .map(|acs| Some(TransportSettings::Acs(acs)));
    }
    if let Some(endpoint) = get(setting::ACS_ENDPOINT) {
        return Ok(Some(TransportSettings::Acs(AcsSettings {
            endpoint: parse_https_url(setting::ACS_ENDPOINT, &endpoint)?,
            auth: AcsAuth::Identity,
        })));
    }
    if let Some(url) = get(setting::SMTP_URL) {
        return parse_smtp_url(&url).map(|smtp| Some(TransportSettings::Smtp(smtp)));
    }
    Ok(None)
}

pub(super) fn parse_https_url(setting: &'static str, value: &str) -> Result<Url, ConfigError> {
    Url::parse(value.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some())
        .ok_or_else(|| ConfigError::new(setting, "must be an https:// URL"))
}

/// `endpoint=https://<resource>.communication.azure.com/;accesskey=<base64>`.
fn parse_acs_connection_string(connection: &str) -> Result<AcsSettings, ConfigError> {
    let name = setting::ACS_CONNECTION_STRING;
    let mut endpoint = None;
    let mut key = None;
    for pair in connection.split(';').filter(|p| !p.trim().is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if k.trim().eq_ignore_ascii_case("endpoint") => endpoint = Some(v.trim()),
            // The key is base64 and may itself end in '='.
            Some((k, v)) if k.trim().eq_ignore_ascii_case("accesskey") => key = Some(v.trim()),
            _ => {}
        }
    }
    let endpoint = parse_https_url(
        name,
        endpoint.ok_or_else(|| ConfigError::new(name, "has no endpoint=..."))?,
    )?;
    let key = key
        .filter(|k| base64::engine::general_purpose::STANDARD.decode(k).is_ok())
        .ok_or_else(|| ConfigError::new(name, "has no valid base64 accesskey=..."))?;
    Ok(AcsSettings {
        endpoint,
        auth: AcsAuth::AccessKey(Secret::new(key)),
    })
}

/// Reads `SMTP_URL` as `lettre` documents its connection URLs, refusing
/// what it would refuse later (an unknown `tls=` value, say).
fn parse_smtp_url(value: &str) -> Result<SmtpSettings, ConfigError> {
    let name = setting::SMTP_URL;
    let shape = "must look like smtp://host:port, smtp://user:password@host:587?tls=required \
                 or smtps://user:password@host:465";
    let url = Url::parse(value.trim()).map_err(|_| ConfigError::new(name, shape))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ConfigError::new(name, shape))?
        .trim_matches(|c| c == '[' || c == ']')
        .to_owned();
    let tls = url
        .query_pairs()
        .find(|(k, _)| k == "tls")
        .map(|(_, v)| v.into_owned());
    let (security, default_port) = match (url.scheme(), tls.as_deref()) {
        ("smtp", None) => (SmtpSecurity::None, 25),
        ("smtp", Some("required")) => (SmtpSecurity::StartTlsRequired, 587),
        ("smtp", Some("opportunistic")) => (SmtpSecurity::StartTlsOpportunistic, 587),
        ("smtps", None) => (SmtpSecurity::Tls, 465),
        ("smtp" | "smtps", Some(_)) => return Err(ConfigError::new(
            name,
            "tls= must be \"required\" or \"opportunistic\" (with smtp://); smtps:// takes none",
        )),
        _ => return Err(ConfigError::new(name, shape)),
    };
    let decode = |part: &str| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map(|s| s.into_owned())
            .map_err(|_| ConfigError::new(name, "its user name or password is not valid UTF-8"))
    };
    let credentials = match url.password() {
        Some(password) => Some(SmtpCredentials {
            user: decode(url.username())?,
            password: Secret::new(decode(password)?),
        }),
        None => None,
    };
    let hello_name = Some(url.path().trim_matches('/'))
        .filter(|p| !p.is_empty())
        .map(str::to_owned);
    Ok(SmtpSettings {
        port: url.port().unwrap_or(default_port),
        host,
        security,
        credentials,
        hello_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_as_lettre_documents_them() {
        let local = parse_smtp_url("smtp://127.0.0.1:1025").unwrap();
        assert_eq!(
            (local.host.as_str(), local.port, local.security),
            ("127.0.0.1", 1025, SmtpSecurity::None)
        );
        assert_eq!(local.credentials, None);

        let sendgrid =
            parse_smtp_url("smtp://apikey:SG.x%2By@smtp.sendgrid.net:587?tls=required").unwrap();
        assert_eq!(sendgrid.security, SmtpSecurity::StartTlsRequired);
        let credentials = sendgrid.credentials.unwrap();
        assert_eq!(credentials.user, "apikey");
        assert_eq!(credentials.password.expose(), "SG.x+y");

        let wrapped = parse_smtp_url("smtps://u:p@mail.example.com").unwrap();
        assert_eq!((wrapped.port, wrapped.security), (465, SmtpSecurity::Tls));
        let named = parse_smtp_url("smtp://relay.example.com/leads.example.com").unwrap();
        assert_eq!(named.hello_name.as_deref(), Some("leads.example.com"));
        assert_eq!(named.port, 25);
    }

    #[test]
    fn smtp_urls_that_could_never_send_are_refused_without_their_password() {
        for bad in [
            "smtp://h:1025?tls=bogus",
            "smtps://h?tls=required",
            "http://h",
            "smtp://",
            "not a url",
            "smtp://user:s3cr3t-pw@h?tls=yes",
        ] {
            let error = parse_smtp_url(bad).expect_err(bad);
            assert_eq!(error.setting, "SMTP_URL");
            assert!(!error.to_string().contains("s3cr3t-pw"), "{error}");
        }
    }
}
