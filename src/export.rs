//! Reading stored leads back out: `handler leads list` (a table for a person
//! at a terminal) and `handler leads export` (CSV for CRM import wizards, or
//! JSON Lines with every stored column).
//!
//! Both read only the key range of their time window, a page at a time
//! ([`LeadStore::rows_between`]), so an export of any size runs in the
//! memory of one page. Time arguments ([`TimeArg`], [`Window`]) and CSV
//! formula neutralisation ([`neutralise`]) live here, tested beside them.

use crate::configuration::StorageSettings;
use crate::store::{keys, ExportRow, LeadStore};
use anyhow::Context as _;
use futures::TryStreamExt;
use serde_json::Value;
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use time::format_description::well_known::Rfc3339;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

/// `list` looks back a week unless told otherwise.
pub const LIST_DEFAULT_SINCE: TimeArg = TimeArg::Ago(Duration::days(7));
/// `export` looks back 30 days unless told otherwise.
pub const EXPORT_DEFAULT_SINCE: TimeArg = TimeArg::Ago(Duration::days(30));

/// The CSV header: the customer's split columns, then what the lead was
/// about and when it came. Names most CRM import wizards map on their own.
pub const CSV_HEADER: [&str; 13] = [
    "First Name",
    "Last Name",
    "Email",
    "Phone",
    "Company",
    "Job Title",
    "Country",
    "Description",
    "Offer",
    "Action",
    "Lead Source",
    "Received (UTC)",
    "Lead Id",
];

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
const DAY: &[FormatItem<'static>] = format_description!("[year]-[month]-[day]");
const CSV_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
const LIST_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]");

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

/// A time window `[since, until)`: leads received at `since` are in it,
/// those received at `until` are not, so consecutive windows never overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

impl Window {
    /// Resolves the arguments against `now`; `until` defaults to now.
    pub fn resolve(
        since: Option<TimeArg>,
        until: Option<TimeArg>,
        default_since: TimeArg,
        now: OffsetDateTime,
    ) -> anyhow::Result<Self> {
        let since = since.unwrap_or(default_since).resolve(now)?;
        let until = until.unwrap_or(TimeArg::Ago(Duration::ZERO)).resolve(now)?;
        anyhow::ensure!(
            since < until,
            "--since ({}) must be before --until ({})",
            rfc3339(since),
            rfc3339(until)
        );
        Ok(Self { since, until })
    }

    /// The store's `(after, through]` selecting the same leads: receive
    /// times are kept to the microsecond, so "at or after `since`" is "after
    /// the microsecond before it".
    pub fn store_bounds(&self) -> (OffsetDateTime, OffsetDateTime) {
        (micro_before(self.since), micro_before(self.until))
    }
}

