//! `handler leads rate`: what the current rating rules would say of leads
//! already stored, and — only with `--apply` — writing it. A lead keeps the
//! rating it got when it arrived until someone asks for this, so a change
//! of rules never silently rewrites history.

use super::progress::count;
use super::{Selection, EXPORT_DEFAULT_SINCE};
use crate::cli::table::{self, Column};
use crate::configuration::StorageSettings;
use crate::domain::{rating, Level, Rating};
use crate::store::{ExportRow, LeadStore};
use anyhow::Context as _;
use futures::TryStreamExt;
use std::collections::BTreeMap;
use std::io::{self, Write};

#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("mode").args(["dry_run", "apply"])))]
pub struct RateOptions {
    #[command(flatten)]
    pub selection: Selection,
    /// Show what the current rules would change; write nothing (the default)
    #[arg(long)]
    pub dry_run: bool,
    /// Write the new ratings
    #[arg(long)]
    pub apply: bool,
}

/// A lead whose rating the current rules would change.
struct Change {
    row: ExportRow,
    was: Option<Rating>,
    now: Rating,
}

pub async fn rate(storage: &StorageSettings, options: RateOptions) -> anyhow::Result<()> {
    let range = options.selection.range(EXPORT_DEFAULT_SINCE)?;
    let store = LeadStore::from_settings(storage)?;
    let mut pages = std::pin::pin!(store.rows_in(range));
    let (mut read, mut changes) = (0u64, Vec::new());
    while let Some(page) = pages.try_next().await? {
        for row in page {
            let selected = options.selection.selects(&row)
                && (options.selection.include_tests || !row.is_test);
            let Some(lead) = row.lead.as_ref().filter(|_| selected) else {
                continue;
            };
            read += 1;
            let now = rating::rate(lead);
            let was = lead.rating.clone();
            if was.as_ref().is_none_or(|was| !same(was, &now)) {
                changes.push(Change { row, was, now });
            }
        }
    }
    print_changes(&changes).context("could not write the changes")?;
    println!(
        "{} read; {} under the current rules (version {}){}",
        count(read, "lead"),
        summary(&changes),
        rating::RULES_VERSION,
        if options.apply || changes.is_empty() {
            ""
        } else {
            " — nothing written; --apply writes them"
        }
    );
    if !options.apply {
        return Ok(());
    }
    let mut written = 0u64;
    for change in &changes {
        if let Err(e) = store.rerate(&change.row, &change.now).await {
            anyhow::bail!(
                "stopped after {}: {e}; running the same command again finishes it",
                count(written, "lead")
            );
        }
        written += 1;
    }
    println!("re-rated {}", count(written, "lead"));
    Ok(())
}

/// The same rating, whichever rules version gave it.
fn same(a: &Rating, b: &Rating) -> bool {
    (a.level, a.score, &a.reasons) == (b.level, b.score, &b.reasons)
}

/// "3 would change (cold → warm: 2, unrated → hot: 1)".
fn summary(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "none would change".into();
    }
    let mut moves: BTreeMap<(Option<Level>, Level), u64> = BTreeMap::new();
    for change in changes {
        *moves
            .entry((change.was.as_ref().map(|r| r.level), change.now.level))
            .or_default() += 1;
    }
    let moves: Vec<String> = moves
        .iter()
        .map(|((was, now), n)| format!("{} → {now}: {n}", level_or_unrated(*was)))
        .collect();
    format!("{} would change ({})", changes.len(), moves.join(", "))
}

fn level_or_unrated(level: Option<Level>) -> &'static str {
    level.map_or("unrated", Level::as_str)
}

const COLUMNS: [Column; 5] = [
    Column {
        heading: "LEAD ID",
        max_width: 25,
    },
    Column {
        heading: "WAS",
        max_width: 16,
    },
    Column {
        heading: "NOW",
        max_width: 16,
    },
    Column {
        heading: "NAME",
        max_width: 24,
    },
    Column {
        heading: "WHY (NOW)",
        max_width: 80,
    },
];

fn print_changes(changes: &[Change]) -> io::Result<()> {
    let described = |rating: Option<&Rating>| {
        rating.map_or_else(
            || "unrated".to_owned(),
            |r| format!("{} ({})", r.level, r.score),
        )
    };
    let rows: Vec<Vec<String>> = changes
        .iter()
        .map(|c| {
            let id = c
                .row
                .columns
                .get("LeadId")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default();
            let name = c
                .row
                .lead
                .as_ref()
                .and_then(|lead| lead.customer.full_name())
                .unwrap_or_default();
            table::row(
                &COLUMNS,
                &[
                    id,
                    &described(c.was.as_ref()),
                    &described(Some(&c.now)),
                    &name,
                    &c.now.why(),
                ],
            )
        })
        .collect();
    let mut out = io::stdout().lock();
    table::write_table(&mut out, &COLUMNS, &rows)?;
    out.flush()
}
