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
//!   every lead row, so lead ranges never include them.

use crate::lead::Fingerprint;
use std::fmt;
use time::{format_description::FormatItem, macros::format_description, Date, OffsetDateTime};

const DAY: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");
const INSTANT: &[FormatItem<'static>] =
    format_description!("[year][month][day]T[hour][minute][second].[subsecond digits:6]Z");
/// Hex digits of the fingerprint in keys and ids: 64 bits, ample per day.
const FINGERPRINT_BYTES: usize = 8;

pub const LEAD_PREFIX: char = 'L';
pub const MARKER_PREFIX: char = 'D';
/// Sorts after every character used in a lead row key's suffix.
const AFTER_SUFFIX: char = '~';

/// Identifies a stored lead: its receive day and content. A duplicate
/// delivery on the same day has the same id by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LeadId(String);

impl LeadId {
    pub fn new(day: Date, fingerprint: &Fingerprint) -> Self {
        Self(format!(
            "{}-{}",
            day.format(DAY).unwrap_or_default().replace('-', ""),
            fingerprint.short_hex(FINGERPRINT_BYTES)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub fn partition_key(at: OffsetDateTime) -> String {
    at.format(DAY).unwrap_or_default()
}

pub fn lead_row_key(received_at: OffsetDateTime, fingerprint: &Fingerprint) -> String {
    format!(
        "{LEAD_PREFIX}{}-{}",
        instant(received_at),
        fingerprint.short_hex(FINGERPRINT_BYTES)
    )
}

pub fn marker_row_key(fingerprint: &Fingerprint) -> String {
    format!(
        "{MARKER_PREFIX}{}",
        fingerprint.short_hex(FINGERPRINT_BYTES)
    )
}

fn instant(at: OffsetDateTime) -> String {
    at.format(INSTANT).unwrap_or_default()
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

/// The filter selecting lead rows received in `(after, through]`: a range on
/// both keys, so the service reads only that range.
pub fn window_filter(after: OffsetDateTime, through: OffsetDateTime) -> String {
    format!(
        "PartitionKey ge {} and PartitionKey le {} and RowKey gt {} and RowKey lt {}",
        odata_string(&partition_key(after)),
        odata_string(&partition_key(through)),
        odata_string(&format!("{LEAD_PREFIX}{}{AFTER_SUFFIX}", instant(after))),
        odata_string(&format!("{LEAD_PREFIX}{}{AFTER_SUFFIX}", instant(through))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lead::Lead;
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
    fn odata_literals_double_quotes() {
        assert_eq!(odata_string("O'Brien"), "'O''Brien'");
        assert_eq!(odata_string("''"), "''''''");
        assert_eq!(odata_string("a#/b"), "'a#/b'");
    }

    #[test]
    fn window_is_a_key_range_that_includes_its_end_only() {
        let f = fingerprint(r#"{"OfferTitle":"O"}"#);
        let after = datetime!(2026-11-21 23:30:00 UTC);
        let through = datetime!(2026-11-22 00:30:00 UTC);
        let filter = window_filter(after, through);
        assert!(filter.starts_with("PartitionKey ge '2026-11-21' and PartitionKey le '2026-11-22'"));
        let lower = format!("L{}~", instant(after));
        let upper = format!("L{}~", instant(through));
        let inside = |at| {
            let rk = lead_row_key(at, &f);
            rk > lower && rk < upper
        };
        assert!(
            !inside(after),
            "the start was reported by the previous window"
        );
        assert!(inside(datetime!(2026-11-21 23:30:00.000001 UTC)));
        assert!(inside(through), "the end is included");
        assert!(!inside(datetime!(2026-11-22 00:30:00.000001 UTC)));
        assert!(marker_row_key(&f) < lower);
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
