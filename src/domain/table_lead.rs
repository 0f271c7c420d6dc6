//! A lead as Partner Center's own "Azure Table" destination writes it: one
//! entity with string columns `LeadSource`, `ActionCode`,
//! `OfferDisplayName`, `Description`, `CustomerInfo` (a JSON string with
//! the customer's fields) and `CreatedTime`. Read leniently — every field
//! of a lead is optional — into the same [`Lead`] an HTTP lead becomes.
//!
//! The lead is identified exactly as if Partner Center had posted it: its
//! fingerprint is that of the documented POST body built from these
//! columns, so a lead that reached both the table and our endpoint is
//! stored once. What is kept as its raw body is the entity itself, as JSON,
//! so nothing the table held is lost.

use super::lead::json_kind;
use super::{Lead, LeadError, Origin};
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// Why an entity is not a lead we can store.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TableLeadError {
    #[error("CustomerInfo is not a JSON object ({0})")]
    CustomerInfo(String),
    #[error("the entity has none of a lead's columns (LeadSource, CustomerInfo, …)")]
    NoLeadColumns,
    #[error("{0}")]
    Lead(#[from] LeadError),
}

/// A lead read from Partner Center's table, and when Partner Center
/// created it (`CreatedTime`, else the entity's `Timestamp`).
#[derive(Debug)]
pub struct TableLead {
    pub lead: Lead,
    pub created_at: Option<OffsetDateTime>,
}

/// The columns Partner Center writes, with the POST body's names.
const COLUMNS: [(&str, &str); 4] = [
    ("LeadSource", "LeadSource"),
    ("ActionCode", "ActionCode"),
    ("OfferDisplayName", "OfferTitle"),
    ("Description", "Description"),
];
/// The customer's fields inside `CustomerInfo`, as the POST body has them.
const CUSTOMER_FIELDS: [&str; 7] = [
    "FirstName",
    "LastName",
    "Email",
    "Phone",
    "Country",
    "Company",
    "Title",
];

