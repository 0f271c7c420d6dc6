//! Key layout of the leads table, designed for the digest.
//!
//! Only `(PartitionKey, RowKey)` is indexed, so both keys come from the time
//! a lead was received (never from customer text, which could hold `'`, `/`,
//! `#` or control characters that keys forbid):
//!
//! - `PartitionKey` = the UTC day, `2026-11-22`;
//! - lead rows: `RowKey` = `L20261122T101500.123456Z-<fingerprint>`, so a
//!   time window is one key range, read without scanning the table;
//! - de-duplication markers: `RowKey` = `D<fingerprint>`, one per lead
//!   content and day, written atomically with the lead row. They sort before
//!   every lead row, so lead ranges never include them;
//! - the outbox's records, `P.`/`S.`/`X.<consumer>.<lead row key>` (see
//!   [`super::outbox`]), sort after every lead row.

use crate::domain::{Fingerprint, TimeRange};
use std::fmt;
use time::{Date, OffsetDateTime};

/// Hex digits of the fingerprint in keys and ids: 64 bits, ample per day.
const FINGERPRINT_BYTES: usize = 8;

/// The Table service's own key properties, as every entity carries them.
pub const PARTITION_KEY: &str = "PartitionKey";
pub const ROW_KEY: &str = "RowKey";

pub const LEAD_PREFIX: char = 'L';
pub const MARKER_PREFIX: char = 'D';

/// Identifies a stored lead: its receive day and content. A duplicate
/// delivery on the same day has the same id by construction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LeadId(String);

impl LeadId {
    pub fn new(day: Date, fingerprint: &Fingerprint) -> Self {
        Self(format!(
            "{:04}{:02}{:02}-{}",
            day.year(),
            u8::from(day.month()),
            day.day(),
            fingerprint.short_hex(FINGERPRINT_BYTES)
        ))
    }

    /// Parses `20261122-<16 hex digits>`, as the digest, the log and the
    /// command line show it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let refused = || format!("{text:?} is not a lead id (like 20261122-0123456789abcdef)");
        let (day, hex) = text.split_once('-').ok_or_else(refused)?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if day.len() != 8 || !digits(day) {
            return Err(refused());
        }
        if hex.len() != 2 * FINGERPRINT_BYTES
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(refused());
        }
        // Checked as ASCII digits above, so slicing is on char boundaries.
        parse_day_key(&format!("{}-{}-{}", &day[..4], &day[4..6], &day[6..8]))
            .ok_or_else(refused)?;
        Ok(Self(text.to_owned()))
    }

    /// The day the lead was received: its records are in that day's
    /// partition or a later one.
    pub fn day(&self) -> Date {
        let d = &self.0;
        parse_day_key(&format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..8])).unwrap_or(Date::MIN)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for LeadId {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keys are written by hand, not with a fallible formatter: a key can never
/// silently come out empty. Receive times are the server's clock, always
/// within years 1000–9999, so every field has a fixed width.
pub fn partition_key(at: OffsetDateTime) -> String {
    day_key(at.date())
}

/// A day's partition key, `2026-11-22`.
pub fn day_key(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// The day a partition key names.
pub fn parse_day_key(key: &str) -> Option<Date> {
    let mut parts = key.splitn(3, '-');
    let year = parts.next()?.parse().ok()?;
    let month = time::Month::try_from(parts.next()?.parse::<u8>().ok()?).ok()?;
    let day = parts.next()?.parse().ok()?;
    Date::from_calendar_date(year, month, day).ok()
}

pub fn lead_row_key(received_at: OffsetDateTime, fingerprint: &Fingerprint) -> String {
    format!(
        "{LEAD_PREFIX}{}-{}",
        instant_key(received_at),
        fingerprint.short_hex(FINGERPRINT_BYTES)
    )
}

pub fn marker_row_key(fingerprint: &Fingerprint) -> String {
    format!(
        "{MARKER_PREFIX}{}",
        fingerprint.short_hex(FINGERPRINT_BYTES)
    )
}

/// `20261122T101500.123456Z`: an instant to the microsecond, in key order.
pub fn instant_key(at: OffsetDateTime) -> String {
    let (day, clock) = (at.date(), at.time());
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:06}Z",
        day.year(),
        u8::from(day.month()),
        day.day(),
        clock.hour(),
        clock.minute(),
        clock.second(),
        clock.microsecond()
    )
}

