//! Email per lead (`NOTIFY_TO`), through the digest's transport from
//! `DIGEST_FROM`. One email per lead in normal traffic; the rate is capped
//! by the sending domain's budget (`NOTIFY_MAX_PER_HOUR`: ACS's
//! Azure-managed domains allow 10 an hour, for every email destination and
//! the digest together; `NOTIFY_MAX_PER_HOUR__<label>` may only lower one
//! destination's share): once the cap is near, the leads waiting are
//! combined into the next email instead of being dropped or failed. The body is a card per lead
//! ([`LeadEmail`]: auto-escaped HTML and plain text), its subject naming
//! who, which offer and what they did.

use crate::configuration::{
    values, ConfigError, ConfigWarning, Scope, Settings, TransportSettings,
};
use crate::delivery::destination::{Batch, Destination, HourlyCap};
use crate::delivery::outcome::{Outcome, Status};
use crate::digest::card::LeadEmail;
use crate::domain::{DestinationName, EmailAddress, Recipients, Secret};
use crate::email::{Email, Mailer, SendError};
use crate::store::rate::{sending_domain_budget, DIGEST_SENDER};
use futures::future::BoxFuture;

pub const KIND: &str = "email";
/// Its route settings start with this: `NOTIFY_OFFERS`.
pub const PREFIX: &str = "NOTIFY";
/// What it is called in help and lists.
pub const TITLE: &str = "email";
/// What it does with a lead, in a few words.
pub const ABOUT: &str = "one email per lead, sent as the digest is (ACS or SMTP)";
/// Its settings: the first switches it on, the others refine it.
pub const NOTIFY_TO: &str = "NOTIFY_TO";
pub const NOTIFY_MAX_PER_HOUR: &str = "NOTIFY_MAX_PER_HOUR";
pub const SETTINGS: &[&str] = &[NOTIFY_TO, NOTIFY_MAX_PER_HOUR];
/// ACS's Azure-managed domains send 10 emails an hour.
const DEFAULT_MAX_PER_HOUR: u32 = 10;
/// Leads combined into one email at most.
const MAX_COMBINED: usize = 200;

#[derive(Debug)]
pub struct NotifyDestination {
    name: DestinationName,
    mailer: Mailer,
    to: Recipients,
    from: EmailAddress,
    cap: HourlyCap,
    secrets: Vec<Secret>,
}

