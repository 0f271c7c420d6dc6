//! Time arguments of the `leads` commands: an instant (RFC 3339 or a date)
//! or a span before now (`30m`, `24h`, `7d`, `2w`), and the [`TimeRange`]
//! that `--since` and `--until` select.

use crate::domain::TimeRange;
use anyhow::Context as _;
use std::borrow::Cow;
use time::format_description::well_known::Rfc3339;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

const DAY: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");

/// Why a time argument was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "{0:?} is not a time: give RFC 3339 (2026-11-22T10:00:00Z), a date \
     (2026-11-22, midnight UTC) or a span before now (30m, 24h, 7d, 2w)"
)]
pub struct TimeArgError(String);

/// A time argument as given: an instant, or a span before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeArg {
    At(OffsetDateTime),
    Ago(Duration),
}

impl TimeArg {
    /// Parses `2026-11-22T10:00:00Z` (any RFC 3339 offset; a space may
    /// stand for the `T`), `2026-11-22` (midnight UTC), `now`, or `<n><unit>`
    /// with unit `s`, `m`, `h`, `d` or `w`, meaning that long before now.
    pub fn parse(text: &str) -> Result<Self, TimeArgError> {
        let text = text.trim();
        let refuse = || TimeArgError(text.to_owned());
        if text.eq_ignore_ascii_case("now") {
            return Ok(Self::Ago(Duration::ZERO));
        }
        if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic) {
            let number = &text[..text.len() - 1];
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                let seconds_per_unit: i64 = match unit.to_ascii_lowercase() {
                    's' => 1,
                    'm' => 60,
                    'h' => 3_600,
                    'd' => 86_400,
                    'w' => 7 * 86_400,
                    _ => return Err(refuse()),
                };
                let seconds = number
                    .parse::<i64>()
                    .ok()
                    .and_then(|n| n.checked_mul(seconds_per_unit))
                    .ok_or_else(refuse)?;
                return Ok(Self::Ago(Duration::seconds(seconds)));
            }
        }
        if let Ok(day) = Date::parse(text, DAY) {
            return Ok(Self::At(day.midnight().assume_utc()));
        }
        // RFC 3339 allows a space for the `T`, the `time` crate does not.
        let instant = match text.as_bytes().get(10) {
            Some(b' ') => Cow::Owned(format!("{}T{}", &text[..10], &text[11..])),
            _ => Cow::Borrowed(text),
        };
        OffsetDateTime::parse(&instant, &Rfc3339)
            .ok()
            .and_then(|at| at.checked_to_offset(UtcOffset::UTC))
            .map(Self::At)
            .ok_or_else(refuse)
    }

    /// The instant this argument names, relative forms counted back from `now`.
    pub fn resolve(self, now: OffsetDateTime) -> anyhow::Result<OffsetDateTime> {
        match self {
            Self::At(at) => Ok(at),
            Self::Ago(span) => now
                .checked_sub(span)
                .with_context(|| format!("{span} before now is out of range")),
        }
    }
}

/// The range `--since` (included) to `--until` (excluded) selects; `until`
/// defaults to now.
pub fn resolve_range(
    since: Option<TimeArg>,
    until: Option<TimeArg>,
    default_since: TimeArg,
    now: OffsetDateTime,
) -> anyhow::Result<TimeRange> {
    let since = since.unwrap_or(default_since).resolve(now)?;
    let until = until.unwrap_or(TimeArg::Ago(Duration::ZERO)).resolve(now)?;
    TimeRange::new(since, until).with_context(|| {
        format!(
            "--since ({}) must be before --until ({})",
            rfc3339(since),
            rfc3339(until)
        )
    })
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00:00 UTC);
    const WEEK: TimeArg = TimeArg::Ago(Duration::days(7));
    const MONTH: TimeArg = TimeArg::Ago(Duration::days(30));

    fn at(text: &str) -> OffsetDateTime {
        TimeArg::parse(text).unwrap().resolve(NOW).unwrap()
    }

    #[test]
    fn relative_times_count_back_from_now() {
        assert_eq!(at("30m"), datetime!(2026-11-22 09:30:00 UTC));
        assert_eq!(at("24h"), datetime!(2026-11-21 10:00:00 UTC));
        assert_eq!(at("7d"), datetime!(2026-11-15 10:00:00 UTC));
        assert_eq!(at("2w"), datetime!(2026-11-08 10:00:00 UTC));
        assert_eq!(at("90s"), datetime!(2026-11-22 09:58:30 UTC));
        assert_eq!(at(" 7D "), datetime!(2026-11-15 10:00:00 UTC));
        assert_eq!(at("0h"), NOW);
        assert_eq!(at("now"), NOW);
    }

    #[test]
    fn absolute_times_are_rfc3339_or_a_date_in_utc() {
        assert_eq!(
            at("2026-11-01T08:30:00Z"),
            datetime!(2026-11-01 08:30:00 UTC)
        );
        assert_eq!(
            at("2026-11-01T17:30:00.123456+09:00"),
            datetime!(2026-11-01 08:30:00.123456 UTC)
        );
        assert_eq!(
            at("2026-11-01 08:30:00Z"),
            datetime!(2026-11-01 08:30:00 UTC)
        );
        assert_eq!(at("2026-11-01"), datetime!(2026-11-01 00:00:00 UTC));
        assert_eq!(at("2026-11-01").offset(), UtcOffset::UTC);
    }

    #[test]
    fn bad_times_are_refused_with_the_accepted_forms() {
        for bad in [
            "",
            "7",
            "d",
            "7x",
            "-7d",
            "7.5h",
            "1 d",
            "yesterday",
            "2026-13-01",
            "2026-11-01T08:30:00", // no offset: ambiguous
            "99999999999999999999d",
            "9999-12-31T23:00:00-02:00", // past the last representable year in UTC
        ] {
            let error = TimeArg::parse(bad).expect_err(bad);
            assert!(error.to_string().contains("24h"), "{error}");
        }
        let far = TimeArg::parse("9223372036854775807s").unwrap();
        assert!(far.resolve(NOW).is_err(), "out of range, not a panic");
    }

    #[test]
    fn ranges_default_and_must_not_be_empty() {
        let range = resolve_range(None, None, WEEK, NOW).unwrap();
        assert_eq!(range.start, datetime!(2026-11-15 10:00:00 UTC));
        assert_eq!(range.end, NOW);
        let range = resolve_range(None, None, MONTH, NOW).unwrap();
        assert_eq!(range.start, datetime!(2026-10-23 10:00:00 UTC));
        let later = TimeArg::parse("1h").ok();
        let earlier = TimeArg::parse("2h").ok();
        assert!(resolve_range(later, earlier, WEEK, NOW).is_err());
        assert!(resolve_range(later, later, WEEK, NOW).is_err());
    }
}
