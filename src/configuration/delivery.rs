//! Acting on each lead: which destinations are switched on, and how long a
//! delivery is retried. Each destination is switched on by its own settings;
//! none configured is the digest alone.

use super::{setting, ConfigError};
use crate::domain::{Recipients, Secret};
use crate::schedule::Schedule;
use base64::Engine as _;
use std::time::Duration;
use url::Url;

/// How often the LeadDeliver timer (and standalone mode) sweeps for due
/// deliveries: every minute, a safety net behind the delivery each new lead
/// starts at once.
pub const EVERY_MINUTE: &str = "0 */1 * * * *";
const DEFAULT_MAX_AGE_HOURS: u64 = 24;
const DEFAULT_NOTIFY_MAX_PER_HOUR: u32 = 10;
/// Standard Webhooks secrets are 24 to 64 random bytes.
const MIN_WEBHOOK_SECRET_BYTES: usize = 24;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    pub notify: Option<NotifySettings>,
    /// A Teams Workflows webhook URL. It carries its own signature (`sig=`),
    /// so it is a secret.
    pub teams: Option<Secret>,
    pub webhook: Option<WebhookSettings>,
    pub crm: super::crm::CrmSettings,
    /// A delivery still failing this long after it was queued is dead.
    pub max_age: Duration,
    pub schedule: Schedule,
}

impl DeliverySettings {
    /// Whether any destination is switched on.
    pub fn any(&self) -> bool {
        self.notify.is_some()
            || self.teams.is_some()
            || self.webhook.is_some()
            || self.crm.dataverse.is_some()
            || self.crm.hubspot.is_some()
    }
}

/// One email per lead (`NOTIFY_TO`), through the digest's transport.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    pub to: Recipients,
    /// Sends per rolling hour; beyond it leads are combined into one email.
    pub max_per_hour: u32,
}

#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub url: Url,
    /// `whsec_<base64>`, as Standard Webhooks writes it.
    pub secret: Secret,
}

pub(super) fn delivery_settings(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<DeliverySettings, ConfigError> {
    let notify = match get(setting::NOTIFY_TO) {
        Some(to) => Some(NotifySettings {
            to: Recipients::parse(&to).map_err(|e| ConfigError::new(setting::NOTIFY_TO, e))?,
            max_per_hour: match get(setting::NOTIFY_MAX_PER_HOUR) {
                Some(n) => n
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=10_000).contains(n))
                    .ok_or_else(|| {
                        ConfigError::new(
                            setting::NOTIFY_MAX_PER_HOUR,
                            "must be a whole number from 1 to 10000 (ACS: 10 for an \
                             Azure-managed domain, 100 for a custom one)",
                        )
                    })?,
                None => DEFAULT_NOTIFY_MAX_PER_HOUR,
            },
        }),
        None => None,
    };
    let teams = get(setting::TEAMS_WEBHOOK_URL)
        .map(|url| {
            https_url(setting::TEAMS_WEBHOOK_URL, &url)?;
            Ok(Secret::new(url.trim()))
        })
        .transpose()?;
    let webhook = match (get(setting::WEBHOOK_URL), get(setting::WEBHOOK_SECRET)) {
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::new(
                setting::WEBHOOK_SECRET,
                "must be set with WEBHOOK_URL: the whsec_... signing secret",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                setting::WEBHOOK_URL,
                "must be set with WEBHOOK_SECRET",
            ))
        }
        (Some(url), Some(secret)) => Some(WebhookSettings {
            url: https_url(setting::WEBHOOK_URL, &url)?,
            secret: webhook_secret(&secret)?,
        }),
    };
    let max_age_hours = match get(setting::DELIVERY_MAX_AGE_HOURS) {
        Some(v) => v
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|h| (1..=24 * 14).contains(h))
            .ok_or_else(|| {
                ConfigError::new(
                    setting::DELIVERY_MAX_AGE_HOURS,
                    "must be a whole number of hours from 1 to 336",
                )
            })?,
        None => DEFAULT_MAX_AGE_HOURS,
    };
    let schedule = Schedule::parse(
        get(setting::DELIVERY_SCHEDULE)
            .as_deref()
            .unwrap_or(EVERY_MINUTE),
    )
    .map_err(|e| ConfigError::new(setting::DELIVERY_SCHEDULE, e))?;
    Ok(DeliverySettings {
        notify,
        teams,
        webhook,
        crm: super::crm::crm_settings(get)?,
        max_age: Duration::from_secs(max_age_hours * 3600),
        schedule,
    })
}

