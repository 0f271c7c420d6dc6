//! For the fuzzer (`fuzz/fuzz_targets/lead.rs`), not an API: builds a lead's
//! row and marker exactly as [`LeadStore::save`](super::LeadStore::save)
//! does, and checks every rule Table storage enforces, stated here
//! independently of `entity`, and that reading the lead back relies on.

use super::{entity, keys, read_lead, LeadId};
use crate::domain::Lead;
use serde_json::Value;

/// Builds the entities for a fixed time and panics on a broken rule;
/// returns the number of properties built.
#[doc(hidden)]
pub fn fuzz_entity(lead: &Lead) -> usize {
    // Table storage's limits, stated here independently of `entity`.
    const STRING_LIMIT_UTF16: usize = 32_000;
    const MAX_PROPERTIES: usize = 255;
    const MAX_ENTITY_BYTES: usize = 1024 * 1024;

    let received_at = time::macros::datetime!(2026-11-22 10:15:00.123456 UTC);
    let partition = keys::partition_key(received_at);
    let row_key = keys::lead_row_key(received_at, &lead.fingerprint);
    let id = LeadId::new(received_at.date(), &lead.fingerprint);
    let (row, marker) = entity::lead_entities(lead, &partition, &row_key, id.as_str(), received_at);

    for entity in [&row, &marker] {
        for key in ["PartitionKey", "RowKey"] {
            let value = entity[key].as_str().expect("keys are strings");
            assert!(
                !value.is_empty()
                    && value
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-')),
                "{key} {value:?} has a character keys should not carry"
            );
        }
        assert!(
            entity.len() <= MAX_PROPERTIES,
            "{} properties",
            entity.len()
        );
        // The service's own size formula, without the `@odata.type` names.
        let mut size = 4;
        for (name, value) in entity {
            size += 8 + 2 * name.encode_utf16().count();
            size += match value {
                Value::String(text) => {
                    let units = text.encode_utf16().count();
                    assert!(
                        units <= STRING_LIMIT_UTF16,
                        "{name} holds {units} UTF-16 units"
                    );
                    4 + 2 * units
                }
                _ => 8,
            };
        }
        assert!(size <= MAX_ENTITY_BYTES, "entity of {size} bytes");
    }
    assert_eq!(
        entity::raw_body(&row).as_deref(),
        Some(lead.raw.as_str()),
        "the raw body must reassemble exactly"
    );
    let read_back = read_lead(&row).expect("the row reads back as a lead");
    assert_eq!(read_back.lead, *lead, "the lead read back differs");
    assert_eq!(read_back.id, id);
    assert_eq!(marker["LeadRowKey"], row["RowKey"]);
    row.len() + marker.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzzer's invariants hold for the largest leads: a body at the
    /// size limit, surrogate pairs across every column boundary, and a
    /// field whose escapes grow when `CustomerInfo` re-encodes it.
    #[test]
    fn fuzz_entity_invariants_hold_at_the_limits() {
        let frame = r#"{"Description":"","OfferTitle":"O"}"#.len();
        let pad = |unit: &str, n: usize| unit.repeat(n);
        let bodies = [
            format!(
                r#"{{"Description":"{}","OfferTitle":"O"}}"#,
                pad("d", crate::domain::MAX_BODY_BYTES - frame)
            ),
            format!(
                r#"{{"Description":"a{}","OfferTitle":"O"}}"#,
                pad("😀", (crate::domain::MAX_BODY_BYTES - frame - 1) / 4)
            ),
            format!(
                r#"{{"UserDetails":{{"FirstName":"{}"}}}}"#,
                pad(r"\u0000", 10_000)
            ),
        ];
        for body in bodies {
            let lead = Lead::parse(body.as_bytes()).expect("a lead at the limit");
            assert!(fuzz_entity(&lead) > 0);
        }
    }
}
