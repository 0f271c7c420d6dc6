//! `handler leads import`: leads stored elsewhere brought into our table as
//! if they had just arrived at the time they were created — from the table
//! Partner Center's own "Azure Table" destination writes (`--from-table`),
//! or from our own JSON Lines export (`--jsonl`), to move or restore.
//!
//! Idempotent: a lead is stored with the same key and de-duplication as
//! LeadIngest, so a second run, or a lead that also reached our endpoint,
//! stores nothing new. Imported leads are not in a digest and go to no
//! destination (they were seen already) unless `--deliver` names some:
//! those get them as `deliveries backfill` would — once, as their routes
//! allow. A row that is not a lead is counted and kept with the refused
//! bodies (`leads rejected`), with the reason.

use super::progress::{count, Progress};
use super::time_arg::{resolve_range, TimeArg};
use crate::configuration::{storage, Settings, StorageAccount};
use crate::delivery::Destinations;
use crate::domain::table_lead::TableLead;
use crate::domain::{DestinationName, Lead, Origin, TimeRange};
use crate::store::source::SourceTable;
use crate::store::{raw_body_fits, Consumer, LeadId, LeadStore, SaveOutcome};
use anyhow::Context;
use futures::TryStreamExt;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use time::OffsetDateTime;

/// Where the leads come from, and what to do with them.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from_table", "jsonl"])))]
pub struct ImportOptions {
    /// The table Partner Center's "Azure Table" destination writes
    /// (MarketplaceLeads, by default there)
    #[arg(long, value_name = "TABLE")]
    pub from_table: Option<String>,
    /// The table's storage account as a connection string [default: the
    /// leads' own account]
    #[arg(long, value_name = "CONNECTION_STRING", conflicts_with_all = ["account", "jsonl"])]
    pub connection: Option<String>,
    /// The table's storage account by name, reached with your identity
    /// (az login) [default: the leads' own account]
    #[arg(long, value_name = "NAME", conflicts_with = "jsonl")]
    pub account: Option<String>,
    /// A JSON Lines file `handler leads export --format jsonl` wrote
    #[arg(long, value_name = "FILE")]
    pub jsonl: Option<PathBuf>,
    /// Only leads created at or after this [default: all]
    #[arg(long, value_parser = TimeArg::parse)]
    pub since: Option<TimeArg>,
    /// Only leads created before this [default: now]
    #[arg(long, value_parser = TimeArg::parse)]
    pub until: Option<TimeArg>,
    /// Also deliver the imported leads to these destinations (as their
    /// routes allow; each lead once): hubspot, teams:analytics, …
    #[arg(long, value_name = "DESTINATION", num_args = 1.., value_parser = DestinationName::parse)]
    pub deliver: Vec<DestinationName>,
}

/// What an import did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Imported {
    pub read: u64,
    pub imported: u64,
    pub already_present: u64,
    pub unreadable: u64,
    /// Outside --since/--until.
    pub outside: u64,
    pub queued: u64,
}

impl Imported {
    fn summary(&self, source: &str) -> String {
        let mut summary = format!(
            "read {} from {source}: {} imported, {} already present, {} unreadable",
            count(self.read, "row"),
            self.imported,
            self.already_present,
            self.unreadable
        );
        if self.outside > 0 {
            summary.push_str(&format!(", {} outside the window", self.outside));
        }
        if self.unreadable > 0 {
            summary.push_str(" (kept with the refused bodies: handler leads rejected)");
        }
        summary
    }
}

/// One source row: a lead and when it was created, or why it is not one.
type Row = Result<(Lead, OffsetDateTime), (String, Vec<u8>)>;

/// Creation times outside these are no lead's: a row saying
/// 9999-12-31T23:59:59Z (.NET's `DateTime.MaxValue`) is unreadable, not a
/// lead from the far future.
const EARLIEST: OffsetDateTime = time::macros::datetime!(2000-01-01 00:00 UTC);
const LATEST_AHEAD: time::Duration = time::Duration::DAY;