/// The last microsecond before `at`: received times at or after `at` are
/// exactly those after it.
fn micro_before(at: OffsetDateTime) -> OffsetDateTime {
    let truncated = keys::truncate_to_micros(at);
    if truncated == at {
        at.checked_sub(Duration::microseconds(1)).unwrap_or(at)
    } else {
        truncated
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Neutralises a CSV cell that a spreadsheet would run as a formula: one
/// beginning with `=`, `+`, `-`, `@`, tab or carriage return gets a leading
/// `'` (OWASP's advice for CSV injection). Quoting is the CSV writer's job.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// `12345` as `12,345`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `1 lead`, `2 leads`.
fn count(n: u64, noun: &str) -> String {
    let s = if n == 1 { "" } else { "s" };
    format!("{} {noun}{s}", thousands(n))
}

/// The fields exports and the list show, from the lead parsed out of the raw
/// body; from the stored split columns for a row whose raw body is gone.
struct Fields<'a> {
    first_name: Option<&'a str>,
    last_name: Option<&'a str>,
    email: Option<&'a str>,
    phone: Option<&'a str>,
    company: Option<&'a str>,
    title: Option<&'a str>,
    country: Option<&'a str>,
    description: Option<&'a str>,
    offer: Option<&'a str>,
    action: Option<&'a str>,
    source: Option<&'a str>,
    lead_id: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn of(row: &'a ExportRow) -> Self {
        let column = |name: &str| row.columns.get(name).and_then(Value::as_str);
        let lead_id = column("LeadId");
        match &row.lead {
            Some(lead) => {
                let c = &lead.customer;
                Self {
                    first_name: c.first_name.as_deref(),
                    last_name: c.last_name.as_deref(),
                    email: c.email.as_deref(),
                    phone: c.phone.as_deref(),
                    company: c.company.as_deref(),
                    title: c.title.as_deref(),
                    country: c.country.as_deref(),
                    description: lead.description.as_deref(),
                    offer: lead.offer_title.as_deref(),
                    action: lead
                        .action_code
                        .as_deref()
                        .or(lead.source.as_ref().map(|s| s.action.as_str())),
                    source: lead.lead_source.as_deref(),
                    lead_id,
                }
            }
            None => Self {
                first_name: column("FirstName"),
                last_name: column("LastName"),
                email: column("Email"),
                phone: column("Phone"),
                company: column("Company"),
                title: column("Title"),
                country: column("Country"),
                description: column("Description"),
                offer: column("OfferTitle"),
                action: column("ActionCode").or(column("LeadSourceAction")),
                source: column("LeadSource"),
                lead_id,
            },
        }
    }

    fn name(&self) -> String {
        match (self.first_name, self.last_name) {
            (Some(first), Some(last)) => format!("{first} {last}"),
            (Some(one), None) | (None, Some(one)) => one.to_owned(),
            (None, None) => String::new(),
        }
    }
}

fn csv_record(row: &ExportRow) -> [Cow<'_, str>; CSV_HEADER.len()] {
    let f = Fields::of(row);
    let received = row
        .received_at
        .and_then(|at| at.format(CSV_TIME).ok())
        .unwrap_or_default();
    [
        cell(f.first_name),
        cell(f.last_name),
        cell(f.email),
        cell(f.phone),
        cell(f.company),
        cell(f.title),
        cell(f.country),
        cell(f.description),
        cell(f.offer),
        cell(f.action),
        cell(f.source),
        Cow::Owned(received),
        cell(f.lead_id),
    ]
}

fn cell(value: Option<&str>) -> Cow<'_, str> {
    neutralise(value.unwrap_or_default())
}

/// Which leads a `leads` command reads. Its `///` docs are the CLI's help.
#[derive(Debug, Clone, clap::Args)]
pub struct Selection {
    /// Start of the window, included [default: 7d for list, 30d for export]
    #[arg(long, value_parser = TimeArg::parse)]
    pub since: Option<TimeArg>,
    /// End of the window, excluded [default: now]
    #[arg(long, value_parser = TimeArg::parse)]
    pub until: Option<TimeArg>,
    /// Only leads for this offer: its title exactly as listed (case-sensitive)
    #[arg(long)]
    pub offer: Option<String>,
    /// Include Partner Center's test leads (MSFT_TEST...)
    #[arg(long)]
    pub include_tests: bool,
}

/// What `leads list` shows.
pub type ListOptions = Selection;

/// Column headings and widest cell (in terminal columns) of the list.
const LIST_COLUMNS: [(&str, usize); 7] = [
    ("RECEIVED (UTC)", 16),
    ("NAME", 24),
    ("COMPANY", 24),
    ("EMAIL", 32),
    ("COUNTRY", 14),
    ("OFFER", 28),
    ("ACTION", 10),
];

