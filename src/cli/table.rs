//! Tables for a person at a terminal (`leads list`, `deliveries list`): one
//! line per row, cells made safe to print and cut to their column's width,
//! measured in terminal columns (`unicode-width`: wide CJK and emoji count
//! two), columns aligned, no trailing spaces.

use crate::domain::text;
use std::io::{self, Write};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// A column: its heading and its widest cell, in terminal columns.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub heading: &'static str,
    pub max_width: usize,
}

/// `values` as a row of `columns`: each cell safe and cut to its width.
pub fn row(columns: &[Column], values: &[&str]) -> Vec<String> {
    columns
        .iter()
        .zip(values)
        .map(|(column, value)| cell(value, column.max_width))
        .collect()
}

/// A cell safe to print: control and bidirectional-override characters
/// (escape sequences, newlines that would break the table) become spaces,
/// and text wider than `width` columns ends in `…`.
pub fn cell(text: &str, width: usize) -> String {
    let clean = text::single_line(text);
    if clean.width() <= width {
        return clean.into_owned();
    }
    let mut used = 0;
    let mut cut: String = clean
        .chars()
        .take_while(|&c| {
            used += c.width().unwrap_or(0);
            used < width // leaves a column for the ellipsis
        })
        .collect();
    cut.push('…');
    cut
}

/// Prints the table, then `summary`, to standard output. A reader that
/// stopped reading (`| head`) is not an error.
pub fn print(columns: &[Column], rows: &[Vec<String>], summary: &str) -> anyhow::Result<()> {
    let mut out = io::BufWriter::new(io::stdout());
    let written = write_table(&mut out, columns, rows)
        .and_then(|()| writeln!(out, "{summary}"))
        .and_then(|()| out.flush());
    finished(written, "Failed to write the list")
}

/// `written`, where a closed pipe counts as done (the reader has all it
/// wanted), and any other error says `what` failed.
pub fn finished(written: io::Result<()>, what: &'static str) -> anyhow::Result<()> {
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => anyhow::Context::context(other, what),
    }
}

/// The headings, then the rows; nothing at all when there are no rows.
pub fn write_table(
    out: &mut impl Write,
    columns: &[Column],
    rows: &[Vec<String>],
) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let widths: Vec<usize> = (0..columns.len())
        .map(|i| {
            rows.iter()
                .map(|row| row.get(i).map_or(0, |c| c.width()))
                .chain(std::iter::once(columns[i].heading.width()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            if i + 1 < cells.len() {
                text.push_str(&" ".repeat(widths[i].saturating_sub(cell.width())));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(columns.iter().map(|c| c.heading).collect())?;
    for row in rows {
        line(row.iter().map(String::as_str).collect())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: [Column; 3] = [
        Column {
            heading: "RECEIVED (UTC)",
            max_width: 16,
        },
        Column {
            heading: "NAME",
            max_width: 24,
        },
        Column {
            heading: "COMPANY",
            max_width: 24,
        },
    ];

    fn rows(names: &[&str]) -> Vec<Vec<String>> {
        names
            .iter()
            .map(|name| row(&COLUMNS, &["x", name, "x"]))
            .collect()
    }

    #[test]
    fn cells_are_clean_and_cut() {
        assert_eq!(cell("Zoë 株式会社", 12), "Zoë 株式会社");
        assert_eq!(cell("Zoë 株式会社", 10), "Zoë 株式…");
        assert_eq!(cell("abcdefghij", 5), "abcd…");
        assert_eq!(cell("abcde", 5), "abcde");
        // Wide characters count two columns: the cut never overflows.
        assert_eq!(UnicodeWidthStr::width("Fabrikam 株式会社"), 17);
        assert_eq!(cell("株式会社ファブリカム", 9), "株式会社…");
        assert_eq!(cell("株式会社ファブリカム", 10), "株式会社…");
        assert_eq!(UnicodeWidthStr::width("Zoe\u{308}"), 3);
        assert_eq!(cell("red\x1b[31m\nx", 20), "red [31m x");
        assert_eq!(cell("evil\u{202E}txt.exe", 20), "evil txt.exe");
    }

    #[test]
    fn emoji_count_two_columns_so_rows_stay_aligned() {
        // U+1F680–1F6FF (transport and map symbols) was missing from the
        // hand-made width table.
        assert_eq!(UnicodeWidthStr::width("🚀 Rocket"), 9);
        assert_eq!(cell("🚀🚀🚀🚀", 5), "🚀🚀…");
        let mut out = Vec::new();
        write_table(&mut out, &COLUMNS, &rows(&["🚀 Rocket Ltd", "Plain Ltd"])).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let company_at = |line: &str| {
            let name_end = line.find("Ltd").unwrap() + 3;
            UnicodeWidthStr::width(&line[..name_end]) + line[name_end..].find('x').unwrap()
        };
        assert_eq!(company_at(lines[1]), company_at(lines[2]), "{text}");
    }

    #[test]
    fn tables_align_and_end_with_no_trailing_spaces() {
        let mut out = Vec::new();
        write_table(&mut out, &COLUMNS, &rows(&["Zoë", "A much longer name"])).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("RECEIVED (UTC)  NAME"));
        let company_at = |line: &str| line.rfind('x');
        assert_eq!(
            UnicodeWidthStr::width(&lines[1][..company_at(lines[1]).unwrap()]),
            UnicodeWidthStr::width(&lines[2][..company_at(lines[2]).unwrap()])
        );
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
        let mut empty = Vec::new();
        write_table(&mut empty, &COLUMNS, &[]).unwrap();
        assert!(empty.is_empty());
    }
}
