//! The shape of a lead row: Partner Center's own columns (so readers of the
//! table Partner Center writes keep working), split customer columns, the
//! parsed `LeadSource`, a real `Edm.DateTime` receive time, the test-lead
//! flag, and the raw body verbatim.

use super::keys;
use super::keys::{PARTITION_KEY, ROW_KEY};
use crate::domain::{Lead, Level, Rating};
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A string property holds at most 32 K UTF-16 code units (64 KiB).
const MAX_PROPERTY_UTF16: usize = 32_000;
const TRUNCATION_MARK: &str = " …[truncated]";
/// The raw body spread over up to eight properties: a posted body (≤ 64
/// KiB of UTF-8) takes at most three; a row imported from Partner Center's
/// table (six columns of up to 32 K characters, quoted into JSON) more.
/// Eight full ones are 512 KB, leaving the rest of a row's 1 MiB to the
/// parsed columns.
pub const RAW_BODY_COLUMNS: [&str; 8] = [
    "RawBody", "RawBody2", "RawBody3", "RawBody4", "RawBody5", "RawBody6", "RawBody7", "RawBody8",
];

/// Whether `raw` fits the raw body's columns whole. A lead whose raw body
/// does not is not stored cut: it could not be read back.
pub fn raw_body_fits(raw: &str) -> bool {
    split_utf16(raw).len() <= RAW_BODY_COLUMNS.len()
}
pub const RECEIVED_AT: &str = "ReceivedAt";
/// Set for a lead that was not posted (how its raw body reads back).
pub const ORIGIN: &str = "Origin";

/// Partner Center's `CustomerInfo` column: the customer as a JSON object,
/// its keys in alphabetical order (as Partner Center's own rows have them).
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct CustomerInfo<'a> {
    company: Cow<'a, str>,
    country: Cow<'a, str>,
    email: Cow<'a, str>,
    first_name: Cow<'a, str>,
    last_name: Cow<'a, str>,
    phone: Cow<'a, str>,
    title: Cow<'a, str>,
}

/// Builds the lead row and its de-duplication marker.
pub fn lead_entities(
    lead: &Lead,
    partition_key: &str,
    row_key: &str,
    lead_id: &str,
    received_at: OffsetDateTime,
) -> (Map<String, Value>, Map<String, Value>) {
    let received = received_at.format(&Rfc3339).unwrap_or_default();
    let mut row = Map::new();
    let mut truncated = Vec::new();
    let (customer_info, customer_info_cut) = customer_info(lead);
    let mut put = |row: &mut Map<String, Value>, name: &str, value: &Option<String>| {
        if let Some(value) = value {
            let (value, was_truncated) = fit_property(value);
            if was_truncated {
                truncated.push(name.to_owned());
            }
            row.insert(name.to_owned(), Value::String(value.into_owned()));
        }
    };

    row.insert(PARTITION_KEY.into(), json!(partition_key));
    row.insert(ROW_KEY.into(), json!(row_key));
    row.insert("LeadId".into(), json!(lead_id));

    // Partner Center's native columns.
    put(&mut row, "LeadSource", &lead.lead_source);
    put(&mut row, "ActionCode", &lead.action_code);
    put(&mut row, "OfferDisplayName", &lead.offer_title);
    put(&mut row, "Description", &lead.description);
    row.insert("CustomerInfo".into(), json!(customer_info));
    row.insert("CreatedTime".into(), json!(received));

    // Split columns.
    let c = &lead.customer;
    put(&mut row, "FirstName", &c.first_name);
    put(&mut row, "LastName", &c.last_name);
    put(&mut row, "Email", &c.email);
    put(&mut row, "Phone", &c.phone);
    put(&mut row, "Country", &c.country);
    put(&mut row, "Company", &c.company);
    put(&mut row, "Title", &c.title);
    put(&mut row, "OfferTitle", &lead.offer_title);
    if let Some(source) = &lead.source {
        put(&mut row, "LeadSourceChannel", &Some(source.channel.clone()));
        put(&mut row, "LeadSourceAction", &Some(source.action.clone()));
        put(
            &mut row,
            "LeadSourceOfferId",
            &Some(source.offer_id.clone()),
        );
    }

    put_datetime(&mut row, RECEIVED_AT, received_at);
    row.insert("IsTestLead".into(), json!(lead.is_test));
    if let Some(origin) = lead.origin.as_column() {
        row.insert(ORIGIN.into(), json!(origin));
    }
    row.insert("Fingerprint".into(), json!(lead.fingerprint.to_string()));
    if let Some(rating) = &lead.rating {
        put_rating(&mut row, rating);
    }
    debug_assert!(
        raw_body_fits(&lead.raw),
        "a raw body that does not fit is refused before"
    );
    for (column, chunk) in RAW_BODY_COLUMNS.iter().zip(split_utf16(&lead.raw)) {
        row.insert((*column).into(), json!(chunk));
    }
    if customer_info_cut {
        truncated.push("CustomerInfo".to_owned());
    }
    if !truncated.is_empty() {
        row.insert("TruncatedColumns".into(), json!(truncated.join(",")));
    }

    let mut marker = Map::from_iter([
        (PARTITION_KEY.to_owned(), json!(partition_key)),
        (
            ROW_KEY.to_owned(),
            json!(keys::marker_row_key(&lead.fingerprint)),
        ),
        ("LeadId".to_owned(), json!(lead_id)),
        ("LeadRowKey".to_owned(), json!(row_key)),
    ]);
    put_datetime(&mut marker, RECEIVED_AT, received_at);
    (row, marker)
}

