//! `handler leads list|export`: reading stored leads back out — a table for
//! a person at a terminal, CSV for CRM import wizards, or JSON Lines with
//! every stored column.
//!
//! Both read only the key range of their time range, a page at a time
//! ([`LeadStore::rows_in`](crate::store::LeadStore::rows_in)), so an export
//! of any size runs in the memory of one page.
//!
//! - [`time_arg`] — `--since`/`--until` and the range they select.
//! - [`list`] / [`export`] / [`rejected`] / [`import`] / [`forget`] /
//!   [`rate`] — the commands.
//! - [`fields`], [`csv`] — one row as shown, as CSV.
//! - [`output`] — the export's file, complete or not at all.
//! - [`progress`] — counts for people.

pub mod csv;
mod export;
mod fields;
mod forget;
mod import;
mod list;
mod output;
pub mod progress;
mod rate;
mod rejected;
pub mod time_arg;

pub use export::{export, ExportOptions, Format};
pub use forget::{forget, ForgetOptions};
pub use import::{import, ImportOptions};
pub use list::list;
pub use rate::{rate, RateOptions};
pub use rejected::{rejected, RejectedOptions};
pub use time_arg::TimeArg;

use crate::domain::{Level, TimeRange};
use crate::routing::Pattern;
use crate::store::ExportRow;
use time::Duration;

/// `list` looks back a week unless told otherwise.
pub const LIST_DEFAULT_SINCE: TimeArg = TimeArg::Ago(Duration::days(7));
/// `export` looks back 30 days unless told otherwise.
pub const EXPORT_DEFAULT_SINCE: TimeArg = TimeArg::Ago(Duration::days(30));

/// Which leads a `leads` command reads. Its `///` docs are the CLI's help.
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// Start of the window, included [default: 7d for list, 30d for export]
    #[arg(long, value_parser = TimeArg::parse)]
    pub since: Option<TimeArg>,
    /// End of the window, excluded [default: now]
    #[arg(long, value_parser = TimeArg::parse)]
    pub until: Option<TimeArg>,
    /// Only leads of this offer: its id (publisher.offer) or its title, `*`
    /// matching any text, case ignored — as routes match offers
    #[arg(long, value_parser = Pattern::parse)]
    pub offer: Option<Pattern>,
    /// Only leads rated so: hot, warm or cold (several with `,`)
    #[arg(long, value_delimiter = ',', value_parser = parse_level)]
    pub rating: Vec<Level>,
    /// Include Partner Center's test leads (MSFT_TEST...)
    #[arg(long)]
    pub include_tests: bool,
}

impl Selection {
    /// The time range `--since`/`--until` select, `default_since` before
    /// now without `--since`.
    pub(super) fn range(&self, default_since: TimeArg) -> anyhow::Result<TimeRange> {
        time_arg::resolve_range(
            self.since,
            self.until,
            default_since,
            time::OffsetDateTime::now_utc(),
        )
    }

    /// Whether `row` is of the offer and rating asked for (any, without
    /// them). Test leads are the caller's to count.
    pub(super) fn selects(&self, row: &ExportRow) -> bool {
        let offer = self.offer.as_ref().is_none_or(|pattern| {
            row.lead
                .as_ref()
                .is_some_and(|lead| pattern.matches_lead(lead))
        });
        let rating = self.rating.is_empty()
            || fields::Fields::of(row)
                .rating
                .is_some_and(|level| self.rating.contains(&level));
        offer && rating
    }
}

/// `hot`, `warm` or `cold`.
pub fn parse_level(text: &str) -> Result<Level, String> {
    Level::parse(text).ok_or_else(|| format!("{text:?} is not hot, warm or cold"))
}
