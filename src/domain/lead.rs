//! The lead: Partner Center's POST body parsed into a [`Lead`].
//!
//! Partner Center documents a JSON object whose every field is an optional
//! string, but real deliveries differ in key casing (`UserDetails` vs
//! `userDetails`), send blanks, and may gain fields at any time. Parsing is
//! therefore lenient about shape and strict about what it promises: a `Lead`
//! always comes from a non-empty JSON object, carries the verbatim body, and
//! has a content fingerprint used to recognise duplicate deliveries.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::fmt;

/// Largest body accepted, in bytes. Partner Center's leads are well under 1 KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Prefix Partner Center puts in every field of its validation ("test") lead.
const TEST_LEAD_MARKER: &str = "MSFT_TEST";

/// Why a body is not a lead. Messages are shown to the caller: they never
/// echo the body back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LeadError {
    #[error("body is empty")]
    Empty,
    #[error("body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("body is not valid UTF-8")]
    NotUtf8,
    #[error("body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("body must be a JSON object, not {0}")]
    NotAnObject(&'static str),
    #[error("body is an empty JSON object")]
    EmptyObject,
}

/// The customer who asked to be contacted (`UserDetails`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Customer {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub country: Option<String>,
    pub company: Option<String>,
    pub title: Option<String>,
}

impl Customer {
    /// "First Last", or whichever part is known.
    pub fn full_name(&self) -> Option<String> {
        full_name(self.first_name.as_deref(), self.last_name.as_deref())
    }
}

/// "First Last" from its parts, or whichever part is known: how every view
/// of a lead (digest, list, notifications) names the customer.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    match (first, last) {
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (None, None) => None,
    }
}

/// `LeadSource` in its documented `Source-Action|Offer` shape, e.g.
/// `SPZA-PLT|publisher.offer`. A bare source such as `AzureMarketplace` has
/// no parsed form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSource {
    /// Where the lead came from: `AzureMarketplace`, `AzurePortal`, `SPZA` (AppSource), `TestDrive`, ...
    pub channel: String,
    /// What the customer did: `INS`, `PLT`, `DNC`, `Create`, `StartTestDrive`, ...
    pub action: String,
    /// `publisherid.offerid`.
    pub offer_id: String,
}

impl LeadSource {
    /// Parses `Source-Action|Offer`; `None` for any other shape.
    pub fn parse(raw: &str) -> Option<Self> {
        let (source_action, offer_id) = raw.trim().split_once('|')?;
        let (channel, action) = source_action.split_once('-')?;
        let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        Some(Self {
            channel: non_empty(channel)?,
            action: non_empty(action)?,
            offer_id: non_empty(offer_id)?,
        })
    }
}

/// Identifies a lead's content: SHA-256 over the body's canonical JSON (keys
/// sorted, no insignificant whitespace), so a re-sent lead has the same
/// fingerprint however it is formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    fn of(value: &Value) -> Self {
        // serde_json's default `Map` is a BTreeMap: serialising sorts keys.
        let canonical = value.to_string();
        Self(Sha256::digest(canonical.as_bytes()).into())
    }

    /// The first `n` bytes as lowercase hex (n ≤ 32).
    pub fn short_hex(&self, n: usize) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = &self.0[..n.min(32)];
        let mut hex = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        hex
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short_hex(32))
    }
}

/// A lead as Partner Center sent it, normalised: values trimmed, blanks
/// absent, non-string scalars turned into text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub customer: Customer,
    /// `LeadSource` verbatim (trimmed).
    pub lead_source: Option<String>,
    /// `LeadSource` parsed, when it has the documented shape.
    pub source: Option<LeadSource>,
    pub action_code: Option<String>,
    pub offer_title: Option<String>,
    pub description: Option<String>,
    /// Partner Center's validation lead (the "Validate" button, offer publish).
    pub is_test: bool,
    /// The body exactly as received.
    pub raw: String,
    pub fingerprint: Fingerprint,
    /// What `raw` is: a posted body, or a row of Partner Center's table.
    pub origin: Origin,
    /// How good it looks ([`super::rating`]): given when it is stored,
    /// read back as stored (`None` for a lead stored before ratings).
    pub rating: Option<super::rating::Rating>,
}