/// `CustomerInfo` as Partner Center writes it: a JSON string. When it is too
/// long for a property, each value is shortened (and marked) instead of the
/// JSON being cut, so it stays parseable for the readers that expect JSON.
fn customer_info<'a>(lead: &'a Lead) -> (String, bool) {
    let c = &lead.customer;
    let render = |limit: usize| {
        let mut shortened = false;
        let mut fit = |value: &'a Option<String>| {
            let (value, cut) = fit_to(value.as_deref().unwrap_or_default(), limit);
            shortened |= cut;
            value
        };
        let info = CustomerInfo {
            company: fit(&c.company),
            country: fit(&c.country),
            email: fit(&c.email),
            first_name: fit(&c.first_name),
            last_name: fit(&c.last_name),
            phone: fit(&c.phone),
            title: fit(&c.title),
        };
        // Serialising a struct of strings cannot fail.
        (serde_json::to_string(&info).unwrap_or_default(), shortened)
    };
    let mut limit = MAX_PROPERTY_UTF16;
    loop {
        let (json, shortened) = render(limit);
        if json.len() <= MAX_PROPERTY_UTF16
            || json.encode_utf16().count() <= MAX_PROPERTY_UTF16
            || limit < 64
        {
            return (json, shortened);
        }
        limit /= 2;
    }
}

/// Truncates a value that a property cannot hold, marking it. The raw body
/// always keeps the whole value.
fn fit_property(value: &str) -> (Cow<'_, str>, bool) {
    fit_to(value, MAX_PROPERTY_UTF16)
}

/// `value` in at most `limit` UTF-16 units (borrowed when it fits),
/// marked when cut.
fn fit_to(value: &str, limit: usize) -> (Cow<'_, str>, bool) {
    // A UTF-8 byte count is never below the UTF-16 one: most values need
    // no counting.
    if value.len() <= limit || value.encode_utf16().count() <= limit {
        return (Cow::Borrowed(value), false);
    }
    let budget = limit.saturating_sub(TRUNCATION_MARK.encode_utf16().count());
    let mut used = 0;
    let end = value
        .char_indices()
        .find(|(_, c)| {
            used += c.len_utf16();
            used > budget
        })
        .map_or(value.len(), |(i, _)| i);
    (
        Cow::Owned(format!("{}{TRUNCATION_MARK}", &value[..end])),
        true,
    )
}

