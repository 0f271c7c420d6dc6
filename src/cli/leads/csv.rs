//! CSV for CRM import wizards and spreadsheets: RFC 4180, a header row the
//! Dynamics 365, Salesforce and HubSpot wizards map on their own, and every
//! cell a spreadsheet would run as a formula neutralised.

use super::fields::Fields;
use crate::domain::Level;
use crate::store::ExportRow;
use std::borrow::Cow;
use time::format_description::FormatItem;
use time::macros::format_description;

/// The CSV header: the customer's split columns, then what the lead was
/// about and when it came. Names most CRM import wizards map on their own.
pub const CSV_HEADER: [&str; 15] = [
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
    "Rating",
    "Rating Reasons",
];

const CSV_TIME: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

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

/// A lead's CSV row; with `guard`, every formula-like cell neutralised
/// (without it, for a CRM import that stores values as text: a phone
/// `+81 3-…` then arrives without the guard's `'`).
pub(super) fn csv_record(row: &ExportRow, guard: bool) -> [Cow<'_, str>; CSV_HEADER.len()] {
    let f = Fields::of(row);
    let cell = |value| cell(value, guard);
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
        // As CRMs spell their picklist's values (Salesforce maps it).
        Cow::Borrowed(f.rating.map(Level::title).unwrap_or_default()),
        cell(f.rating_reasons),
    ]
}

fn cell(value: Option<&str>, guard: bool) -> Cow<'_, str> {
    let value = value.unwrap_or_default();
    if guard {
        neutralise(value)
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
