//! Acting on each lead, engine-wide: how long a delivery is retried, how
//! often the sweep runs, and what CRMs take by default. Each destination
//! is switched on by its own settings, read beside it
//! (`delivery::destinations`); none configured is the digest alone.

use super::environment::Environment;
use super::{setting, values, ConfigError};
use crate::schedule::Schedule;
use std::time::Duration;

/// How often the LeadDeliver timer (and standalone mode) sweeps for due
/// deliveries: every minute, a safety net behind the delivery each new lead
/// starts at once.
pub const EVERY_MINUTE: &str = "0 */1 * * * *";
const DEFAULT_MAX_AGE_HOURS: u64 = 24;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// A delivery still failing this long after it was queued is dead.
    pub max_age: Duration,
    pub schedule: Schedule,
    /// Partner Center's test leads go to the CRMs too (`CRM_INCLUDE_TEST_LEADS`).
    pub crm_test_leads: bool,
    /// "Do not contact" leads go to the CRMs that can mark them so
    /// (`CRM_INCLUDE_DNC`).
    pub crm_do_not_contact: bool,
    /// Every setting, for the destinations to read theirs.
    pub environment: Environment,
}

pub(super) fn delivery_settings(
    get: &impl Fn(&str) -> Option<String>,
    environment: Environment,
) -> Result<DeliverySettings, ConfigError> {
    let max_age_hours = values::number(
        setting::DELIVERY_MAX_AGE_HOURS,
        get(setting::DELIVERY_MAX_AGE_HOURS).as_deref(),
        1..=24 * 14,
        DEFAULT_MAX_AGE_HOURS,
        " (hours)",
    )?;
    let schedule = Schedule::parse(
        get(setting::DELIVERY_SCHEDULE)
            .as_deref()
            .unwrap_or(EVERY_MINUTE),
    )
    .map_err(|e| ConfigError::new(setting::DELIVERY_SCHEDULE, e))?;
    Ok(DeliverySettings {
        max_age: Duration::from_secs(max_age_hours * 3600),
        schedule,
        crm_test_leads: values::boolean(
            setting::CRM_INCLUDE_TEST_LEADS,
            get(setting::CRM_INCLUDE_TEST_LEADS).as_deref(),
            false,
        )?,
        crm_do_not_contact: values::boolean(
            setting::CRM_INCLUDE_DNC,
            get(setting::CRM_INCLUDE_DNC).as_deref(),
            false,
        )?,
        environment,
    })
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
        let environment = Environment::new(map.clone());
        delivery_settings(&|name: &str| map.get(name).cloned(), environment)
    }

    #[test]
    fn defaults_and_bounds() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.max_age, Duration::from_secs(24 * 3600));
        assert!(!s.crm_test_leads && !s.crm_do_not_contact);
        let s = settings(&[
            ("DELIVERY_MAX_AGE_HOURS", "48"),
            ("CRM_INCLUDE_TEST_LEADS", "true"),
            ("CRM_INCLUDE_DNC", "yes"),
        ])
        .unwrap();
        assert_eq!(s.max_age, Duration::from_secs(48 * 3600));
        assert!(s.crm_test_leads && s.crm_do_not_contact);
        for (name, value) in [
            ("DELIVERY_MAX_AGE_HOURS", "0"),
            ("DELIVERY_MAX_AGE_HOURS", "337"),
            ("DELIVERY_SCHEDULE", "soon"),
            ("CRM_INCLUDE_TEST_LEADS", "maybe"),
            ("CRM_INCLUDE_DNC", "2"),
        ] {
            assert_eq!(settings(&[(name, value)]).unwrap_err().setting, name);
        }
    }
}
