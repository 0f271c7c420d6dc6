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

impl Schedule {
    pub fn parse(expression: &str) -> Result<Self, String> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 6 {
            return Err(format!(
                "must have six NCRONTAB fields (second minute hour day month day-of-week), \
                 e.g. {:?}",
                crate::configuration::DEFAULT_DIGEST_SCHEDULE
            ));
        }
        let day_of_week = shift_days_of_week(fields[5])?;
        let translated = format!("{} {day_of_week}", fields[..5].join(" "));
        let inner = cron::Schedule::from_str(&translated)
            .map_err(|e| format!("is not a valid NCRONTAB expression: {e}"))?;
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

/// NCRONTAB numbers days of the week 0–6 from Sunday (7 is Sunday too);
/// the `cron` crate numbers them 1–7. Names pass through unchanged.
fn shift_days_of_week(field: &str) -> Result<String, String> {
    let mut out = String::with_capacity(field.len() + 4);
    let mut number = String::new();
    let mut after_slash = false;
    let flush = |number: &mut String, out: &mut String, after_slash: bool| -> Result<(), String> {
        if number.is_empty() {
            return Ok(());
        }
        let n: u32 = number
            .parse()
            .map_err(|_| "day-of-week is not a number".to_owned())?;
        if after_slash {
            out.push_str(number); // a step, not a day
        } else if n <= 7 {
            out.push_str(&((n % 7) + 1).to_string());
        } else {
            return Err(format!("day-of-week {n} is out of range 0-6"));
        }
        number.clear();
        Ok(())
    };
    for c in field.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        flush(&mut number, &mut out, after_slash)?;
        after_slash = c == '/';
        out.push(c);
    }
    flush(&mut number, &mut out, after_slash)?;
    Ok(out)
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
    fn invalid_expressions_are_rejected() {
        for bad in [
            "",
            "0 * * * *",
            "hourly",
            "0 0 * * * 9",
            "0 61 * * * *",
            "00:05:00",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad:?}");
        }
    }
}