/// `handler leads list`: the leads of a window as a table on stdout, newest
/// last, then a line counting them and the test leads left out.
pub async fn list(storage: &StorageSettings, options: ListOptions) -> anyhow::Result<()> {
    let window = Window::resolve(
        options.since,
        options.until,
        LIST_DEFAULT_SINCE,
        OffsetDateTime::now_utc(),
    )?;
    let store = LeadStore::new(storage)?;
    let (after, through) = window.store_bounds();
    let mut pages = std::pin::pin!(store.rows_between(after, through, options.offer.as_deref()));
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

fn list_cells(row: &ExportRow) -> [String; 7] {
    let f = Fields::of(row);
    let received = row
        .received_at
        .and_then(|at| at.format(LIST_TIME).ok())
        .unwrap_or_default();
    let name = f.name();
    let values = [
        received.as_str(),
        &name,
        f.company.unwrap_or_default(),
        f.email.unwrap_or_default(),
        f.country.unwrap_or_default(),
        f.offer.unwrap_or_default(),
        f.action.unwrap_or_default(),
    ];
    std::array::from_fn(|i| terminal_cell(values[i], LIST_COLUMNS[i].1))
}

/// A cell safe to print: control characters (escape sequences, newlines
/// that would break the table) become spaces, and text wider than `width`
/// columns ends in `…`.
fn terminal_cell(text: &str, width: usize) -> String {
    let clean = text.chars().map(|c| if c.is_control() { ' ' } else { c });
    if columns(text) <= width {
        return clean.collect();
    }
    let mut used = 0;
    let mut cut: String = clean
        .take_while(|&c| {
            used += char_columns(c);
            used < width // leaves a column for the ellipsis
        })
        .collect();
    cut.push('…');
    cut
}

/// Terminal columns `text` takes, near enough for a table.
fn columns(text: &str) -> usize {
    text.chars().map(char_columns).sum()
}

/// East Asian wide characters (CJK, Hangul, full-width forms, most emoji)
/// take two columns, combining marks none; the rest one.
fn char_columns(c: char) -> usize {
    match u32::from(c) {
        0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

fn write_table(out: &mut impl Write, rows: &[[String; 7]]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let widths: [usize; 7] = std::array::from_fn(|i| {
        rows.iter()
            .map(|row| columns(&row[i]))
            .chain(std::iter::once(LIST_COLUMNS[i].0.len()))
            .max()
            .unwrap_or(0)
    });
    let mut line = |cells: [&str; 7]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i].saturating_sub(columns(cell));
                text.push_str(&" ".repeat(pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(LIST_COLUMNS.map(|(heading, _)| heading))?;
    for row in rows {
        line(std::array::from_fn(|i| row[i].as_str()))?;
    }
    Ok(())
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// CSV (RFC 4180) for CRM import wizards and spreadsheets.
    Csv,
    /// JSON Lines: one object per lead, every stored column.
    Jsonl,
}

/// What `leads export` writes, and where.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportOptions {
    /// Output format
    #[arg(long, value_enum)]
    pub format: Format,
    #[command(flatten)]
    pub selection: Selection,
    /// Write here instead of stdout; the file appears only once the export
    /// is complete
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Start the CSV with a UTF-8 byte-order mark, so Excel reads it as UTF-8
    #[arg(long)]
    pub bom: bool,
}

/// `handler leads export`: the leads of a window as CSV or JSON Lines, to a
/// file (complete or not at all) or to stdout, streamed page by page.
pub async fn export(storage: &StorageSettings, options: ExportOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        !options.bom || options.format == Format::Csv,
        "--bom applies to CSV only"
    );
    let window = Window::resolve(
        options.selection.since,
        options.selection.until,
        EXPORT_DEFAULT_SINCE,
        OffsetDateTime::now_utc(),
    )?;
    let store = LeadStore::new(storage)?;
    let mut output = Output::open(options.output.as_deref())?;
    let mut progress = Progress::new(io::stderr().is_terminal());
    let written = tokio::select! {
        written = write_export(&store, window, &options, &mut output, &mut progress) => written,
        // Stopped with Ctrl+C: end like any failure, without a partial file.
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let counts = match written {
        Ok(counts) => counts,
        Err(e) if is_broken_pipe(&e) => return Ok(()), // `| head`: the reader has enough
        Err(e) => {
            progress.abandon();
            return Err(e); // `output` drops its temporary file
        }
    };
    let destination = match output.commit() {
        Err(e) if is_broken_pipe(&e) => return Ok(()),
        committed => committed?,
    };
    let tests = count(counts.tests, "test lead");
    let tests = if options.selection.include_tests {
        format!("{tests} included")
    } else {
        format!("{tests} left out")
    };
    progress.finish(&format!(
        "exported {} to {destination} ({tests})",
        count(counts.written, "lead")
    ));
    Ok(())
}

#[derive(Debug, Default)]
struct Counts {
    written: u64,
    tests: u64,
}

async fn write_export(
    store: &LeadStore,
    window: Window,
    options: &ExportOptions,
    output: &mut Output,
    progress: &mut Progress,
) -> anyhow::Result<Counts> {
    let (after, through) = window.store_bounds();
    let mut pages =
        std::pin::pin!(store.rows_between(after, through, options.selection.offer.as_deref()));
    let mut counts = Counts::default();
    let mut rows = match options.format {
        Format::Csv => {
            if options.bom {
                output.write_all(UTF8_BOM)?;
            }
            let mut csv = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(output);
            csv.write_record(CSV_HEADER).map_err(csv_io)?;
            RowWriter::Csv(Box::new(csv))
        }
        Format::Jsonl => RowWriter::Jsonl(output),
    };
    while let Some(page) = pages.try_next().await? {
        for row in &page {
            if row.is_test {
                counts.tests += 1;
                if !options.selection.include_tests {
                    continue;
                }
            }
            rows.write(row)?;
            counts.written += 1;
        }
        progress.update(counts.written);
    }
    rows.flush()?;
    Ok(counts)
}

enum RowWriter<'a> {
    Csv(Box<csv::Writer<&'a mut Output>>),
    Jsonl(&'a mut Output),
}

impl RowWriter<'_> {
    fn write(&mut self, row: &ExportRow) -> io::Result<()> {
        match self {
            Self::Csv(csv) => csv
                .write_record(csv_record(row).iter().map(|cell| cell.as_bytes()))
                .map_err(csv_io),
            Self::Jsonl(out) => {
                serde_json::to_writer(&mut **out, &row.columns)?;
                out.write_all(b"\n")
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Csv(csv) => csv.flush(),
            Self::Jsonl(out) => out.flush(),
        }
    }
}

fn csv_io(error: csv::Error) -> io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// Where an export goes: buffered stdout, or a temporary file beside the
/// destination that becomes it only once complete. Dropped uncommitted, the
/// temporary file is removed, so a failed export never leaves a file that
/// looks whole.
enum Output {
    Stdout(BufWriter<io::Stdout>),
    File {
        writer: BufWriter<File>,
        temporary: PathBuf,
        destination: PathBuf,
        committed: bool,
    },
}

impl Output {
    fn open(path: Option<&Path>) -> anyhow::Result<Self> {
        let Some(destination) = path else {
            return Ok(Self::Stdout(BufWriter::new(io::stdout())));
        };
        let name = destination
            .file_name()
            .with_context(|| format!("--output {} is not a file name", destination.display()))?;
        let temporary = destination.with_file_name(format!(
            ".{}.{}.partial",
            name.to_string_lossy(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&temporary)
            .with_context(|| format!("Failed to create {}", temporary.display()))?;
        Ok(Self::File {
            writer: BufWriter::new(file),
            temporary,
            destination: destination.to_owned(),
            committed: false,
        })
    }

    /// Flushes; a file is synced and renamed into place. Returns where the
    /// export went, for the summary.
    fn commit(mut self) -> anyhow::Result<String> {
        match &mut self {
            Self::Stdout(out) => {
                out.flush().context("Failed to write to stdout")?;
                Ok("stdout".into())
            }
            Self::File {
                writer,
                temporary,
                destination,
                committed,
            } => {
                writer
                    .flush()
                    .and_then(|()| writer.get_ref().sync_all())
                    .with_context(|| format!("Failed to write {}", temporary.display()))?;
                std::fs::rename(&*temporary, &*destination).with_context(|| {
                    format!(
                        "Failed to rename {} to {}",
                        temporary.display(),
                        destination.display()
                    )
                })?;
                *committed = true;
                Ok(destination.display().to_string())
            }
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Stdout(out) => out.write(buf),
            Self::File { writer, .. } => writer.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.write_all(buf),
            Self::File { writer, .. } => writer.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Stdout(out) => out.flush(),
            Self::File { writer, .. } => writer.flush(),
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if let Self::File {
            temporary,
            committed: false,
            ..
        } = self
        {
            let _ = std::fs::remove_file(temporary);
        }
    }
}

/// "exported 12,000 leads…" on stderr, rewritten in place after each page;
/// only when stderr is a terminal, so logs and pipes stay clean.
struct Progress {
    on_terminal: bool,
    shown: bool,
}

impl Progress {
    fn new(on_terminal: bool) -> Self {
        Self {
            on_terminal,
            shown: false,
        }
    }

    fn update(&mut self, written: u64) {
        if self.on_terminal {
            eprint!("\rexported {}…", count(written, "lead"));
            self.shown = true;
        }
    }

    /// Ends the progress line, if any, before an error is printed.
    fn abandon(&mut self) {
        if self.shown {
            eprintln!();
            self.shown = false;
        }
    }

    /// Replaces the progress line with `summary` (printed either way).
    fn finish(&mut self, summary: &str) {
        if self.shown {
            // Clear what is left of the progress line.
            eprintln!("\r{summary}\x1b[K");
        } else {
            eprintln!("{summary}");
        }
        self.shown = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-22 10:00:00 UTC);

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
    fn windows_default_and_must_not_be_empty() {
        let window = Window::resolve(None, None, LIST_DEFAULT_SINCE, NOW).unwrap();
        assert_eq!(window.since, datetime!(2026-11-15 10:00:00 UTC));
        assert_eq!(window.until, NOW);
        let window = Window::resolve(None, None, EXPORT_DEFAULT_SINCE, NOW).unwrap();
        assert_eq!(window.since, datetime!(2026-10-23 10:00:00 UTC));
        let later = TimeArg::parse("1h").ok();
        let earlier = TimeArg::parse("2h").ok();
        assert!(Window::resolve(later, earlier, LIST_DEFAULT_SINCE, NOW).is_err());
        assert!(Window::resolve(later, later, LIST_DEFAULT_SINCE, NOW).is_err());
    }

    #[test]
    fn store_bounds_include_since_and_exclude_until() {
        let window = Window {
            since: datetime!(2026-11-01 00:00:00 UTC),
            until: datetime!(2026-11-02 00:00:00 UTC),
        };
        assert_eq!(
            window.store_bounds(),
            (
                datetime!(2026-10-31 23:59:59.999999 UTC),
                datetime!(2026-11-01 23:59:59.999999 UTC)
            )
        );
        // Below a microsecond: "at or after" rounds up to the next stored time.
        let window = Window {
            since: datetime!(2026-11-01 00:00:00.0000005 UTC),
            until: datetime!(2026-11-01 00:00:00.0000025 UTC),
        };
        assert_eq!(
            window.store_bounds(),
            (
                datetime!(2026-11-01 00:00:00.000000 UTC),
                datetime!(2026-11-01 00:00:00.000002 UTC)
            )
        );
    }

    #[test]
    fn formula_cells_are_neutralised() {
        for (cell, expected) in [
            (
                "=HYPERLINK(\"http://x\",\"y\")",
                "'=HYPERLINK(\"http://x\",\"y\")",
            ),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
            ("\tcmd", "'\tcmd"),
            ("\rcmd", "'\rcmd"),
            ("+81 3-1234-5678", "'+81 3-1234-5678"),
        ] {
            assert_eq!(neutralise(cell), expected);
        }
        for cell in [
            "",
            "Zoë 株式会社",
            "a=b",
            "a-b",
            "x@y.z",
            "'quoted",
            " =1",
            "\n=1",
        ] {
            assert!(
                matches!(neutralise(cell), Cow::Borrowed(c) if c == cell),
                "{cell:?}"
            );
        }
    }

    #[test]
    fn csv_quotes_per_rfc4180() {
        let mut csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::new());
        csv.write_record(["a,b", "say \"hi\"", "line\nbreak", "cr\rhere", "plain"])
            .unwrap();
        let bytes = csv.into_inner().unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",\"cr\rhere\",plain\r\n"
        );
    }

    #[test]
    fn terminal_cells_are_clean_and_cut() {
        assert_eq!(terminal_cell("Zoë 株式会社", 12), "Zoë 株式会社");
        assert_eq!(terminal_cell("Zoë 株式会社", 10), "Zoë 株式…");
        assert_eq!(terminal_cell("abcdefghij", 5), "abcd…");
        assert_eq!(terminal_cell("abcde", 5), "abcde");
        // Wide characters count two columns: the cut never overflows.
        assert_eq!(columns("Fabrikam 株式会社"), 17);
        assert_eq!(terminal_cell("株式会社ファブリカム", 9), "株式会社…");
        assert_eq!(terminal_cell("株式会社ファブリカム", 10), "株式会社…");
        assert_eq!(columns("Zoe\u{308}"), 3);
        assert_eq!(terminal_cell("red\x1b[31m\nx", 20), "red [31m x");
    }

    #[test]
    fn numbers_have_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(count(1, "lead"), "1 lead");
        assert_eq!(count(12_000, "lead"), "12,000 leads");
    }

    #[test]
    fn tables_align_and_end_with_no_trailing_spaces() {
        let row = |name: &str| -> [String; 7] {
            std::array::from_fn(|i| if i == 1 { name.into() } else { "x".into() })
        };
        let mut out = Vec::new();
        write_table(&mut out, &[row("Zoë"), row("A much longer name")]).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("RECEIVED (UTC)  NAME"));
        let offer_at = |line: &str| line.chars().position(|c| c == 'x' || c == 'A');
        assert_eq!(offer_at(lines[1]), offer_at(lines[2]));
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }
}
