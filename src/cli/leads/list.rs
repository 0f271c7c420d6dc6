//! `handler leads list`: the leads of a time range as a table on stdout.

use super::fields::Fields;
use super::progress::count;
use super::{Selection, LIST_DEFAULT_SINCE};
use crate::cli::table::{self, Column};
use crate::configuration::StorageSettings;
use crate::store::{ExportRow, LeadStore};
use futures::TryStreamExt;

use time::format_description::FormatItem;
use time::macros::format_description;

/// `handler leads list`: the leads of a window as a table on stdout, newest
/// last, then a line counting them and the test leads left out.
pub async fn list(storage: &StorageSettings, options: Selection) -> anyhow::Result<()> {
    let range = options.range(LIST_DEFAULT_SINCE)?;
    let store = LeadStore::from_settings(storage)?;
    let mut pages = std::pin::pin!(store.rows_in(range));
    // Cells are cut to their column's width as they come, so the table
    // holds a few hundred bytes per lead whatever the leads hold.
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut tests = 0u64;
    while let Some(page) = pages.try_next().await? {
        for row in &page {
            if !options.selects(row) {
                continue;
            }
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
    table::print(&LIST_COLUMNS, &rows, &summary)
}

const LIST_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]");

/// The list's columns.
const LIST_COLUMNS: [Column; 9] = [
    Column {
        heading: "RECEIVED (UTC)",
        max_width: 16,
    },
    Column {
        heading: "LEAD ID",
        max_width: 25,
    },
    Column {
        heading: "NAME",
        max_width: 24,
    },
    Column {
        heading: "COMPANY",
        max_width: 24,
    },
    Column {
        heading: "EMAIL",
        max_width: 32,
    },
    Column {
        heading: "COUNTRY",
        max_width: 14,
    },
    Column {
        heading: "OFFER",
        max_width: 28,
    },
    Column {
        heading: "ACTION",
        max_width: 10,
    },
    Column {
        heading: "RATING",
        max_width: 6,
    },
];

fn list_cells(row: &ExportRow) -> Vec<String> {
    let f = Fields::of(row);
    let received = row
        .received_at
        .and_then(|at| at.format(LIST_TIME).ok())
        .unwrap_or_default();
    let name = f.name();
    table::row(
        &LIST_COLUMNS,
        &[
            received.as_str(),
            row.columns
                .get("LeadId")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default(),
            &name,
            f.company.unwrap_or_default(),
            f.email.unwrap_or_default(),
            f.country.unwrap_or_default(),
            f.offer.unwrap_or_default(),
            f.action.unwrap_or_default(),
            f.rating.map(|level| level.as_str()).unwrap_or_default(),
        ],
    )
}
