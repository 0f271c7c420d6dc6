//! The shape of a lead row: Partner Center's own columns (so readers of the
//! table Partner Center writes keep working), split customer columns, the
//! parsed `LeadSource`, a real `Edm.DateTime` receive time, the test-lead
//! flag, and the raw body verbatim.

use super::keys;
use crate::lead::Lead;
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A string property holds at most 32 K UTF-16 code units (64 KiB).
const MAX_PROPERTY_UTF16: usize = 32_000;
const TRUNCATION_MARK: &str = " …[truncated]";
/// The raw body (≤ 64 KiB of UTF-8) spread over up to three properties.
pub const RAW_BODY_COLUMNS: [&str; 3] = ["RawBody", "RawBody2", "RawBody3"];
pub const RECEIVED_AT: &str = "ReceivedAt";

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
    let mut put = |row: &mut Map<String, Value>, name: &str, value: &Option<String>| {
        if let Some(value) = value {
            let (value, was_truncated) = fit_property(value);
            if was_truncated {
                truncated.push(name.to_owned());
            }
            row.insert(name.to_owned(), Value::String(value));
        }
    };

    row.insert("PartitionKey".into(), json!(partition_key));
    row.insert("RowKey".into(), json!(row_key));
    row.insert("LeadId".into(), json!(lead_id));

    // Partner Center's native columns.
    put(&mut row, "LeadSource", &lead.lead_source);
    put(&mut row, "ActionCode", &lead.action_code);
    put(&mut row, "OfferDisplayName", &lead.offer_title);
    put(&mut row, "Description", &lead.description);
    put(&mut row, "CustomerInfo", &Some(customer_info(lead)));
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

    row.insert(RECEIVED_AT.into(), json!(received));
    row.insert(format!("{RECEIVED_AT}@odata.type"), json!("Edm.DateTime"));
    row.insert("IsTestLead".into(), json!(lead.is_test));
    row.insert("Fingerprint".into(), json!(lead.fingerprint.to_string()));
    for (column, chunk) in RAW_BODY_COLUMNS.iter().zip(split_utf16(&lead.raw)) {
        row.insert((*column).into(), json!(chunk));
    }
    if !truncated.is_empty() {
        row.insert("TruncatedColumns".into(), json!(truncated.join(",")));
    }

    let marker = Map::from_iter([
        ("PartitionKey".to_owned(), json!(partition_key)),
        (
            "RowKey".to_owned(),
            json!(keys::marker_row_key(&lead.fingerprint)),
        ),
        ("LeadId".to_owned(), json!(lead_id)),
        ("LeadRowKey".to_owned(), json!(row_key)),
        (RECEIVED_AT.to_owned(), json!(received)),
        (format!("{RECEIVED_AT}@odata.type"), json!("Edm.DateTime")),
    ]);
    (row, marker)
}

/// `CustomerInfo` as Partner Center writes it: a JSON string.
fn customer_info(lead: &Lead) -> String {
    let c = &lead.customer;
    let field = |v: &Option<String>| v.clone().unwrap_or_default();
    json!({
        "FirstName": field(&c.first_name),
        "LastName": field(&c.last_name),
        "Email": field(&c.email),
        "Phone": field(&c.phone),
        "Country": field(&c.country),
        "Company": field(&c.company),
        "Title": field(&c.title),
    })
    .to_string()
}

/// Truncates a value that a property cannot hold, marking it. The raw body
/// always keeps the whole value.
fn fit_property(value: &str) -> (String, bool) {
    if value.encode_utf16().count() <= MAX_PROPERTY_UTF16 {
        return (value.to_owned(), false);
    }
    let budget = MAX_PROPERTY_UTF16 - TRUNCATION_MARK.encode_utf16().count();
    let mut used = 0;
    let end = value
        .char_indices()
        .find(|(_, c)| {
            used += c.len_utf16();
            used > budget
        })
        .map_or(value.len(), |(i, _)| i);
    (format!("{}{TRUNCATION_MARK}", &value[..end]), true)
}

/// Splits text into pieces of at most `MAX_PROPERTY_UTF16` UTF-16 units,
/// never inside a character.
fn split_utf16(text: &str) -> Vec<&str> {
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

pub fn received_at(row: &Map<String, Value>) -> Option<OffsetDateTime> {
    let text = row.get(RECEIVED_AT)?.as_str()?;
    OffsetDateTime::parse(text, &Rfc3339).ok()
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