pub async fn import(settings: &Settings, options: ImportOptions) -> anyhow::Result<()> {
    let now = OffsetDateTime::now_utc();
    let window = match (options.since, options.until) {
        (None, None) => None,
        (since, until) => Some(resolve_range(
            Some(since.unwrap_or(TimeArg::At(OffsetDateTime::UNIX_EPOCH))),
            until,
            TimeArg::At(OffsetDateTime::UNIX_EPOCH),
            now,
        )?),
    };
    let store = LeadStore::from_settings(&settings.storage)?;
    store.ensure_tables().await?;
    // The routes only (no I/O); checked before anything is read.
    let destinations = Destinations::from_settings(settings)?;
    for name in &options.deliver {
        anyhow::ensure!(
            destinations.routes().route(name).is_some(),
            "destination {name} is not configured here"
        );
    }
    let mut run = Run {
        store: &store,
        window,
        now,
        counts: Imported::default(),
        delivered_ids: HashSet::new(),
        span: None,
        keep_ids: !options.deliver.is_empty(),
        kept: store
            .kept_import_rows()
            .await
            .context("could not read which rows earlier imports kept")?,
        progress: Progress::new(std::io::stderr().is_terminal()),
        rate_leads: settings.rate_leads,
    };
    let source = if let Some(table) = &options.from_table {
        let account = source_account(settings, &options)?;
        refuse_our_own_table(settings, &account, table)?;
        let source = SourceTable::open(&account, table)?;
        let mut pages = std::pin::pin!(source.rows());
        let mut first = true;
        while let Some(page) = pages
            .try_next()
            .await
            .with_context(|| format!("could not read the table {table}"))?
        {
            if first && page.iter().any(SourceTable::written_by_us) {
                anyhow::bail!(
                    "{table} in that account was written by this handler (it holds lead rows, \
                     markers or delivery records), not by Partner Center's \"Azure Table\" \
                     destination: nothing imported. To move leads between deployments, use \
                     `handler leads export --format jsonl` there and `handler leads import \
                     --jsonl` here."
                );
            }
            first = false;
            for entity in &page {
                let seed = format!(
                    "table|{table}|{}|{}",
                    text_of(entity, crate::store::keys::PARTITION_KEY),
                    text_of(entity, crate::store::keys::ROW_KEY)
                );
                run.take(from_entity(entity), &seed).await?;
            }
            run.progress.update_with("read", run.counts.read);
        }
        format!("table {}", source.name())
    } else if let Some(path) = &options.jsonl {
        let file = std::fs::File::open(path)
            .with_context(|| format!("could not open {}", path.display()))?;
        let mut reader = std::io::BufReader::new(file);
        let mut bytes = Vec::new();
        let mut number = 0u64;
        loop {
            bytes.clear();
            let read = reader
                .read_until(b'\n', &mut bytes)
                .with_context(|| format!("could not read {}", path.display()))?;
            if read == 0 {
                break;
            }
            number += 1;
            let seed = format!("jsonl|{}", hex_sha256(&bytes));
            let row = match std::str::from_utf8(&bytes) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => from_jsonl(line),
                Err(_) => Err((format!("line {number} is not UTF-8 text"), bytes.clone())),
            };
            run.take(row, &seed).await?;
            if number.is_multiple_of(1_000) {
                run.progress.update_with("read", run.counts.read);
            }
        }
        path.display().to_string()
    } else {
        anyhow::bail!("give --from-table or --jsonl");
    };
    if run.counts.read > 0 && run.counts.unreadable == run.counts.read {
        run.progress.finish(&run.counts.summary(&source));
        anyhow::bail!(
            "nothing in {source} was a lead{}",
            if options.jsonl.is_some() {
                ": --jsonl takes what `handler leads export --format jsonl` writes, one JSON \
                 object per line"
            } else {
                ""
            }
        );
    }
    for name in &options.deliver {
        run.counts.queued += run.deliver(&destinations, name).await? as u64;
    }
    run.progress.finish(&run.counts.summary(&source));
    if !options.deliver.is_empty() {
        println!(
            "{} queued for {}; they go out with the next sweep (within a minute)",
            count(run.counts.queued, "delivery"),
            options
                .deliver
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
}

/// Refuses the service's own leads table (and its digest table): Partner
/// Center's default table name is also ours, so `--from-table
/// MarketplaceLeads` without `--account` would read our own rows.
fn refuse_our_own_table(
    settings: &Settings,
    account: &StorageAccount,
    table: &str,
) -> anyhow::Result<()> {
    let ours = &settings.storage;
    let same_account = account.table_endpoint.as_str().trim_end_matches('/')
        == ours.account.table_endpoint.as_str().trim_end_matches('/');
    let our_tables = [ours.leads_table.clone(), ours.digest_table()];
    if same_account && our_tables.iter().any(|t| t.eq_ignore_ascii_case(table)) {
        anyhow::bail!(
            "{table} in this account is this service's own table (LEADS_TABLE), not the one \
             Partner Center's \"Azure Table\" destination wrote: nothing imported. Partner \
             Center's table is in the storage account you gave Partner Center: name it with \
             --account <name> (az login) or --connection \"<connection string>\"."
        );
    }
    Ok(())
}

fn text_of<'a>(entity: &'a Map<String, Value>, column: &str) -> &'a str {
    entity
        .get(column)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `--connection`, `--account`, or the leads' own account.
fn source_account(settings: &Settings, options: &ImportOptions) -> anyhow::Result<StorageAccount> {
    Ok(match (&options.connection, &options.account) {
        (Some(connection), _) => storage::parse_connection_string("--connection", connection)?,
        (None, Some(name)) => storage::identity_account("--account", name)?,
        (None, None) => settings.storage.account.clone(),
    })
}

fn from_entity(entity: &Map<String, Value>) -> Row {
    let raw = || Value::Object(entity.clone()).to_string().into_bytes();
    match TableLead::from_entity(entity) {
        Ok(TableLead {
            lead,
            created_at: Some(at),
        }) => Ok((lead, at)),
        Ok(_) => Err((
            "the row has neither CreatedTime nor Timestamp".into(),
            raw(),
        )),
        Err(e) => Err((e.to_string(), raw())),
    }
}

