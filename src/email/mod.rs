//! Email delivery: the message we send and the transports that send it.
//!
//! Two transports, chosen by configuration: Azure Communication Services'
//! email REST API ([`acs`]) and SMTP ([`smtp`]). Both take the same
//! [`Email`]; both return only once the provider has accepted the message,
//! because the digest moves its checkpoint on that answer.

pub mod acs;
pub mod smtp;

use crate::configuration::{DigestSettings, TransportSettings};
use std::fmt;

/// A syntactically valid email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        value
            .parse::<lettre::Address>()
            .map(|_| Self(value.to_owned()))
            .map_err(|_| "is not a valid email address".to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One or more addresses, written as Partner Center's contact-email field
/// takes them: separated by `;` or `,`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients(Vec<EmailAddress>);

/// ACS accepts at most 50 recipients per message.
const MAX_RECIPIENTS: usize = 50;

impl Recipients {
    pub fn parse(value: &str) -> Result<Self, String> {
        let addresses = value
            .split([';', ','])
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(|a| {
                EmailAddress::parse(a).map_err(|_| format!("{a:?} is not a valid email address"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        match addresses.len() {
            0 => Err("lists no address".to_owned()),
            n if n > MAX_RECIPIENTS => {
                Err(format!("lists {n} addresses; at most {MAX_RECIPIENTS}"))
            }
            _ => Ok(Self(addresses)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &EmailAddress> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A message ready to send. Customer text only ever appears in the bodies,
/// never in a header.
#[derive(Debug, Clone)]
pub struct Email {
    pub from: EmailAddress,
    pub to: Recipients,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Stable for a given digest window: ACS's `Operation-Id`, and the SMTP
    /// `Message-ID`, so a resend of the same digest is recognisable.
    pub idempotency_key: uuid::Uuid,
}

/// The provider's name for the accepted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub message_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The provider refused the message; sending it again will not help.
    #[error("the email provider rejected the message: {0}")]
    Rejected(String),
    /// Could not reach the provider, or it failed; a later run may succeed.
    #[error("the email provider is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
}

/// The configured transport.
#[derive(Debug, Clone)]
pub enum Mailer {
    Acs(acs::AcsMailer),
    Smtp(smtp::SmtpMailer),
}

impl Mailer {
    /// Builds the transport the settings name; `Err` names the missing
    /// settings when the digest cannot send.
    pub fn from_settings(settings: &DigestSettings) -> Result<Self, String> {
        match &settings.transport {
            Some(TransportSettings::Acs { endpoint, auth }) => Ok(Self::Acs(acs::AcsMailer::new(
                endpoint.clone(),
                auth.clone(),
            ))),
            Some(TransportSettings::Smtp(url)) => smtp::SmtpMailer::from_url(url.expose())
                .map(Self::Smtp)
                .map_err(|e| format!("SMTP_URL: {e}")),
            None => Err(
                "no email transport is configured: set ACS_ENDPOINT (managed identity) or \
                 ACS_CONNECTION_STRING, or SMTP_URL"
                    .to_owned(),
            ),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Acs(_) => "acs",
            Self::Smtp(_) => "smtp",
        }
    }

    pub async fn send(&self, email: &Email) -> Result<Receipt, SendError> {
        match self {
            Self::Acs(mailer) => mailer.send(email).await,
            Self::Smtp(mailer) => mailer.send(email).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_split_on_semicolons_and_commas() {
        let r = Recipients::parse(" a@contoso.com;b@contoso.com , c@contoso.com;; ").unwrap();
        let list: Vec<_> = r.iter().map(EmailAddress::as_str).collect();
        assert_eq!(list, ["a@contoso.com", "b@contoso.com", "c@contoso.com"]);
    }

    #[test]
    fn invalid_recipients_are_rejected() {
        assert!(Recipients::parse("").is_err());
        assert!(Recipients::parse(" ; , ").is_err());
        assert!(Recipients::parse("a@contoso.com; nope").is_err());
        assert!(Recipients::parse("a@b.c\r\nBcc: evil@x.y").is_err());
        let many = vec!["a@b.co"; 51].join(";");
        assert!(Recipients::parse(&many).is_err());
    }

    #[test]
    fn address_rejects_header_injection() {
        assert!(EmailAddress::parse("x@y.z\nBcc: a@b.c").is_err());
        assert!(EmailAddress::parse("DoNotReply@x.azurecomm.net").is_ok());
    }
}