/// An `https://` URL; plain `http://` only to this machine (local receivers).
pub(super) fn https_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim())
        .map_err(|_| ConfigError::new(name, "is not a URL (expected https://...)"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(ConfigError::new(
            name,
            "must be an https:// URL (http:// only to 127.0.0.1 or localhost)",
        )),
    }
}

fn webhook_secret(value: &str) -> Result<Secret, ConfigError> {
    let key = value.trim().strip_prefix("whsec_").ok_or_else(|| {
        ConfigError::new(
            setting::WEBHOOK_SECRET,
            "must start with whsec_ followed by base64 (Standard Webhooks)",
        )
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .map_err(|_| ConfigError::new(setting::WEBHOOK_SECRET, "is not whsec_ + base64"))?;
    if bytes.len() < MIN_WEBHOOK_SECRET_BYTES {
        return Err(ConfigError::new(
            setting::WEBHOOK_SECRET,
            "is too short: use at least 24 random bytes (e.g. whsec_$(openssl rand -base64 32))",
        ));
    }
    Ok(Secret::new(value.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<DeliverySettings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        delivery_settings(&|name: &str| map.get(name).cloned())
    }

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    #[test]
    fn nothing_configured_is_nothing_switched_on() {
        let s = settings(&[]).unwrap();
        assert!(!s.any());
        assert_eq!(s.max_age, Duration::from_secs(24 * 3600));
    }

    #[test]
    fn each_destination_by_its_settings() {
        let s = settings(&[
            ("NOTIFY_TO", "sales@contoso.com; ceo@contoso.com"),
            (
                "TEAMS_WEBHOOK_URL",
                "https://prod.westus.logic.azure.com/workflows/x?sig=abc",
            ),
            ("WEBHOOK_URL", "https://hooks.zapier.com/hooks/catch/1/2/"),
            ("WEBHOOK_SECRET", SECRET),
            ("DELIVERY_MAX_AGE_HOURS", "48"),
        ])
        .unwrap();
        assert_eq!(
            s.notify.as_ref().map(|n| (n.to.len(), n.max_per_hour)),
            Some((2, 10))
        );
        assert!(s.teams.is_some() && s.webhook.is_some());
        assert_eq!(s.max_age, Duration::from_secs(48 * 3600));
        assert!(
            !format!("{s:?}").contains("sig=abc"),
            "the Teams URL is a secret"
        );
    }

    #[test]
    fn wrong_settings_are_named_without_their_secret() {
        let error = |pairs: &[(&str, &str)]| settings(pairs).unwrap_err();
        assert_eq!(
            error(&[("WEBHOOK_URL", "https://x.example")]).setting,
            "WEBHOOK_SECRET"
        );
        assert_eq!(error(&[("WEBHOOK_SECRET", SECRET)]).setting, "WEBHOOK_URL");
        let short = error(&[
            ("WEBHOOK_URL", "https://x.example"),
            ("WEBHOOK_SECRET", "whsec_c2hvcnQ="),
        ]);
        assert_eq!(short.setting, "WEBHOOK_SECRET");
        assert!(!short.to_string().contains("c2hvcnQ"));
        assert_eq!(
            error(&[
                ("WEBHOOK_URL", "http://example.com/hook"),
                ("WEBHOOK_SECRET", SECRET)
            ])
            .setting,
            "WEBHOOK_URL"
        );
        assert_eq!(
            error(&[("TEAMS_WEBHOOK_URL", "not a url")]).setting,
            "TEAMS_WEBHOOK_URL"
        );
        assert_eq!(error(&[("NOTIFY_TO", "nobody")]).setting, "NOTIFY_TO");
        assert_eq!(
            error(&[("NOTIFY_TO", "a@b.co"), ("NOTIFY_MAX_PER_HOUR", "0")]).setting,
            "NOTIFY_MAX_PER_HOUR"
        );
        assert_eq!(
            error(&[("DELIVERY_MAX_AGE_HOURS", "0")]).setting,
            "DELIVERY_MAX_AGE_HOURS"
        );
        assert_eq!(
            error(&[("DELIVERY_SCHEDULE", "soon")]).setting,
            "DELIVERY_SCHEDULE"
        );
        assert!(settings(&[
            ("WEBHOOK_URL", "http://127.0.0.1:9000/hook"),
            ("WEBHOOK_SECRET", SECRET)
        ])
        .is_ok());
    }
}
