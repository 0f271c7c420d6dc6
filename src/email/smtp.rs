//! SMTP transport (`lettre`): the local MailDev sink, SendGrid, ACS SMTP,
//! Office 365 — anything `SMTP_URL` names (parsed and checked at start-up
//! into [`SmtpSettings`]).

use super::{Email, EmailAddress, Receipt, SendError};
use crate::configuration::{SmtpSecurity, SmtpSettings};
use lettre::message::{header, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// Each SMTP command's answer is awaited this long.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);
/// The whole conversation, connection to `QUIT`, ends within this: a server
/// that stalls (even one answering a byte at a time) cannot hold a run.
pub const SEND_BUDGET: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct SmtpMailer {
    /// `Err` when TLS could not be set up for the host (reported on send,
    /// naming the setting, rather than panicking at start-up).
    transport: Result<AsyncSmtpTransport<Tokio1Executor>, String>,
}

impl std::fmt::Debug for SmtpMailer {
    // The transport holds credentials: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpMailer")
    }
}

impl SmtpMailer {
    pub fn new(settings: &SmtpSettings) -> Self {
        let tls = |host: &str| {
            TlsParameters::new(host.to_owned())
                .map_err(|_| format!("SMTP_URL: TLS cannot be set up for {host}"))
        };
        let transport = (|| {
            let mut builder =
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host)
                    .port(settings.port)
                    .timeout(Some(SMTP_TIMEOUT));
            builder = match settings.security {
                SmtpSecurity::None => builder,
                SmtpSecurity::StartTlsRequired => builder.tls(Tls::Required(tls(&settings.host)?)),
                SmtpSecurity::StartTlsOpportunistic => {
                    builder.tls(Tls::Opportunistic(tls(&settings.host)?))
                }
                SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls(&settings.host)?)),
            };
            if let Some(credentials) = &settings.credentials {
                builder = builder.credentials(Credentials::new(
                    credentials.user.clone(),
                    credentials.password.expose().to_owned(),
                ));
            }
            if let Some(name) = &settings.hello_name {
                builder = builder.hello_name(ClientId::Domain(name.clone()));
            }
            Ok(builder.build())
        })();
        Self { transport }
    }

    pub async fn send(&self, email: &Email) -> Result<Receipt, SendError> {
        let transport = self
            .transport
            .as_ref()
            .map_err(|e| SendError::Rejected(e.clone()))?;
        let message = build_message(email)?;
        let message_id = message
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_owned();
        let sent = tokio::time::timeout(SEND_BUDGET, transport.send(message)).await;
        match sent {
            Ok(Ok(_)) => Ok(Receipt { message_id }),
            Ok(Err(e)) => Err(classify(e)),
            Err(_) => Err(SendError::Unknown(anyhow::anyhow!(
                "the SMTP server did not finish within {} s",
                SEND_BUDGET.as_secs()
            ))),
        }
    }
}

/// A server's reply refusing the message, or a failure before anything was
/// handed over, means it was not sent. Anything else (a connection that
/// broke or stalled mid-conversation, possibly after `DATA`) leaves the
/// outcome unknown.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        return SendError::Rejected(error.to_string());
    }
    let refused_connection = std::error::Error::source(&error).is_some_and(|source| {
        source
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    });
    if error.is_transient() || error.is_client() || error.is_tls() || refused_connection {
        SendError::Unavailable(anyhow::Error::new(error))
    } else {
        SendError::Unknown(anyhow::Error::new(error))
    }
}

/// `multipart/alternative`: plain text first, HTML preferred by clients
/// that can show it.
pub fn build_message(email: &Email) -> Result<Message, SendError> {
    let mailbox = |a: &EmailAddress| {
        a.as_str()
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| SendError::Rejected(format!("address {a}: {e}")))
    };
    let from = mailbox(&email.from)?;
    let domain = email
        .from
        .as_str()
        .rsplit_once('@')
        .map_or("localhost", |(_, d)| d);
    let mut builder = Message::builder()
        .from(from)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}@{domain}>", email.idempotency_key)));
    for to in email.to.iter() {
        builder = builder.to(mailbox(to)?);
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(header::ContentType::TEXT_PLAIN)
                        .body(email.text.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(header::ContentType::TEXT_HTML)
                        .body(email.html.clone()),
                ),
        )
        .map_err(|e| SendError::Rejected(e.to_string()))
}