/// A line of our own JSON Lines export: its raw body and receive time.
fn from_jsonl(line: &str) -> Row {
    let bytes = || line.as_bytes().to_vec();
    let Ok(Value::Object(row)) = serde_json::from_str::<Value>(line) else {
        return Err(("a line that is not a JSON object".into(), bytes()));
    };
    let text = |name: &str| row.get(name).and_then(Value::as_str);
    let Some(raw) = text("RawBody") else {
        return Err(("a line without RawBody".into(), bytes()));
    };
    let Some(at) = text("ReceivedAt").and_then(|t| {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    }) else {
        return Err(("a line without a ReceivedAt time".into(), bytes()));
    };
    match Lead::reread(raw, Origin::from_column(text("Origin"))) {
        // Its rating as it was when it arrived, if it had one.
        Ok(lead) => Ok((
            Lead {
                rating: crate::store::rating_of_row(&row),
                ..lead
            },
            at,
        )),
        Err(e) => Err((format!("its RawBody is not a lead: {e}"), bytes())),
    }
}

struct Run<'a> {
    store: &'a LeadStore,
    window: Option<TimeRange>,
    now: OffsetDateTime,
    counts: Imported,
    /// The leads of this source (imported or present), for --deliver.
    delivered_ids: HashSet<LeadId>,
    keep_ids: bool,
    /// Earliest and latest creation time seen.
    span: Option<(OffsetDateTime, OffsetDateTime)>,
    /// Unreadable rows earlier runs kept (by source hash): kept once.
    kept: HashSet<String>,
    progress: Progress,
    /// `LEAD_RATING`: rate leads that come without a rating.
    rate_leads: bool,
}

impl Run<'_> {
    /// Takes one source row; `seed` names it in the source (a table's
    /// keys, a line's bytes), so an unreadable row is kept only once
    /// however often the import runs.
    async fn take(&mut self, row: Row, seed: &str) -> anyhow::Result<()> {
        self.counts.read += 1;
        let row = row.and_then(|(lead, at)| {
            if at < EARLIEST || at > self.now + LATEST_AHEAD {
                let raw = lead.raw.clone().into_bytes();
                let at = at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default();
                return Err((
                    format!("it says it was created at {at}, when no lead was"),
                    raw,
                ));
            }
            if !raw_body_fits(&lead.raw) {
                let raw = lead.raw.clone().into_bytes();
                return Err((
                    format!(
                        "it is too large to keep whole ({} characters of JSON); it stays in \
                         the source",
                        lead.raw.chars().count()
                    ),
                    raw,
                ));
            }
            Ok((lead, at))
        });
        let (lead, at) = match row {
            // Kept to the microsecond, as its key is (Partner Center writes
            // seven digits of a second): the range --deliver reads must
            // hold the key.
            Ok((lead, at)) => (lead, crate::store::keys::truncate_to_micros(at)),
            Err((reason, body)) => {
                self.counts.unreadable += 1;
                let source = hex_sha256(seed.as_bytes());
                if !self.kept.insert(source.clone()) {
                    return Ok(());
                }
                let kept = self
                    .store
                    .quarantine_import_row(self.now, &format!("import: {reason}"), &body, &source)
                    .await;
                if let Err(e) = kept {
                    self.progress.abandon();
                    return Err(e).context("could not keep an unreadable row");
                }
                return Ok(());
            }
        };
        if self.window.is_some_and(|w| !w.contains(at)) {
            self.counts.outside += 1;
            return Ok(());
        }
        // As LeadIngest stores it (rated), with no digest record and no
        // delivery.
        let lead = if self.rate_leads { lead.rated() } else { lead };
        let id = match self.store.save(&lead, at, &[]).await {
            Ok(SaveOutcome::Created(id)) => {
                self.counts.imported += 1;
                id
            }
            Ok(SaveOutcome::Duplicate(id)) => {
                self.counts.already_present += 1;
                id
            }
            Err(e) => {
                self.progress.abandon();
                return Err(e).context("could not store a lead");
            }
        };
        if self.keep_ids {
            self.delivered_ids.insert(id);
        }
        self.span = Some(match self.span {
            None => (at, at),
            Some((first, last)) => (first.min(at), last.max(at)),
        });
        Ok(())
    }

    /// Queues this source's leads for `name`, as `deliveries backfill`
    /// does: those its route takes and it has no record of.
    async fn deliver(
        &self,
        destinations: &Destinations,
        name: &DestinationName,
    ) -> anyhow::Result<usize> {
        let Some((first, last)) = self.span else {
            return Ok(0);
        };
        let end = last.checked_add(time::Duration::SECOND).unwrap_or(last);
        let Some(range) = TimeRange::new(first, end) else {
            return Ok(0);
        };
        let routes = destinations.routes();
        Ok(self
            .store
            .backfill(
                &Consumer::Destination(name.clone()),
                range,
                self.now,
                |stored| {
                    self.delivered_ids.contains(&stored.id) && routes.accepts(name, &stored.lead)
                },
            )
            .await?)
    }
}