/// Where a lead came from, which says how its raw body reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Origin {
    /// Posted to LeadIngest: `raw` is the request body.
    #[default]
    Posted,
    /// Imported from Partner Center's "Azure Table" destination: `raw` is
    /// the table's entity, as JSON.
    PartnerCenterTable,
}

impl Origin {
    /// As a stored column holds it (`None` for a posted lead).
    pub fn as_column(self) -> Option<&'static str> {
        match self {
            Self::Posted => None,
            Self::PartnerCenterTable => Some("PartnerCenterTable"),
        }
    }

    pub fn from_column(value: Option<&str>) -> Self {
        match value {
            Some("PartnerCenterTable") => Self::PartnerCenterTable,
            _ => Self::Posted,
        }
    }
}

/// What a Partner Center action code means, in the words a sales person
/// uses: `PLT` → "asked to be contacted". An unknown code is itself.
pub fn action_in_words(code: Option<&str>) -> std::borrow::Cow<'_, str> {
    let Some(code) = code else {
        return "".into();
    };
    match code.to_ascii_uppercase().as_str() {
        "PLT" => "asked to be contacted".into(),
        "INS" => "installed".into(),
        "DNC" => "do not contact".into(),
        "CREATE" => "bought in the Azure portal".into(),
        "STARTTESTDRIVE" => "started a test drive".into(),
        _ => code.into(),
    }
}

impl Lead {
    /// What the customer did: the action of `LeadSource` (`INS`, `PLT`,
    /// `DNC`, `Create`, `StartTestDrive`…), else `ActionCode`.
    pub fn action(&self) -> Option<&str> {
        self.source
            .as_ref()
            .map(|s| s.action.as_str())
            .or(self.action_code.as_deref())
    }

    /// "Do not contact": the customer asked another partner, cross-listed
    /// with this offer, to contact them; this publisher is told as a
    /// courtesy.
    pub fn is_do_not_contact(&self) -> bool {
        self.action().is_some_and(|a| a.eq_ignore_ascii_case("DNC"))
    }

    /// The offer's id (`publisher.offer`) from `LeadSource`.
    pub fn offer_id(&self) -> Option<&str> {
        self.source.as_ref().map(|s| s.offer_id.as_str())
    }