/// Splits text into pieces of at most `MAX_PROPERTY_UTF16` UTF-16 units,
/// never inside a character.
fn split_utf16(text: &str) -> Vec<&str> {
    if text.len() <= MAX_PROPERTY_UTF16 {
        // Fewer UTF-8 bytes than the limit: fewer UTF-16 units too.
        return vec![text];
    }
    let mut chunks = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, c) in text.char_indices() {
        if used + c.len_utf16() > MAX_PROPERTY_UTF16 {
            chunks.push(&text[start..i]);
            start = i;
            used = 0;
        }
        used += c.len_utf16();
    }
    chunks.push(&text[start..]);
    chunks
}

/// Reassembles the raw body of a stored row.
pub fn raw_body(row: &Map<String, Value>) -> Option<String> {
    let mut raw = String::new();
    for column in RAW_BODY_COLUMNS {
        match row.get(column).and_then(Value::as_str) {
            Some(part) => raw.push_str(part),
            None => break,
        }
    }
    (!raw.is_empty()).then_some(raw)
}

/// A row as exports show it: every stored column, OData metadata
/// (`odata.etag`, `…@odata.type`) left out and the raw body joined back into
/// one `RawBody` column.
pub fn export_columns(mut row: Map<String, Value>) -> Map<String, Value> {
    let raw = raw_body(&row);
    row.retain(|name, _| {
        !name.starts_with("odata.")
            && !name.contains("@odata.")
            && !RAW_BODY_COLUMNS.contains(&name.as_str())
    });
    if let Some(raw) = raw {
        row.insert(RAW_BODY_COLUMNS[0].into(), Value::String(raw));
    }
    row
}

/// Writes `at` as an `Edm.DateTime` property. The crate sends no type
/// annotations, so without this the service would store a plain string.
pub fn put_datetime(row: &mut Map<String, Value>, column: &str, at: OffsetDateTime) {
    row.insert(
        column.to_owned(),
        json!(at.format(&Rfc3339).unwrap_or_default()),
    );
    row.insert(format!("{column}@odata.type"), json!("Edm.DateTime"));
}

/// Reads a property written by [`put_datetime`].
pub fn datetime(row: &Map<String, Value>, column: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(row.get(column)?.as_str()?, &Rfc3339).ok()
}

pub fn received_at(row: &Map<String, Value>) -> Option<OffsetDateTime> {
    datetime(row, RECEIVED_AT)
}

/// The lead a row holds, read back from its raw body.
pub fn lead(row: &Map<String, Value>) -> Option<Lead> {
    let origin = crate::domain::Origin::from_column(row.get(ORIGIN).and_then(Value::as_str));
    let mut lead = Lead::reread(&raw_body(row)?, origin).ok()?;
    // As stored: never re-rated on reading.
    lead.rating = rating(row);
    Some(lead)
}

pub const RATING: &str = "Rating";
const RATING_SCORE: &str = "RatingScore";
const RATING_REASONS: &str = "RatingReasons";
const RATING_RULES: &str = "RatingRules";

/// Writes `rating`'s columns (a level a reader filters on, its score, its
/// reasons as shown, the rules' version).
pub fn put_rating(row: &mut Map<String, Value>, rating: &Rating) {
    row.insert(RATING.into(), json!(rating.level.as_str()));
    row.insert(RATING_SCORE.into(), json!(rating.score));
    row.insert(RATING_REASONS.into(), json!(rating.reasons.join("; ")));
    row.insert(RATING_RULES.into(), json!(rating.rules));
}