/// `NOTIFY_TO[__label]` (recipients); `NOTIFY_MAX_PER_HOUR` the sending
/// domain's budget, `NOTIFY_MAX_PER_HOUR__label` a lower share of it.
pub fn build(
    scope: Scope<'_>,
    name: DestinationName,
    settings: &Settings,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError> {
    let to = scope.required(NOTIFY_TO)?;
    let to = Recipients::parse(&to).map_err(|e| scope.error(NOTIFY_TO, e))?;
    let environment = &settings.delivery.environment;
    let budget_limit = values::number(
        NOTIFY_MAX_PER_HOUR,
        environment.get(NOTIFY_MAX_PER_HOUR).as_deref(),
        1..=10_000,
        DEFAULT_MAX_PER_HOUR,
        " (ACS: 10 for an Azure-managed domain, 100 for a custom one)",
    )?;
    let own_limit = match scope.label() {
        None => None,
        Some(_) => {
            let own = scope.get(NOTIFY_MAX_PER_HOUR);
            let own = own
                .map(|v| {
                    values::number(
                        &scope.name(NOTIFY_MAX_PER_HOUR),
                        Some(&v),
                        1..=10_000,
                        budget_limit,
                        "",
                    )
                })
                .transpose()?;
            if own.is_some_and(|own| own > budget_limit) {
                warnings.push(ConfigWarning::new(
                    scope.name(NOTIFY_MAX_PER_HOUR),
                    format!(
                        "is more than NOTIFY_MAX_PER_HOUR ({budget_limit}), the budget every \
                         per-lead email and the digest share: it can only lower this \
                         destination's share"
                    ),
                ));
            }
            own.filter(|own| *own < budget_limit)
        }
    };
    // The per-lead email goes out the digest's way: it needs both.
    let transport = settings.email.transport.as_ref().ok_or_else(|| {
        scope.error(
            NOTIFY_TO,
            "needs an email transport: set ACS_ENDPOINT, ACS_CONNECTION_STRING or SMTP_URL",
        )
    })?;
    let from = settings
        .email
        .from
        .clone()
        .ok_or_else(|| scope.error(NOTIFY_TO, "needs DIGEST_FROM, the sender address"))?;
    let mailer = Mailer::from_settings(transport).map_err(|e| scope.error(NOTIFY_TO, e))?;
    let cap = HourlyCap {
        budget: sending_domain_budget(from.domain()),
        budget_limit,
        own_limit,
        reserved_for: settings.digest.to.as_ref().map(|_| DIGEST_SENDER),
    };
    let secrets = match transport {
        TransportSettings::Smtp(smtp) => smtp
            .credentials
            .iter()
            .map(|c| c.password.clone())
            .collect(),
        TransportSettings::Acs(acs) => match &acs.auth {
            crate::configuration::AcsAuth::AccessKey(key) => vec![key.clone()],
            crate::configuration::AcsAuth::Identity => Vec::new(),
        },
    };
    Ok(Box::new(NotifyDestination {
        name,
        mailer,
        to,
        from,
        cap,
        secrets,
    }))
}

impl NotifyDestination {
    /// Sends one email of `leads` whose idempotency key (`Message-ID`,
    /// `Operation-Id`) is `key`.
    async fn send(&self, batch: Batch<'_>) -> Outcome {
        let message = LeadEmail::of(batch.leads);
        let email = Email {
            from: self.from.clone(),
            to: self.to.clone(),
            subject: message.subject,
            text: message.text,
            html: message.html,
            idempotency_key: batch.key,
        };
        match self.mailer.send(&email).await {
            Ok(receipt) => Outcome::Delivered {
                status: Status::Accepted(receipt.message_id),
            },
            Err(SendError::Rejected(reason)) => Outcome::dead(Status::Rejected, reason),
            Err(error @ SendError::Unavailable(_)) => {
                Outcome::retry(Status::Unavailable, error.to_string())
            }
            Err(error @ SendError::Unknown(_)) => Outcome::Retry {
                status: Status::OutcomeUnknown,
                error: error.to_string(),
                after: None,
                maybe_done: true,
            },
        }
    }
}

impl Destination for NotifyDestination {
    fn name(&self) -> &DestinationName {
        &self.name
    }

    fn capacity(&self) -> usize {
        MAX_COMBINED
    }

    fn hourly_cap(&self) -> Option<HourlyCap> {
        Some(self.cap.clone())
    }

    fn attempt_bound(&self) -> std::time::Duration {
        self.mailer.send_budget()
    }

    fn secrets(&self) -> Vec<Secret> {
        self.secrets.clone()
    }

    fn deliver<'a>(&'a self, batch: Batch<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.send(batch))
    }
}

#[cfg(test)]
mod tests {
    fn built(pairs: &[(&str, &str)]) -> Result<Vec<String>, crate::configuration::ConfigError> {
        crate::delivery::destinations::testing::built(super::KIND, pairs)
    }

    #[test]
    fn settings_name_what_is_wrong() {
        let smtp = [
            ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
            ("SMTP_URL", "smtp://127.0.0.1:1025"),
            ("DIGEST_FROM", "leads@contoso.com"),
        ];
        let error = |extra: &[(&str, &str)]| {
            let mut pairs = smtp.to_vec();
            pairs.extend_from_slice(extra);
            built(&pairs).unwrap_err().setting.into_owned()
        };
        assert_eq!(error(&[("NOTIFY_TO", "nobody")]), "NOTIFY_TO");
        assert_eq!(
            error(&[("NOTIFY_TO", "a@b.co"), ("NOTIFY_MAX_PER_HOUR", "0")]),
            "NOTIFY_MAX_PER_HOUR"
        );
        assert_eq!(
            error(&[
                ("NOTIFY_TO__backup", "a@b.co"),
                ("NOTIFY_MAX_PER_HOUR__backup", "10001")
            ]),
            "NOTIFY_MAX_PER_HOUR__backup"
        );
        let names = built(
            &[
                smtp.as_slice(),
                &[("NOTIFY_TO", "a@b.co"), ("NOTIFY_TO__backup", "c@d.co")],
            ]
            .concat(),
        )
        .unwrap();
        assert_eq!(names, ["email", "email:backup"]);
        // Without a transport or a sender.
        assert_eq!(
            built(&[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("NOTIFY_TO", "a@b.co")
            ])
            .unwrap_err()
            .setting,
            "NOTIFY_TO"
        );
    }
}