    /// Parses a request body. Any content type is accepted: the body is
    /// always read as JSON.
    pub fn parse(body: &[u8]) -> Result<Self, LeadError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(LeadError::TooLarge);
        }
        Self::parse_any_size(body)
    }

    /// As [`Lead::parse`], without the limit on a posted body: for a row of
    /// Partner Center's own table, whose columns hold up to 32 K characters
    /// each (so its body, as it would have been posted, can pass 64 KiB).
    pub(crate) fn parse_any_size(body: &[u8]) -> Result<Self, LeadError> {
        let text = std::str::from_utf8(body).map_err(|_| LeadError::NotUtf8)?;
        // Some senders prefix UTF-8 with a byte-order mark; JSON has no use
        // for it, and refusing it would lose the lead.
        let json = text.strip_prefix('\u{feff}').unwrap_or(text);
        if json.trim().is_empty() {
            return Err(LeadError::Empty);
        }
        // serde_json stops at 128 levels of nesting, so hostile depth is an
        // error here rather than a stack overflow.
        let value: Value = match serde_json::from_str(json) {
            Ok(value) => value,
            // A lone surrogate escape or a number beyond a double: recover
            // what the sender meant rather than lose the lead.
            Err(error) => super::lenient_json::repair(json)
                .and_then(|repaired| serde_json::from_str(&repaired).ok())
                .ok_or_else(|| LeadError::InvalidJson(error.to_string()))?,
        };
        let object = match &value {
            Value::Object(object) if object.is_empty() => return Err(LeadError::EmptyObject),
            Value::Object(object) => object,
            other => return Err(LeadError::NotAnObject(json_kind(other))),
        };

        let user = field(object, "UserDetails").and_then(Value::as_object);
        let user_text = |name: &str| user.and_then(|u| text_field(u, name));
        let customer = Customer {
            first_name: user_text("FirstName"),
            last_name: user_text("LastName"),
            email: user_text("Email"),
            phone: user_text("Phone"),
            country: user_text("Country"),
            company: user_text("Company"),
            title: user_text("Title"),
        };
        let lead_source = text_field(object, "LeadSource");
        let is_test = is_test_lead(&customer);
        Ok(Self {
            source: lead_source.as_deref().and_then(LeadSource::parse),
            lead_source,
            action_code: text_field(object, "ActionCode"),
            offer_title: text_field(object, "OfferTitle"),
            description: text_field(object, "Description"),
            customer,
            is_test,
            raw: text.to_owned(),
            fingerprint: Fingerprint::of(&value),
            origin: Origin::Posted,
            rating: None,
        })
    }

    /// The lead with a rating: the one it carries (rated when it arrived,
    /// kept through export and import), else one under the current rules.
    pub fn rated(mut self) -> Self {
        if self.rating.is_none() {
            self.rating = Some(super::rating::rate(&self));
        }
        self
    }

    /// Its rating's level, if it has one.
    pub fn level(&self) -> Option<super::rating::Level> {
        self.rating.as_ref().map(|r| r.level)
    }
}

/// Looks a key up case-insensitively. When several keys match (`Email` and
/// `email`), an exact match wins, then the first non-blank one in key order,
/// so the choice is deterministic.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(exact) = object.get(name) {
        if !is_blank(exact) {
            return Some(exact);
        }
    }
    object
        .iter()
        .filter(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value)
        .find(|value| !is_blank(value))
}

/// Null, blank text and an empty object or array say nothing: a key holding
/// one gives way to another spelling of it that holds something.
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A field as text: strings trimmed, numbers and booleans as written,
/// objects and arrays as compact JSON; blank means absent.
fn text_field(object: &Map<String, Value>, name: &str) -> Option<String> {
    let text = match field(object, name)? {
        Value::Null => return None,
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    };
    (!text.is_empty()).then_some(text)
}

