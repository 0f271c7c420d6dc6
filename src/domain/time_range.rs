//! A span of receive times, half-open: `[start, end)`. A lead received at
//! `start` is in it, one received at `end` is not, so consecutive ranges
//! (one's `end` the next one's `start`) never overlap and never leave a gap.
//! The digest, `leads list` and `leads export` all select leads by one.

use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    /// Included.
    pub start: OffsetDateTime,
    /// Excluded.
    pub end: OffsetDateTime,
}

impl TimeRange {
    /// `None` unless `start < end`: an empty or inverted range selects nothing
    /// and is always a mistake.
    pub fn new(start: OffsetDateTime, end: OffsetDateTime) -> Option<Self> {
        (start < end).then_some(Self { start, end })
    }

    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.start <= at && at < self.end
    }
}

/// `[2026-11-22T10:00:00Z, 2026-11-22T11:00:00Z)`: the bounds as written.
impl fmt::Display for TimeRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rfc3339 = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_else(|_| at.to_string());
        write!(f, "[{}, {})", rfc3339(self.start), rfc3339(self.end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn start_is_included_and_end_excluded() {
        let range = TimeRange::new(
            datetime!(2026-11-22 10:00 UTC),
            datetime!(2026-11-22 11:00 UTC),
        )
        .unwrap();
        assert!(range.contains(datetime!(2026-11-22 10:00 UTC)));
        assert!(range.contains(datetime!(2026-11-22 10:59:59.999999 UTC)));
        assert!(!range.contains(datetime!(2026-11-22 11:00 UTC)));
        assert!(!range.contains(datetime!(2026-11-22 09:59:59.999999 UTC)));
        assert_eq!(
            range.to_string(),
            "[2026-11-22T10:00:00Z, 2026-11-22T11:00:00Z)"
        );
    }

    #[test]
    fn empty_and_inverted_ranges_do_not_exist() {
        let at = datetime!(2026-11-22 10:00 UTC);
        assert_eq!(TimeRange::new(at, at), None);
        assert_eq!(TimeRange::new(at, at - time::Duration::SECOND), None);
    }
}
