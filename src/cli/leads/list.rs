//! `handler leads list`: the leads of a time range as a table on stdout.

use super::progress::count;
use super::table::{list_cells, write_table};
use super::time_arg::resolve_range;
use super::{Selection, LIST_DEFAULT_SINCE};
use crate::configuration::StorageSettings;
use crate::store::LeadStore;
use anyhow::Context as _;
use futures::TryStreamExt;
use std::io::{self, BufWriter, Write};
use time::OffsetDateTime;

/// `handler leads list`: the leads of a window as a table on stdout, newest
/// last, then a line counting them and the test leads left out.
pub async fn list(storage: &StorageSettings, options: Selection) -> anyhow::Result<()> {
    let range = resolve_range(
        options.since,
        options.until,
        LIST_DEFAULT_SINCE,
        OffsetDateTime::now_utc(),
    )?;
    let store = LeadStore::from_settings(storage)?;
    let mut pages = std::pin::pin!(store.rows_in(range, options.offer.as_deref()));
    // Cells are cut to their column's width as they come, so the table
    // holds a few hundred bytes per lead whatever the leads hold.
    let mut rows: Vec<[String; 7]> = Vec::new();
    let mut tests = 0u64;
    while let Some(page) = pages.try_next().await? {
        for row in &page {
            if row.is_test {
                tests += 1;
                if !options.include_tests {
                    continue;
                }
            }
            rows.push(list_cells(row));
        }
    }
    let tests = count(tests, "test lead");
    let tests = if options.include_tests {
        format!("{tests} included")
    } else {
        format!("{tests} hidden")
    };
    let summary = format!("{} ({tests})", count(rows.len() as u64, "lead"));
    let mut out = BufWriter::new(io::stdout());
    let written = write_table(&mut out, &rows)
        .and_then(|()| writeln!(out, "{summary}"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("Failed to write the list"),
    }
}
