//! `leads list`'s table for a person at a terminal: one line per lead,
//! cells made safe to print and cut to their column's width, measured in
//! terminal columns (`unicode-width`: wide CJK and emoji count two).

use super::fields::Fields;
use crate::domain::text;
use crate::store::ExportRow;
use std::io::{self, Write};
use time::format_description::FormatItem;
use time::macros::format_description;
use unicode_width::UnicodeWidthStr;

const LIST_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]");

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

pub(super) fn list_cells(row: &ExportRow) -> [String; 7] {
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

/// A cell safe to print: control and bidirectional-override characters
/// (escape sequences, newlines that would break the table) become spaces,
/// and text wider than `width` columns ends in `…`.
fn terminal_cell(text: &str, width: usize) -> String {
    let clean = text::single_line(text);
    if clean.width() <= width {
        return clean.into_owned();
    }
    let mut used = 0;
    let mut cut: String = clean
        .chars()
        .take_while(|&c| {
            used += c.to_string().width();
            used < width // leaves a column for the ellipsis
        })
        .collect();
    cut.push('…');
    cut
}

pub(super) fn write_table(out: &mut impl Write, rows: &[[String; 7]]) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let widths: [usize; 7] = std::array::from_fn(|i| {
        rows.iter()
            .map(|row| row[i].width())
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
                let pad = widths[i].saturating_sub(cell.width());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_cells_are_clean_and_cut() {
        assert_eq!(terminal_cell("Zoë 株式会社", 12), "Zoë 株式会社");
        assert_eq!(terminal_cell("Zoë 株式会社", 10), "Zoë 株式…");
        assert_eq!(terminal_cell("abcdefghij", 5), "abcd…");
        assert_eq!(terminal_cell("abcde", 5), "abcde");
        // Wide characters count two columns: the cut never overflows.
        assert_eq!(UnicodeWidthStr::width("Fabrikam 株式会社"), 17);
        assert_eq!(terminal_cell("株式会社ファブリカム", 9), "株式会社…");
        assert_eq!(terminal_cell("株式会社ファブリカム", 10), "株式会社…");
        assert_eq!(UnicodeWidthStr::width("Zoe\u{308}"), 3);
        assert_eq!(terminal_cell("red\x1b[31m\nx", 20), "red [31m x");
    }

    #[test]
    fn emoji_count_two_columns_so_rows_stay_aligned() {
        // U+1F680–1F6FF (transport and map symbols) was missing from the
        // hand-made width table.
        assert_eq!(UnicodeWidthStr::width("🚀 Rocket"), 9);
        assert_eq!(terminal_cell("🚀🚀🚀🚀", 5), "🚀🚀…");
        let row = |name: &str| -> [String; 7] {
            std::array::from_fn(|i| if i == 1 { name.into() } else { "x".into() })
        };
        let mut out = Vec::new();
        write_table(&mut out, &[row("🚀 Rocket Ltd"), row("Plain Ltd")]).unwrap();
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