/// The receive time a lead row key begins with.
pub fn received_at_of(lead_row_key: &str) -> Option<OffsetDateTime> {
    let digits = lead_row_key.strip_prefix(LEAD_PREFIX)?.get(..24)?;
    let number = |range: std::ops::Range<usize>| digits.get(range)?.parse::<u32>().ok();
    let date = Date::from_calendar_date(
        i32::try_from(number(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?,
        u8::try_from(number(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms_micro(
        u8::try_from(number(9..11)?).ok()?,
        u8::try_from(number(11..13)?).ok()?,
        u8::try_from(number(13..15)?).ok()?,
        number(16..22)?,
    )
    .ok()?;
    Some(date.with_time(clock).assume_utc())
}

/// Receive times are kept to the microsecond, the resolution of row keys.
pub fn truncate_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let micros = at.nanosecond() / 1_000 * 1_000;
    at.replace_nanosecond(micros).unwrap_or(at)
}

/// An OData string literal: quoted, with `'` doubled.
pub fn odata_string(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// The filter selecting lead rows received in `range` (`[start, end)`): a
/// range on both keys, so the service reads only that range. Row keys
/// begin with the receive time to the microsecond, so a time range is a
/// key range: `L<start>` ≤ key < `L<end>`.
pub fn range_filter(range: TimeRange) -> String {
    let (start, end) = (
        truncate_up_to_micros(range.start),
        truncate_up_to_micros(range.end),
    );
    format!(
        "PartitionKey ge {} and PartitionKey le {} and RowKey ge {} and RowKey lt {}",
        odata_string(&partition_key(start)),
        odata_string(&partition_key(end)),
        odata_string(&format!("{LEAD_PREFIX}{}", instant_key(start))),
        odata_string(&format!("{LEAD_PREFIX}{}", instant_key(end))),
    )
}

/// The first microsecond at or after `at`: receive times are kept to the
/// microsecond, so "received at or after `at`" is "at or after this".
fn truncate_up_to_micros(at: OffsetDateTime) -> OffsetDateTime {
    let down = truncate_to_micros(at);
    if down == at {
        at
    } else {
        down + time::Duration::MICROSECOND
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Lead;
    use time::macros::datetime;

    fn fingerprint(body: &str) -> Fingerprint {
        Lead::parse(body.as_bytes()).unwrap().fingerprint
    }

    #[test]
    fn keys_are_time_ordered_and_fixed_width() {
        let f = fingerprint(r#"{"OfferTitle":"O"}"#);
        let a = lead_row_key(datetime!(2026-11-22 09:59:59.999999 UTC), &f);
        let b = lead_row_key(datetime!(2026-11-22 10:00:00 UTC), &f);
        assert!(a < b);
        assert_eq!(a.len(), b.len());
        assert_eq!(&b[..24], "L20261122T100000.000000Z");
        assert_eq!(
            partition_key(datetime!(2026-01-02 23:59:59 UTC)),
            "2026-01-02"
        );
        assert!(marker_row_key(&f) < a, "markers sort before lead rows");
    }

    #[test]
    fn hostile_values_never_reach_keys() {
        let f = fingerprint(r#"{"UserDetails":{"Company":"O'Brien/#?\\ \u0001"}}"#);
        let at = datetime!(2026-11-22 10:00:00 UTC);
        for key in [partition_key(at), lead_row_key(at, &f), marker_row_key(&f)] {
            assert!(
                key.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.')),
                "{key}"
            );
        }
        let id = LeadId::new(at.date(), &f);
        assert!(id.as_str().starts_with("20261122-"));
        assert_eq!(id.as_str().len(), 9 + 16);
    }

    #[test]
    fn a_lead_row_key_gives_its_receive_time_back() {
        let f = fingerprint(r#"{"OfferTitle":"O"}"#);
        let at = datetime!(2026-11-22 09:59:59.123456 UTC);
        assert_eq!(received_at_of(&lead_row_key(at, &f)), Some(at));
        assert_eq!(received_at_of("D0011"), None);
        assert_eq!(received_at_of("L2026"), None);
    }

    #[test]
    fn lead_ids_parse_and_name_their_day() {
        let f = fingerprint(r#"{"OfferTitle":"O"}"#);
        let id = LeadId::new(time::macros::date!(2026 - 11 - 22), &f);
        assert_eq!(LeadId::parse(id.as_str()), Ok(id.clone()));
        assert_eq!(id.day(), time::macros::date!(2026 - 11 - 22));
        for bad in [
            "",
            "202é1122-0011",
            "20261122",
            "20261340-0011223344556677",
            "20261122-00112233445566",
            "20261122-00112233445566zz",
            "2026112-00112233445566778",
            "20261122-0011223344556677-",
        ] {
            assert!(LeadId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn day_keys_round_trip() {
        let day = time::macros::date!(2026 - 01 - 02);
        assert_eq!(day_key(day), "2026-01-02");
        assert_eq!(parse_day_key("2026-01-02"), Some(day));
        assert_eq!(parse_day_key("2026-13-02"), None);
        assert_eq!(parse_day_key("checkpoint"), None);
    }

    #[test]
    fn odata_literals_double_quotes() {
        assert_eq!(odata_string("O'Brien"), "'O''Brien'");
        assert_eq!(odata_string("''"), "''''''");
        assert_eq!(odata_string("a#/b"), "'a#/b'");
    }

    #[test]
    fn a_range_is_a_key_range_that_includes_its_start_only() {
        let f = fingerprint(r#"{"OfferTitle":"O"}"#);
        let range = TimeRange::new(
            datetime!(2026-11-21 23:30:00 UTC),
            datetime!(2026-11-22 00:30:00 UTC),
        )
        .unwrap();
        let filter = range_filter(range);
        assert!(filter.starts_with("PartitionKey ge '2026-11-21' and PartitionKey le '2026-11-22'"));
        let lower = format!("L{}", instant_key(range.start));
        let upper = format!("L{}", instant_key(range.end));
        let inside = |at| {
            let rk = lead_row_key(at, &f);
            rk >= lower && rk < upper
        };
        assert!(inside(range.start), "the start is included");
        assert!(inside(datetime!(2026-11-22 00:29:59.999999 UTC)));
        assert!(!inside(range.end), "the end belongs to the next range");
        assert!(!inside(datetime!(2026-11-21 23:29:59.999999 UTC)));
        assert!(marker_row_key(&f) < lower);
    }

    #[test]
    fn sub_microsecond_bounds_round_up_to_the_next_stored_time() {
        let range = TimeRange::new(
            datetime!(2026-11-01 00:00:00.0000005 UTC),
            datetime!(2026-11-01 00:00:00.0000025 UTC),
        )
        .unwrap();
        let filter = range_filter(range);
        assert!(
            filter.contains("RowKey ge 'L20261101T000000.000001Z'"),
            "{filter}"
        );
        assert!(
            filter.contains("RowKey lt 'L20261101T000000.000003Z'"),
            "{filter}"
        );
    }

    #[test]
    fn truncation_keeps_microseconds() {
        let at = datetime!(2026-11-22 10:00:00.123456789 UTC);
        assert_eq!(
            truncate_to_micros(at),
            datetime!(2026-11-22 10:00:00.123456 UTC)
        );
    }
}