/// What `value` is, as an error message says it: `a number`, `an array`.
pub(super) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Partner Center's test lead has `MSFT_TEST_<digits>` in its name, company
/// and title fields and an `MSFT_TEST_...@test.com` email. Any one of them is
/// enough: no customer is called MSFT_TEST.
fn is_test_lead(customer: &Customer) -> bool {
    [
        &customer.first_name,
        &customer.last_name,
        &customer.email,
        &customer.company,
        &customer.title,
    ]
    .into_iter()
    .flatten()
    .any(|value| {
        value
            .get(..TEST_LEAD_MARKER.len())
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(TEST_LEAD_MARKER))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Lead {
        Lead::parse(body.as_bytes()).expect("should parse")
    }

    #[test]
    fn documented_payload_is_parsed() {
        let lead = parse(
            r#"{"UserDetails":{"FirstName":"Some","LastName":"One","Email":"someone@contoso.com",
            "Phone":"16175555555","Country":"USA","Company":"Contoso","Title":"Esquire"},
            "LeadSource":"AzureMarketplace","ActionCode":"INS","OfferTitle":"Test Microsoft",
            "Description":"Test run through Power Automate"}"#,
        );
        assert_eq!(lead.customer.first_name.as_deref(), Some("Some"));
        assert_eq!(lead.customer.title.as_deref(), Some("Esquire"));
        assert_eq!(lead.customer.full_name().as_deref(), Some("Some One"));
        assert_eq!(lead.lead_source.as_deref(), Some("AzureMarketplace"));
        assert_eq!(lead.source, None, "a bare source has no parsed form");
        assert_eq!(lead.action_code.as_deref(), Some("INS"));
        assert_eq!(lead.offer_title.as_deref(), Some("Test Microsoft"));
        assert!(!lead.is_test);
    }

    #[test]
    fn keys_match_whatever_their_casing() {
        let lead = parse(
            r#"{"userDetails":{"firstname":"A","LASTNAME":"B","eMail":"a@b.c"},
            "leadsource":"X","ACTIONCODE":"PLT","offerTitle":"O","description":"D"}"#,
        );
        assert_eq!(lead.customer.first_name.as_deref(), Some("A"));
        assert_eq!(lead.customer.last_name.as_deref(), Some("B"));
        assert_eq!(lead.customer.email.as_deref(), Some("a@b.c"));
        assert_eq!(lead.lead_source.as_deref(), Some("X"));
        assert_eq!(lead.action_code.as_deref(), Some("PLT"));
        assert_eq!(lead.description.as_deref(), Some("D"));
    }

    #[test]
    fn keys_differing_only_by_case_prefer_exact_then_first_non_blank() {
        let lead = parse(r#"{"offertitle":"lower","OfferTitle":"exact"}"#);
        assert_eq!(lead.offer_title.as_deref(), Some("exact"));
        let lead = parse(r#"{"OfferTitle":" ","offerTitle":"","OFFERTITLE":"upper"}"#);
        assert_eq!(lead.offer_title.as_deref(), Some("upper"));
    }

    #[test]
    fn blanks_are_absent_and_values_trimmed() {
        let lead = parse(
            r#"{"UserDetails":{"FirstName":"","LastName":"  ","Email":" buyer@x.example "},
            "Description":" ","OfferTitle":null}"#,
        );
        assert_eq!(lead.customer.first_name, None);
        assert_eq!(lead.customer.last_name, None);
        assert_eq!(lead.customer.full_name(), None);
        assert_eq!(lead.customer.email.as_deref(), Some("buyer@x.example"));
        assert_eq!(lead.description, None);
        assert_eq!(lead.offer_title, None);
    }

    #[test]
    fn an_empty_object_gives_way_to_another_spelling() {
        let lead = parse(r#"{"UserDetails":{},"userDetails":{"FirstName":"Zoë"}}"#);
        assert_eq!(lead.customer.first_name.as_deref(), Some("Zoë"));
    }

    #[test]
    fn recoverable_json_is_accepted_and_kept_verbatim() {
        let body = r#"{"UserDetails":{"FirstName":"Zo\ud800ë"},"OfferTitle":"O","Seats":1e400}"#;
        let lead = parse(body);
        assert_eq!(lead.customer.first_name.as_deref(), Some("Zo\u{FFFD}ë"));
        assert_eq!(lead.raw, body, "the raw body stays as received");
        assert!(matches!(
            Lead::parse(br#"{ "offerTitle": "Test" "description": "x" }"#),
            Err(LeadError::InvalidJson(_))
        ));
    }

    #[test]
    fn non_string_values_become_text() {
        let lead = parse(r#"{"UserDetails":{"Phone":16175555555},"Description":{"utm":"x"}}"#);
        assert_eq!(lead.customer.phone.as_deref(), Some("16175555555"));
        assert_eq!(lead.description.as_deref(), Some(r#"{"utm":"x"}"#));
    }

    #[test]
    fn unknown_fields_are_kept_in_the_raw_body() {
        let body = r#"{"OfferTitle":"O","NewField2027":{"x":1}}"#;
        let lead = parse(body);
        assert_eq!(lead.raw, body);
        assert_eq!(lead.offer_title.as_deref(), Some("O"));
    }

    #[test]
    fn lead_source_shapes() {
        let parsed = LeadSource::parse("SPZA-PLT|fabrikam.contoso-analytics").expect("shape");
        assert_eq!(parsed.channel, "SPZA");
        assert_eq!(parsed.action, "PLT");
        assert_eq!(parsed.offer_id, "fabrikam.contoso-analytics");
        let parsed = LeadSource::parse("AzurePortal-Create|northwind.gateway").expect("shape");
        assert_eq!(parsed.action, "Create");
        for bad in [
            "AzureMarketplace",
            "AzureMarketplace-INS",
            "AzureMarketplace|offer",
            "-INS|offer",
            "AzureMarketplace-|offer",
            "AzureMarketplace-INS|",
            "",
        ] {
            assert_eq!(LeadSource::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn partner_center_test_lead_is_recognised() {
        let lead = parse(
            r#"{"userDetails":{"firstName":"MSFT_TEST_636573304831318844",
            "email":"MSFT_TEST_636573304831318844@test.com","phone":"1234567890","country":"US"},
            "leadSource":"AzureMarketplace","actionCode":"INS"}"#,
        );
        assert!(lead.is_test);
        let lead = parse(r#"{"UserDetails":{"Company":"msft_test_1"}}"#);
        assert!(lead.is_test, "marker matches case-insensitively");
        let lead =
            parse(r#"{"UserDetails":{"Company":"Not MSFT_TEST"},"Description":"MSFT_TEST"}"#);
        assert!(
            !lead.is_test,
            "only a leading marker in a customer field counts"
        );
    }

    #[test]
    fn fingerprint_ignores_formatting_but_not_content() {
        let a = parse(r#"{"OfferTitle":"O","ActionCode":"INS"}"#);
        let b = parse("{ \"ActionCode\" : \"INS\",\n \"OfferTitle\": \"O\" }");
        let c = parse(r#"{"OfferTitle":"O","ActionCode":"PLT"}"#);
        assert_eq!(a.fingerprint, b.fingerprint);
        assert_ne!(a.fingerprint, c.fingerprint);
        assert_eq!(a.fingerprint.to_string().len(), 64);
        assert_eq!(a.fingerprint.short_hex(8).len(), 16);
    }

    #[test]
    fn bad_bodies_are_rejected_with_a_reason() {
        let err = |body: &[u8]| Lead::parse(body).expect_err("should be rejected");
        assert_eq!(err(b""), LeadError::Empty);
        assert_eq!(err(b"  \n"), LeadError::Empty);
        assert_eq!(err(b"{}"), LeadError::EmptyObject);
        assert_eq!(err(b"[]"), LeadError::NotAnObject("an array"));
        assert_eq!(err(b"42"), LeadError::NotAnObject("a number"));
        assert_eq!(err(b"\"lead\""), LeadError::NotAnObject("a string"));
        assert_eq!(err(b"null"), LeadError::NotAnObject("null"));
        assert_eq!(err(b"{\"a\":\"\xff\"}"), LeadError::NotUtf8);
        assert!(matches!(err(b"{\"a\":1"), LeadError::InvalidJson(_)));
        assert!(matches!(
            err(br#"{ "offerTitle": "Test" "description": "x" }"#),
            LeadError::InvalidJson(_)
        ));
        assert_eq!(err(&vec![b' '; MAX_BODY_BYTES + 1]), LeadError::TooLarge);
    }

    #[test]
    fn a_byte_order_mark_is_tolerated_and_kept_in_the_raw_body() {
        let body = "\u{feff}{\"OfferTitle\":\"O\"}";
        let lead = parse(body);
        assert_eq!(lead.offer_title.as_deref(), Some("O"));
        assert_eq!(lead.raw, body);
        assert_eq!(lead.fingerprint, parse(r#"{"OfferTitle":"O"}"#).fingerprint);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(matches!(
            Lead::parse(body.as_bytes()),
            Err(LeadError::InvalidJson(_))
        ));
        let body = format!(
            "{{\"a\":{}1{}}}",
            "{\"b\":".repeat(5_000),
            "}".repeat(5_000)
        );
        assert!(matches!(
            Lead::parse(body.as_bytes()),
            Err(LeadError::InvalidJson(_))
        ));
    }
}
