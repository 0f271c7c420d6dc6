//! SMTP transport (`lettre`): the local MailDev sink, SendGrid, ACS SMTP,
//! Office 365 — anything configured by one URL in `SMTP_URL`:
//! `smtp://host:port` (plain, for local sinks), `smtp://user:pass@host:587?tls=required`
//! (STARTTLS), `smtps://user:pass@host:465` (TLS).

use super::{Email, Receipt, SendError};
use lettre::message::{header, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// An SMTP conversation that takes longer than this is treated as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpMailer {
    // The transport holds credentials: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpMailer")
    }
}

impl SmtpMailer {
    pub fn from_url(url: &str) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| "is not a valid SMTP URL".to_owned())?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Self { transport })
    }

    pub async fn send(&self, email: &Email) -> Result<Receipt, SendError> {
        let message = build_message(email)?;
        let message_id = message
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_owned();
        match self.transport.send(message).await {
            Ok(_) => Ok(Receipt { message_id }),
            Err(e) if e.is_permanent() => Err(SendError::Rejected(e.to_string())),
            Err(e) => Err(SendError::Unavailable(anyhow::Error::new(e))),
        }
    }
}

/// `multipart/alternative`: plain text first, HTML preferred by clients
/// that can show it.
pub fn build_message(email: &Email) -> Result<Message, SendError> {
    let mailbox = |a: &super::EmailAddress| {
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