impl TableLead {
    /// Reads one entity (as the Table service returns it: OData metadata
    /// columns are ignored).
    pub fn from_entity(entity: &Map<String, Value>) -> Result<Self, TableLeadError> {
        let text = |name: &str| {
            entity
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| match v {
                    Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        // The POST body as Partner Center would have sent it: values as
        // they are (blanks included), so the fingerprints agree.
        let column = |name: &str| {
            entity
                .iter()
                .find(|(k, v)| k.eq_ignore_ascii_case(name) && (v.is_string() || v.is_number()))
                .map(|(_, v)| v.clone())
        };
        let mut body = Map::new();
        for (name, field) in COLUMNS {
            if let Some(value) = column(name) {
                body.insert(field.to_owned(), value);
            }
        }
        if let Some(info) = text("CustomerInfo") {
            let parsed: Value = serde_json::from_str(&info)
                .map_err(|e| TableLeadError::CustomerInfo(e.to_string()))?;
            let Value::Object(info) = parsed else {
                return Err(TableLeadError::CustomerInfo(format!(
                    "it is {}",
                    json_kind(&parsed)
                )));
            };
            // The documented names, in whatever case the table has them.
            let mut details = Map::new();
            for name in CUSTOMER_FIELDS {
                if let Some((_, value)) = info.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                    details.insert(name.to_owned(), value.clone());
                }
            }
            if !details.is_empty() {
                body.insert("UserDetails".to_owned(), Value::Object(details));
            }
        }
        if body.values().all(is_blank_or_empty) {
            return Err(TableLeadError::NoLeadColumns);
        }
        let mut lead = Lead::parse_any_size(Value::Object(body).to_string().as_bytes())?;
        lead.origin = Origin::PartnerCenterTable;
        lead.raw = Value::Object(
            entity
                .iter()
                .filter(|(k, _)| !k.starts_with("odata.") && !k.contains("@odata."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
        .to_string();
        let created_at = text("CreatedTime")
            .and_then(|t| parse_time(&t))
            .or_else(|| text("Timestamp").and_then(|t| parse_time(&t)));
        Ok(Self { lead, created_at })
    }
}

impl Lead {
    /// A stored lead read back from its raw body and origin.
    pub fn reread(raw: &str, origin: Origin) -> Result<Self, TableLeadError> {
        match origin {
            Origin::Posted => Ok(Self::parse(raw.as_bytes())?),
            Origin::PartnerCenterTable => {
                let entity: Map<String, Value> =
                    serde_json::from_str(raw).map_err(|e| LeadError::InvalidJson(e.to_string()))?;
                Ok(TableLead::from_entity(&entity)?.lead)
            }
        }
    }
}

/// RFC 3339 (`2026-11-22T10:15:00.1234567Z`), or .NET's invariant
/// `MM/dd/yyyy HH:mm:ss` (UTC), which the table has been seen to hold.
fn parse_time(text: &str) -> Option<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(at);
    }
    let us = format_description!(
        "[month padding:none]/[day padding:none]/[year] [hour padding:none]:[minute]:[second]"
    );
    let us_12h = format_description!(
        "[month padding:none]/[day padding:none]/[year] [hour repr:12 padding:none]:[minute]:[second] [period]"
    );
    PrimitiveDateTime::parse(text, &us)
        .or_else(|_| PrimitiveDateTime::parse(text, &us_12h))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

fn is_blank_or_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Object(o) => o.values().all(is_blank_or_empty),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn entity(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const INFO: &str = r#"{"FirstName":"Zoë","LastName":"Nakamura","Email":"zoe@fabrikam.example","Phone":"","Company":"Fabrikam","Country":"Japan","Title":"CTO"}"#;

    #[test]
    fn a_partner_center_row_is_the_lead_it_posted() {
        let row = entity(json!({
            "PartitionKey": "2026-11-22", "RowKey": "a1", "Timestamp": "2026-11-22T10:15:01.5Z",
            "odata.etag": "W/\"x\"",
            "LeadSource": "SPZA-PLT|fabrikam.analytics", "ActionCode": "PLT",
            "OfferDisplayName": "Contoso Analytics", "Description": "Call me",
            "CustomerInfo": INFO, "CreatedTime": "2026-11-22T10:15:00.1234567Z",
        }));
        let read = TableLead::from_entity(&row).unwrap();
        assert_eq!(
            read.created_at,
            Some(datetime!(2026-11-22 10:15:00.1234567 UTC))
        );
        let lead = &read.lead;
        assert_eq!(lead.customer.first_name.as_deref(), Some("Zoë"));
        assert_eq!(lead.customer.phone, None, "blank is absent");
        assert_eq!(lead.offer_title.as_deref(), Some("Contoso Analytics"));
        assert_eq!(lead.offer_id(), Some("fabrikam.analytics"));
        // The same lead, posted: the same fingerprint.
        let posted = Lead::parse(
            format!(
                r#"{{"UserDetails":{INFO},"LeadSource":"SPZA-PLT|fabrikam.analytics",
                "ActionCode":"PLT","OfferTitle":"Contoso Analytics","Description":"Call me"}}"#
            )
            .replace(r#""Phone":"","#, "")
            .as_bytes(),
        )
        .unwrap();
        assert_ne!(lead.fingerprint, posted.fingerprint, "blank Phone dropped");
        let posted = Lead::parse(
            format!(
                r#"{{"UserDetails":{INFO},"LeadSource":"SPZA-PLT|fabrikam.analytics",
                "ActionCode":"PLT","OfferTitle":"Contoso Analytics","Description":"Call me"}}"#
            )
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(lead.fingerprint, posted.fingerprint);
        // The raw body is the entity, metadata left out.
        let raw: Value = serde_json::from_str(&lead.raw).unwrap();
        assert_eq!(raw["CustomerInfo"], INFO);
        assert!(raw.get("odata.etag").is_none());
        // And it reads back as the same lead.
        let again = Lead::reread(&lead.raw, lead.origin).unwrap();
        assert_eq!(&again, lead);
    }

    #[test]
    fn lenient_about_what_is_missing_or_how_time_is_written() {
        let read = TableLead::from_entity(&entity(json!({
            "leadsource": "AzureMarketplace", "CreatedTime": "11/22/2026 10:15:00",
        })))
        .unwrap();
        assert_eq!(read.created_at, Some(datetime!(2026-11-22 10:15 UTC)));
        let read = TableLead::from_entity(&entity(json!({
            "OfferDisplayName": "O", "CreatedTime": "11/22/2026 1:05:09 PM",
            "Timestamp": "2026-11-23T00:00:00Z",
        })))
        .unwrap();
        assert_eq!(read.created_at, Some(datetime!(2026-11-22 13:05:09 UTC)));
        let read = TableLead::from_entity(&entity(json!({
            "OfferDisplayName": "O", "CreatedTime": "yesterday", "Timestamp": "2026-11-23T00:00:00Z",
        })))
        .unwrap();
        assert_eq!(read.created_at, Some(datetime!(2026-11-23 00:00 UTC)));
    }

    #[test]
    fn an_unreadable_row_says_why() {
        let bad = TableLead::from_entity(&entity(json!({
            "LeadSource": "SPZA-PLT|a.b", "CustomerInfo": "{FirstName: Zoë",
        })))
        .unwrap_err();
        assert!(matches!(bad, TableLeadError::CustomerInfo(_)), "{bad}");
        assert!(bad
            .to_string()
            .starts_with("CustomerInfo is not a JSON object"));
        assert_eq!(
            TableLead::from_entity(&entity(json!({"CustomerInfo": "[1]"})))
                .unwrap_err()
                .to_string(),
            "CustomerInfo is not a JSON object (it is an array)"
        );
        assert_eq!(
            TableLead::from_entity(&entity(json!({"PartitionKey": "p", "RowKey": "r"})))
                .unwrap_err(),
            TableLeadError::NoLeadColumns
        );
    }
}
