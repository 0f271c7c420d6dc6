//! Email delivery: the message we send and the transports that send it.
//!
//! Two transports, chosen by configuration: Azure Communication Services'
//! email REST API ([`acs`]) and SMTP ([`smtp`]). Both take the same
//! [`Email`]; both return only once the provider has accepted the message,
//! because the digest moves its checkpoint on that answer.

pub mod acs;
pub mod smtp;

use crate::configuration::{AcsAuth as AcsAuthSettings, TransportSettings};
use crate::domain::{EmailAddress, Recipients};

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
    /// The message was not handed over: the provider could not be reached,
    /// or refused it for now. A later attempt may succeed.
    #[error("the email provider is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// The message was handed over but no answer came back (the connection
    /// broke, or time ran out): it may have been sent. Send it again only
    /// with the same idempotency key.
    #[error("the email may or may not have been sent: {0:#}")]
    Unknown(anyhow::Error),
}

impl SendError {
    /// Whether the provider may have accepted the message after all.
    pub fn may_have_been_sent(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }
}

/// The configured transport.
#[derive(Debug, Clone)]
pub enum Mailer {
    Acs(acs::AcsMailer),
    Smtp(smtp::SmtpMailer),
}

impl Mailer {
    /// Builds the transport the settings name. Settings were validated at
    /// start-up; what can still fail here is the machine (no identity
    /// source, no TLS roots), said in a message naming the setting.
    pub fn from_settings(transport: &TransportSettings) -> Result<Self, String> {
        match transport {
            TransportSettings::Acs(settings) => {
                let auth = match &settings.auth {
                    AcsAuthSettings::AccessKey(key) => acs::AcsAuth::AccessKey(key.clone()),
                    AcsAuthSettings::Identity => acs::AcsAuth::Token(
                        crate::identity::default_credential().map_err(|_| {
                            "ACS_ENDPOINT: no identity is available to get a token \
                             (in Azure: a managed identity; elsewhere: az login)"
                                .to_owned()
                        })?,
                    ),
                };
                acs::AcsMailer::new(settings.endpoint.clone(), auth)
                    .map(Self::Acs)
                    .map_err(|e| e.to_string())
            }
            TransportSettings::Smtp(settings) => Ok(Self::Smtp(smtp::SmtpMailer::new(settings))),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::Acs(_) => "acs",
            Self::Smtp(_) => "smtp",
        }
    }

    /// The longest [`Mailer::send`] takes, whatever the provider does.
    pub fn send_budget(&self) -> std::time::Duration {
        match self {
            Self::Acs(_) => acs::SEND_BUDGET,
            Self::Smtp(_) => smtp::SEND_BUDGET,
        }
    }

    pub async fn send(&self, email: &Email) -> Result<Receipt, SendError> {
        match self {
            Self::Acs(mailer) => mailer.send(email).await,
            Self::Smtp(mailer) => mailer.send(email).await,
        }
    }
}
