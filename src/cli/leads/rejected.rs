//! `handler leads rejected`: the bodies LeadIngest refused (invalid JSON,
//! too large, …), kept so that a lead Partner Center sent malformed is not
//! lost: list them, then print one exactly as received to fix and post again.

use super::progress::count;
use super::time_arg::{resolve_range, TimeArg};
use crate::cli::table::{self, Column};
use crate::configuration::StorageSettings;
use crate::store::LeadStore;
use futures::TryStreamExt;
use std::io::{self, BufWriter, Write};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

const DEFAULT_SINCE: TimeArg = TimeArg::Ago(Duration::days(7));
const TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

#[derive(Debug, Clone, clap::Args)]
pub struct RejectedOptions {
    /// Refused at or after this [default: 7d]
    #[arg(long, value_parser = TimeArg::parse)]
    pub since: Option<TimeArg>,
    /// Refused before this [default: now]
    #[arg(long, value_parser = TimeArg::parse)]
    pub until: Option<TimeArg>,
    /// Print this refused body (its id from the list) exactly as received
    #[arg(long, value_name = "ID")]
    pub show: Option<String>,
}

pub async fn rejected(storage: &StorageSettings, options: RejectedOptions) -> anyhow::Result<()> {
    let range = resolve_range(
        options.since,
        options.until,
        DEFAULT_SINCE,
        OffsetDateTime::now_utc(),
    )?;
    let store = LeadStore::from_settings(storage)?;
    let mut pages = std::pin::pin!(store.rejected_in(range));
    if let Some(id) = &options.show {
        let mut out = BufWriter::new(io::stdout());
        while let Some(page) = pages.try_next().await? {
            if let Some(body) = page.into_iter().find(|b| &b.id == id) {
                out.write_all(&body.body)?;
                out.flush()?;
                if (body.body.len() as u64) < body.length {
                    eprintln!(
                        "(the first {} of {} bytes: the rest was not kept)",
                        body.body.len(),
                        body.length
                    );
                }
                return Ok(());
            }
        }
        anyhow::bail!("no refused body {id:?} since then (try an earlier --since)");
    }
    const COLUMNS: [Column; 5] = [
        Column {
            heading: "RECEIVED (UTC)",
            max_width: 19,
        },
        Column {
            heading: "ID",
            max_width: 36,
        },
        Column {
            heading: "STATUS",
            max_width: 6,
        },
        Column {
            heading: "BYTES",
            max_width: 9,
        },
        Column {
            heading: "REASON",
            max_width: 70,
        },
    ];
    let mut rows = Vec::new();
    while let Some(page) = pages.try_next().await? {
        for body in page {
            let received = body.received_at.format(TIME).unwrap_or_default();
            rows.push(table::row(
                &COLUMNS,
                &[
                    &received,
                    &body.id,
                    &body.status.to_string(),
                    &body.length.to_string(),
                    &body.reason,
                ],
            ));
        }
    }
    let summary = format!(
        "{} refused; print one with --show ID",
        count(rows.len() as u64, "body")
    );
    table::print(&COLUMNS, &rows, &summary)
}
