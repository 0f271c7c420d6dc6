//! `handler leads export`: the leads of a time range as CSV or JSON Lines,
//! to a file (complete or not at all) or to stdout, streamed page by page.

use super::csv::{csv_record, CSV_HEADER};
use super::output::Output;
use super::progress::{count, Progress};
use super::{Selection, EXPORT_DEFAULT_SINCE};
use crate::configuration::StorageSettings;
use crate::domain::TimeRange;
use crate::store::{ExportRow, LeadStore};
use futures::TryStreamExt;
use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

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
    /// CSV for a CRM import, not a spreadsheet: cells starting with =, +,
    /// -, @ are written as they are (a phone +81 3-1234-5678 without the
    /// guard's '). RISK: opened in Excel, LibreOffice or Google Sheets such
    /// a cell runs as a formula — customer text can then fetch URLs or
    /// mislead whoever opens it. Import it; do not open it in a spreadsheet.
    #[arg(long)]
    pub no_formula_guard: bool,
}

/// `handler leads export`: the leads of a window as CSV or JSON Lines, to a
/// file (complete or not at all) or to stdout, streamed page by page.
pub async fn export(storage: &StorageSettings, options: ExportOptions) -> anyhow::Result<()> {
    anyhow::ensure!(
        !options.bom || options.format == Format::Csv,
        "--bom applies to CSV only"
    );
    anyhow::ensure!(
        !options.no_formula_guard || options.format == Format::Csv,
        "--no-formula-guard applies to CSV only"
    );
    let range = options.selection.range(EXPORT_DEFAULT_SINCE)?;
    let store = LeadStore::from_settings(storage)?;
    let mut output = Output::open(options.output.as_deref())?;
    let mut progress = Progress::new(io::stderr().is_terminal());
    let written = tokio::select! {
        written = write_export(&store, range, &options, &mut output, &mut progress) => written,
        // Stopped with Ctrl+C: end like any failure, without a partial file.
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    let counts = match written {
        Ok(counts) => counts,
        Err(e) if is_broken_pipe(&e) => return Ok(()), // `| head`: the reader has enough
        Err(e) => {
            progress.abandon();
            return Err(e); // dropping `output` removes its temporary file
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
    range: TimeRange,
    options: &ExportOptions,
    output: &mut Output,
    progress: &mut Progress,
) -> anyhow::Result<Counts> {
    let mut pages = std::pin::pin!(store.rows_in(range));
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
            RowWriter::Csv(Box::new(csv), !options.no_formula_guard)
        }
        Format::Jsonl => RowWriter::Jsonl(output),
    };
    while let Some(page) = pages.try_next().await? {
        for row in &page {
            if !options.selection.selects(row) {
                continue;
            }
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
    /// With the formula guard on or off.
    Csv(Box<csv::Writer<&'a mut Output>>, bool),
    Jsonl(&'a mut Output),
}

impl RowWriter<'_> {
    fn write(&mut self, row: &ExportRow) -> io::Result<()> {
        match self {
            Self::Csv(csv, guard) => csv
                .write_record(csv_record(row, *guard).iter().map(|cell| cell.as_bytes()))
                .map_err(csv_io),
            Self::Jsonl(out) => {
                serde_json::to_writer(&mut **out, &row.columns)?;
                out.write_all(b"\n")
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Csv(csv, _) => csv.flush(),
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