/// The rating a stored or exported (JSON Lines) row holds, if it was rated.
pub fn rating(row: &Map<String, Value>) -> Option<Rating> {
    Some(Rating {
        level: Level::parse(row.get(RATING)?.as_str()?)?,
        score: row.get(RATING_SCORE).and_then(Value::as_i64).unwrap_or(0) as i32,
        reasons: row
            .get(RATING_REASONS)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .split("; ")
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
        rules: row.get(RATING_RULES).and_then(Value::as_u64).unwrap_or(0) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn entities(body: &str) -> (Map<String, Value>, Map<String, Value>) {
        let lead = Lead::parse(body.as_bytes()).unwrap();
        lead_entities(
            &lead,
            "2026-11-22",
            "Lrow",
            "id",
            datetime!(2026-11-22 10:00:00.5 UTC),
        )
    }

    #[test]
    fn columns_native_and_split() {
        let (row, marker) = entities(
            r#"{"UserDetails":{"FirstName":"Zoë","Email":"z@f.jp"},"LeadSource":"SPZA-PLT|f.c",
            "ActionCode":"PLT","OfferTitle":"Contoso","Description":"call me"}"#,
        );
        assert_eq!(row["FirstName"], "Zoë");
        assert_eq!(row["OfferTitle"], "Contoso");
        assert_eq!(row["OfferDisplayName"], "Contoso");
        assert_eq!(row["LeadSourceChannel"], "SPZA");
        assert_eq!(row["LeadSourceAction"], "PLT");
        assert_eq!(row["LeadSourceOfferId"], "f.c");
        assert_eq!(row["ReceivedAt"], "2026-11-22T10:00:00.5Z");
        assert_eq!(row["ReceivedAt@odata.type"], "Edm.DateTime");
        assert_eq!(row["IsTestLead"], false);
        assert!(row.get("LastName").is_none());
        let info: Value = serde_json::from_str(row["CustomerInfo"].as_str().unwrap()).unwrap();
        assert_eq!(info["FirstName"], "Zoë");
        assert_eq!(info["LastName"], "");
        assert_eq!(marker["LeadRowKey"], "Lrow");
        assert!(marker["RowKey"].as_str().unwrap().starts_with('D'));
        assert_eq!(
            received_at(&row),
            Some(datetime!(2026-11-22 10:00:00.5 UTC))
        );
    }

    #[test]
    fn long_values_are_truncated_marked_and_kept_whole_in_the_raw_body() {
        let long = "a".repeat(40_000);
        let body = format!(r#"{{"Description":"{long}","OfferTitle":"O"}}"#);
        let (row, _) = entities(&body);
        let description = row["Description"].as_str().unwrap();
        assert!(description.ends_with("…[truncated]"));
        assert!(description.encode_utf16().count() <= MAX_PROPERTY_UTF16);
        assert_eq!(row["TruncatedColumns"], "Description");
        assert_eq!(raw_body(&row).as_deref(), Some(body.as_str()));
        assert!(row.contains_key("RawBody2"));
        for column in RAW_BODY_COLUMNS {
            if let Some(part) = row.get(column) {
                assert!(part.as_str().unwrap().encode_utf16().count() <= MAX_PROPERTY_UTF16);
            }
        }
    }

    #[test]
    fn export_columns_drop_metadata_and_join_the_raw_body() {
        let long = "b".repeat(40_000);
        let body = format!(r#"{{"Description":"{long}","OfferTitle":"O"}}"#);
        let (mut row, _) = entities(&body);
        row.insert("odata.etag".into(), json!("W/\"x\""));
        row.insert("Timestamp".into(), json!("2026-11-22T10:00:01Z"));
        row.insert("Timestamp@odata.type".into(), json!("Edm.DateTime"));
        let columns = export_columns(row);
        assert_eq!(columns["RawBody"], body.as_str());
        assert!(!columns.contains_key("RawBody2"));
        assert_eq!(columns["ReceivedAt"], "2026-11-22T10:00:00.5Z");
        assert_eq!(columns["Timestamp"], "2026-11-22T10:00:01Z");
        assert_eq!(columns["OfferTitle"], "O");
        assert!(columns.keys().all(|k| !k.contains("odata")), "{columns:?}");
    }

    #[test]
    fn surrogate_pairs_are_never_split() {
        let text = "😀".repeat(MAX_PROPERTY_UTF16); // two UTF-16 units each
        let chunks = split_utf16(&text);
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks.concat(), text);
        let (fitted, truncated) = fit_property(&text);
        assert!(truncated);
        assert!(fitted.encode_utf16().count() <= MAX_PROPERTY_UTF16);
    }
}
