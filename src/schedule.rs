//! NCRONTAB schedules, as Azure Functions timer triggers write them:
//! six fields, seconds first, UTC (`0 0 * * * *` = every hour on the hour).
//!
//! Standalone mode runs the digest on this schedule itself; under the
//! Functions host the host does, from the same `DIGEST_SCHEDULE` setting.

use std::str::FromStr;
use time::OffsetDateTime;

#[derive(Debug, Clone)]
pub struct Schedule {
    expression: String,
    inner: cron::Schedule,
}

/// Every hour on the hour: the digest's default.
pub const HOURLY: &str = "0 0 * * * *";

impl Schedule {
    /// Parses an NCRONTAB expression; refuses one that never fires (such
    /// as 30 February), which would otherwise start and silently do nothing.
    pub fn parse(expression: &str) -> Result<Self, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "must have six NCRONTAB fields (second minute hour day month day-of-week), \
                 e.g. {HOURLY:?}"
            ));
        }
        let day_of_week = cron_days_of_week(fields[5])?;
        let translated = format!("{} {day_of_week}", fields[..5].join(" "));
        let inner = cron::Schedule::from_str(&translated)
            .map_err(|e| format!("is not a valid NCRONTAB expression: {e}"))?;
        if inner.upcoming(chrono::Utc).next().is_none() {
            return Err("never fires (no date matches it)".to_owned());
        }
        Ok(Self {
            expression: fields.join(" "),
            inner,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The first occurrence strictly after `after`.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = chrono::DateTime::from_timestamp(after.unix_timestamp(), after.nanosecond())?;
        let next = self.inner.after(&after).next()?;
        OffsetDateTime::from_unix_timestamp(next.timestamp()).ok()
    }
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// NCRONTAB numbers days of the week 0–6 from Sunday, and 7 is Sunday too;
/// the `cron` crate numbers them 1–7 from Sunday. Rather than renumber
/// piece by piece (which turns `6-7`, Saturday and Sunday, into the wrapped
/// range `7-1`), the field is expanded to its set of days and written out
/// as a list: `6-7` → `1,7`, `MON-FRI` → `2,3,4,5,6`, `*` stays `*`.
fn cron_days_of_week(field: &str) -> Result<String, String> {
    if field == "*" || field == "?" {
        return Ok("*".to_owned());
    }
    let mut days = [false; 7];
    for part in field.split(',') {
        let (base, step) = match part.split_once('/') {
            Some((base, step)) => {
                let step: u8 =
                    step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                        format!("day-of-week step {step:?} is not a positive number")
                    })?;
                (base, step)
            }
            None => (part, 1),
        };
        let (first, last) = match base {
            "*" => (0, 6),
            _ => match base.split_once('-') {
                Some((from, to)) => (day_number(from)?, day_number(to)?),
                // `5/2`: from Friday on, every second day.
                None if step > 1 => (day_number(base)?, 6),
                None => (day_number(base)?, day_number(base)?),
            },
        };
        if first > last {
            return Err(format!("day-of-week range {base:?} runs backwards"));
        }
        for day in (first..=last).step_by(usize::from(step)) {
            days[usize::from(day % 7)] = true;
        }
    }
    Ok((0..7)
        .filter(|&d| days[d])
        .map(|d| (d + 1).to_string())
        .collect::<Vec<_>>()
        .join(","))
}

/// `0`–`7` (both ends Sunday) or a three-letter English name.
fn day_number(text: &str) -> Result<u8, String> {
    if let Some(i) = DAY_NAMES.iter().position(|n| n.eq_ignore_ascii_case(text)) {
        return Ok(i as u8);
    }
    text.parse::<u8>()
        .ok()
        .filter(|n| *n <= 7)
        .ok_or_else(|| format!("day-of-week {text:?} is not 0-7 or SUN-SAT"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn hourly_default() {
        let s = Schedule::parse("0 0 * * * *").unwrap();
        assert_eq!(
            s.next_after(datetime!(2026-11-22 10:14:13 UTC)),
            Some(datetime!(2026-11-22 11:00:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2026-11-22 11:00:00 UTC)),
            Some(datetime!(2026-11-22 12:00:00 UTC))
        );
    }

    #[test]
    fn every_five_minutes() {
        let s = Schedule::parse("0 */5 * * * *").unwrap();
        assert_eq!(
            s.next_after(datetime!(2026-11-22 10:14:13 UTC)),
            Some(datetime!(2026-11-22 10:15:00 UTC))
        );
    }

    #[test]
    fn weekdays_use_ncrontab_numbering() {
        // 2026-11-22 is a Sunday; "1-5" means Monday to Friday in NCRONTAB.
        let s = Schedule::parse("0 30 9 * * 1-5").unwrap();
        assert_eq!(
            s.next_after(datetime!(2026-11-22 10:00:00 UTC)),
            Some(datetime!(2026-11-23 09:30:00 UTC))
        );
        let sunday = Schedule::parse("0 0 8 * * 0").unwrap();
        assert_eq!(
            sunday.next_after(datetime!(2026-11-21 10:00:00 UTC)),
            Some(datetime!(2026-11-22 08:00:00 UTC))
        );
        let named = Schedule::parse("0 0 8 * * Mon").unwrap();
        assert_eq!(
            named.next_after(datetime!(2026-11-22 10:00:00 UTC)),
            Some(datetime!(2026-11-23 08:00:00 UTC))
        );
    }

    #[test]
    fn day_of_week_forms_users_write() {
        // 2026-11-22 is a Sunday.
        let sunday = datetime!(2026-11-22 00:00:00 UTC);
        let days = |expression: &str| -> Vec<time::Weekday> {
            let s = Schedule::parse(expression).expect(expression);
            let mut at = sunday;
            (0..7)
                .map(|_| {
                    at = s.next_after(at).unwrap();
                    at.weekday()
                })
                .collect()
        };
        use time::Weekday::*;
        let weekdays = [Monday, Tuesday, Wednesday, Thursday, Friday];
        for weekdays_expression in ["0 0 8 * * 1-5", "0 0 8 * * MON-FRI", "0 0 8 * * mon-fri"] {
            assert_eq!(&days(weekdays_expression)[..5], weekdays);
        }
        let weekend = [Sunday, Saturday, Sunday, Saturday];
        assert_eq!(&days("0 0 8 * * 6-7")[..4], weekend);
        assert_eq!(&days("0 0 8 * * 0,6")[..4], weekend);
        assert_eq!(&days("0 0 8 * * SAT,SUN")[..4], weekend);
        assert_eq!(&days("0 0 8 * * SUN")[..2], [Sunday, Sunday]);
        assert_eq!(&days("0 0 8 * * 7")[..2], [Sunday, Sunday]);
        assert_eq!(&days("0 0 8 * * 0")[..2], [Sunday, Sunday]);
        assert_eq!(&days("0 0 8 * * 1-5/2")[..3], [Monday, Wednesday, Friday]);
        assert_eq!(days("0 0 8 * * *").len(), 7);
    }

    #[test]
    fn a_schedule_that_never_fires_is_refused() {
        let error = Schedule::parse("0 0 8 30 2 *").unwrap_err();
        assert!(error.contains("never fires"), "{error}");
    }

    #[test]
    fn invalid_expressions_are_rejected() {
        for bad in [
            "",
            "0 * * * *",
            "hourly",
            "0 0 * * * 9",
            "0 0 * * * 5-1",
            "0 0 * * * FUNDAY",
            "0 0 * * * */0",
            "0 61 * * * *",
            "00:05:00",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
