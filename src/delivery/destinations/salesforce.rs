//! Salesforce (`SALESFORCE_URL`): a `Lead` per lead, upserted by an
//! External ID field (`SALESFORCE_EXTERNAL_ID_FIELD`, default
//! `MarketplaceLeadId__c`) whose value is our lead id — a retry or a second
//! instance updates the same record, never makes a second one.
//!
//! Authentication is the OAuth 2.0 client credentials flow of an External
//! Client App (`SALESFORCE_CLIENT_ID`, `SALESFORCE_CLIENT_SECRET`) against
//! the org's My Domain; a token has no stated lifetime, so one answered
//! `401 INVALID_SESSION_ID` is replaced and the write tried once more.
//!
//! Unlike Partner Center's own Web-to-Lead connector, nothing vanishes: a
//! missing `LastName` or `Company` is `[not provided]` (as Web-to-Lead
//! fills them), values are cut to each field's length in UTF-16 units (as
//! Salesforce counts), a country the org's picklist would refuse is sent
//! as its ISO code or kept in the description, duplicate rules that only
//! alert are allowed to save, and every refusal is a dead delivery that
//! says what to change.

use super::crm::{
    client_credentials, country_code, fit_utf16 as fit, granted, note, token_answer, TokenCache,
};
use crate::configuration::{values, ConfigError, ConfigWarning, Scope, Settings};
use crate::delivery::destination::{Batch, Destination, Family};
use crate::delivery::outcome::{Answer, Outcome, Status};
use crate::domain::{DestinationName, EmailAddress, Secret};
use crate::store::StoredLead;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use url::Url;

pub const KIND: &str = "salesforce";
/// Its route settings start with this: `SALESFORCE_OFFERS`.
pub const PREFIX: &str = "SALESFORCE";
/// What it is called in help and lists.
pub const TITLE: &str = "Salesforce";
/// What it does with a lead, in a few words.
pub const ABOUT: &str = "a Lead per lead, upserted by our lead id";
/// Its settings: the first switches it on, the others refine it.
pub const SALESFORCE_URL: &str = "SALESFORCE_URL";
pub const SALESFORCE_CLIENT_ID: &str = "SALESFORCE_CLIENT_ID";
pub const SALESFORCE_CLIENT_SECRET: &str = "SALESFORCE_CLIENT_SECRET";
pub const SALESFORCE_EXTERNAL_ID_FIELD: &str = "SALESFORCE_EXTERNAL_ID_FIELD";
pub const SALESFORCE_LEAD_SOURCE: &str = "SALESFORCE_LEAD_SOURCE";
pub const SALESFORCE_COUNTRY_PICKLISTS: &str = "SALESFORCE_COUNTRY_PICKLISTS";
pub const SALESFORCE_ASSIGNMENT_RULE: &str = "SALESFORCE_ASSIGNMENT_RULE";
pub const SALESFORCE_RATING_VALUES: &str = "SALESFORCE_RATING_VALUES";
pub const SETTINGS: &[&str] = &[
    SALESFORCE_URL,
    SALESFORCE_CLIENT_ID,
    SALESFORCE_CLIENT_SECRET,
    SALESFORCE_EXTERNAL_ID_FIELD,
    SALESFORCE_LEAD_SOURCE,
    SALESFORCE_COUNTRY_PICKLISTS,
    SALESFORCE_ASSIGNMENT_RULE,
    SALESFORCE_RATING_VALUES,
];
const DEFAULT_EXTERNAL_ID_FIELD: &str = "MarketplaceLeadId__c";
/// A current REST API version (v60–v68 in 2026).
pub const API_VERSION: &str = "v62.0";
/// What Web-to-Lead writes into a required field the form left empty.
pub const NOT_PROVIDED: &str = "[not provided]";
/// The org's daily API limit resets over a rolling 24 hours: try hourly.
const LIMIT_RETRY: Duration = Duration::from_secs(3_600);

/// `Lead` field lengths, in UTF-16 code units.
const FIRST_NAME: usize = 40;
const LAST_NAME: usize = 80;
const COMPANY: usize = 255;
const EMAIL: usize = 80;
const PHONE: usize = 40;
const JOB_TITLE: usize = 128;
const COUNTRY: usize = 80;
const DESCRIPTION: usize = 32_000;

pub struct SalesforceDestination {
    name: DestinationName,
    my_domain: Url,
    client_id: String,
    client_secret: Secret,
    external_id_field: String,
    lead_source: Option<String>,
    country_picklists: bool,
    /// `Sforce-Auto-Assign`: `TRUE` (the org's active lead assignment
    /// rule), `FALSE` (the Run As user owns new Leads), or a rule's id.
    assignment: String,
    /// The org's Rating picklist values for hot, warm and cold (`None`:
    /// the rating is not written).
    rating_values: Option<[String; 3]>,
    token: TokenCache<Token>,
}

impl std::fmt::Debug for SalesforceDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SalesforceDestination")
            .field("my_domain", &self.my_domain.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
struct Token {
    access: Secret,
    instance: Url,
}

/// `SALESFORCE_URL`, `SALESFORCE_CLIENT_ID`, `SALESFORCE_CLIENT_SECRET`
/// together; `SALESFORCE_EXTERNAL_ID_FIELD`, `SALESFORCE_LEAD_SOURCE` and
/// `SALESFORCE_COUNTRY_PICKLISTS` optional.
pub fn build(
    scope: Scope<'_>,
    name: DestinationName,
    _: &Settings,
    _: &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError> {
    let required = [
        SALESFORCE_URL,
        SALESFORCE_CLIENT_ID,
        SALESFORCE_CLIENT_SECRET,
    ];
    let found: Vec<Option<String>> = required.iter().map(|s| scope.get(s)).collect();
    if let Some(missing) = required.iter().zip(&found).find(|(_, v)| v.is_none()) {
        return Err(scope.error(
            missing.0,
            "Salesforce needs SALESFORCE_URL, SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET \
             together (an External Client App with the client credentials flow)",
        ));
    }
    let [url, client_id, secret] = [0, 1, 2].map(|i| found[i].clone().unwrap_or_default());
    let my_domain = values::https_url(&scope.name(SALESFORCE_URL), &url)?;
    if matches!(
        my_domain.host_str(),
        Some("login.salesforce.com" | "test.salesforce.com")
    ) {
        return Err(scope.error(
            SALESFORCE_URL,
            "must be the org's My Domain (https://<domain>.my.salesforce.com): \
             login.salesforce.com does not serve the client credentials flow",
        ));
    }
    let external_id_field = match scope.get(SALESFORCE_EXTERNAL_ID_FIELD) {
        None => DEFAULT_EXTERNAL_ID_FIELD.to_owned(),
        Some(field) => {
            let field = field.trim().to_owned();
            let ok = field.ends_with("__c")
                && field.starts_with(|c: char| c.is_ascii_alphabetic())
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(scope.error(
                    SALESFORCE_EXTERNAL_ID_FIELD,
                    "must be a custom field's API name, like MarketplaceLeadId__c",
                ));
            }
            field
        }
    };
    Ok(Box::new(SalesforceDestination {
        name,
        my_domain,
        client_id: values::secret(&scope.name(SALESFORCE_CLIENT_ID), &client_id)?
            .expose()
            .to_owned(),
        client_secret: values::secret(&scope.name(SALESFORCE_CLIENT_SECRET), &secret)?,
        external_id_field,
        lead_source: scope
            .get(SALESFORCE_LEAD_SOURCE)
            .map(|s| s.trim().to_owned()),
        country_picklists: values::boolean(
            &scope.name(SALESFORCE_COUNTRY_PICKLISTS),
            scope.get(SALESFORCE_COUNTRY_PICKLISTS).as_deref(),
            false,
        )?,
        assignment: assignment_rule(scope)?,
        rating_values: rating_values(scope)?,
        token: TokenCache::default(),
    }))
}

/// `SALESFORCE_RATING_VALUES`: the Lead Rating picklist's values for hot,
/// warm and cold, in that order (default `Hot,Warm,Cold`, Salesforce's
/// own); `none` writes no rating.
fn rating_values(scope: Scope<'_>) -> Result<Option<[String; 3]>, ConfigError> {
    let Some(value) = scope.get(SALESFORCE_RATING_VALUES) else {
        return Ok(Some(["Hot", "Warm", "Cold"].map(String::from)));
    };
    if value.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let values: Vec<String> = value.split(',').map(|v| v.trim().to_owned()).collect();
    match <[String; 3]>::try_from(values) {
        Ok(values)
            if values
                .iter()
                .all(|v| !v.is_empty() && v.chars().count() <= 255) =>
        {
            Ok(Some(values))
        }
        _ => Err(scope.error(
            SALESFORCE_RATING_VALUES,
            "must be the Rating picklist's values for hot, warm and cold, e.g. Hot,Warm,Cold \
             (or none)",
        )),
    }
}

/// `SALESFORCE_ASSIGNMENT_RULE`: `true` (the default, as the REST API's
/// own: the org's active lead assignment rule decides the owner), `false`
/// (no rule: the Run As user owns each new Lead), or the 15/18-character id
/// of an AssignmentRule (`01Q…`).
fn assignment_rule(scope: Scope<'_>) -> Result<String, ConfigError> {
    let Some(value) = scope.get(SALESFORCE_ASSIGNMENT_RULE) else {
        return Ok("TRUE".to_owned());
    };
    let value = value.trim();
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok("TRUE".to_owned()),
        "false" | "0" | "no" => Ok("FALSE".to_owned()),
        _ if value.starts_with("01Q")
            && matches!(value.len(), 15 | 18)
            && value.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Ok(value.to_owned())
        }
        _ => Err(scope.error(
            SALESFORCE_ASSIGNMENT_RULE,
            "must be true, false or an AssignmentRule id (01Q…)",
        )),
    }
}

/// The `Lead`'s fields (API names), each cut to its length.
pub fn lead_fields(
    stored: &StoredLead,
    lead_source: Option<&str>,
    country_picklists: bool,
    do_not_contact: bool,
) -> Map<String, Value> {
    let lead = &stored.lead;
    let c = &lead.customer;
    let mut fields = Map::new();
    let mut put = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            fields.insert(name.to_owned(), json!(value));
        }
    };
    let mut extra = Vec::new();
    put("FirstName", fit(c.first_name.as_deref(), FIRST_NAME));
    put(
        "LastName",
        fit(c.last_name.as_deref(), LAST_NAME).or(Some(NOT_PROVIDED.to_owned())),
    );
    put(
        "Company",
        fit(c.company.as_deref(), COMPANY).or(Some(NOT_PROVIDED.to_owned())),
    );
    // Salesforce refuses a malformed address, or one longer than the field:
    // kept in the description instead.
    match c.email.as_deref() {
        Some(email)
            if EmailAddress::parse(email).is_ok() && email.encode_utf16().count() <= EMAIL =>
        {
            put("Email", Some(email.to_owned()))
        }
        Some(email) => extra.push(format!("Email as given: {email}")),
        None => {}
    }
    put("Phone", fit(c.phone.as_deref(), PHONE));
    put("Title", fit(c.title.as_deref(), JOB_TITLE));
    if let Some(country) = c.country.as_deref() {
        if country_picklists {
            match country_code(country) {
                Some(code) => put("CountryCode", Some(code.to_owned())),
                None => extra.push(format!(
                    "Country as given: {country} (not an ISO 3166 country, so left out of the \
                     picklist)"
                )),
            }
        } else {
            put("Country", fit(Some(country), COUNTRY));
        }
    }
    if let Some(source) = lead_source {
        put("LeadSource", Some(source.to_owned()));
    }
    if do_not_contact {
        fields.insert("HasOptedOutOfEmail".into(), json!(true));
        fields.insert("DoNotCall".into(), json!(true));
    }
    let mut description = note(stored);
    if do_not_contact {
        description.push_str(
            "\nDO NOT CONTACT: the customer asked a partner whose offer is cross-listed with \
             yours to contact them, not you.",
        );
    }
    for line in extra {
        description.push('\n');
        description.push_str(&line);
    }
    fields.insert(
        "Description".into(),
        json!(fit(Some(&description), DESCRIPTION)),
    );
    fields
}

/// Salesforce's error body: `[{"message","errorCode","fields"}]`.
#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    message: String,
    #[serde(rename = "errorCode", default)]
    error_code: String,
    #[serde(default)]
    fields: Vec<String>,
}

fn api_errors(answer: &Answer) -> Vec<ApiError> {
    serde_json::from_slice(&answer.body).unwrap_or_default()
}

/// What to change, for an error that writing again will not fix.
fn advice(error: &ApiError, external_id_field: &str) -> String {
    let fields = if error.fields.is_empty() {
        String::new()
    } else {
        format!(" ({})", error.fields.join(", "))
    };
    let what = match error.error_code.as_str() {
        "DUPLICATES_DETECTED" => {
            "a duplicate rule blocked the Lead: in Setup > Duplicate Rules, set the Lead rule's \
             action on create and edit to Allow (with an alert or report if wanted)"
                .to_owned()
        }
        "REQUIRED_FIELD_MISSING" => format!(
            "the org requires a field this service does not fill{fields}: make it optional or \
             give it a default value for the API"
        ),
        "FIELD_INTEGRITY_EXCEPTION" if error.fields.iter().any(|f| f.starts_with("Country")) => {
            "the org has State and Country picklists: set SALESFORCE_COUNTRY_PICKLISTS=true"
                .to_owned()
        }
        "INVALID_FIELD" | "NOT_FOUND" => format!(
            "a field is missing or not writable for the Run As user{fields}: create the External \
             ID field {external_id_field} on Lead (README: Salesforce) and check its field-level \
             security"
        ),
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" if error.fields.iter().any(|f| f == "Rating") => {
            "the Lead Rating picklist has other values: set SALESFORCE_RATING_VALUES to its \
             values for hot, warm and cold (or none)"
                .to_owned()
        }
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" => format!(
            "a restricted picklist refused a value{fields}: add it to the picklist, or change \
             SALESFORCE_LEAD_SOURCE"
        ),
        "STRING_TOO_LONG" => format!("a value is too long for its field{fields}"),
        _ => format!("Salesforce refused the Lead{fields}"),
    };
    format!("{}: {what} — {}", error.error_code, error.message)
}

impl SalesforceDestination {
    /// A new token (Salesforce states no lifetime): `Err` is the outcome
    /// to record.
    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        now: time::OffsetDateTime,
    ) -> Result<(Token, Option<time::OffsetDateTime>), Outcome> {
        let url = format!(
            "{}/services/oauth2/token",
            self.my_domain.as_str().trim_end_matches('/')
        );
        let request = http
            .post(url)
            .form(&client_credentials(&self.client_id, &self.client_secret));
        let answer = token_answer(request, now, "SALESFORCE_URL").await?;
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            instance_url: String,
        }
        #[derive(Deserialize, Default)]
        struct Refused {
            #[serde(default)]
            error: String,
            #[serde(default)]
            error_description: String,
        }
        if answer.status.is_success() {
            let granted: Granted = granted(&answer, "Salesforce")?;
            let instance = Url::parse(&granted.instance_url)
                .ok()
                .filter(|u| {
                    u.scheme() == "https" || matches!(u.host_str(), Some("127.0.0.1" | "localhost"))
                })
                .ok_or_else(|| {
                    Outcome::dead(
                        Status::NoToken,
                        "Salesforce's token names no https instance",
                    )
                })?;
            let token = Token {
                access: Secret::new(granted.access_token),
                instance,
            };
            return Ok((token, None));
        }
        if answer.status.is_server_error() || answer.status.as_u16() == 429 {
            return Err(Outcome::retry(
                Status::NoToken,
                format!(
                    "Salesforce's token endpoint answered HTTP {}",
                    answer.status.as_u16()
                ),
            ));
        }
        let refused: Refused = serde_json::from_slice(&answer.body).unwrap_or_default();
        let hint = match (refused.error.as_str(), refused.error_description.as_str()) {
            (_, d) if d.contains("client credentials") => {
                "enable the Client Credentials Flow on the External Client App and set its Run As \
                 user (README: Salesforce)"
            }
            ("invalid_client_id" | "invalid_client", _) => {
                "Salesforce refused SALESFORCE_CLIENT_ID or SALESFORCE_CLIENT_SECRET (the \
                 External Client App's consumer key and secret)"
            }
            (_, d) if d.contains("domain") => {
                "SALESFORCE_URL must be the org's My Domain, https://<domain>.my.salesforce.com"
            }
            _ => {
                "Salesforce refused the client credentials: check SALESFORCE_URL, \
                  SALESFORCE_CLIENT_ID and SALESFORCE_CLIENT_SECRET"
            }
        };
        Err(Outcome::dead(
            Status::TokenRefused,
            format!("{hint} — {}: {}", refused.error, refused.error_description),
        ))
    }

    async fn write(&self, batch: Batch<'_>) -> Outcome {
        let lead = batch.lead();
        let mut fields = lead_fields(
            lead,
            self.lead_source.as_deref(),
            self.country_picklists,
            lead.lead.is_do_not_contact(),
        );
        if let (Some(values), Some(level)) = (&self.rating_values, lead.lead.level()) {
            let value = match level {
                crate::domain::Level::Hot => &values[0],
                crate::domain::Level::Warm => &values[1],
                crate::domain::Level::Cold => &values[2],
            };
            fields.insert("Rating".into(), serde_json::json!(value));
        }
        for attempt in 0..2 {
            let fetch = || self.fetch_token(batch.http, batch.now);
            let token = match self.token.get(batch.now, fetch).await {
                Ok(token) => token,
                Err(outcome) => return outcome,
            };
            let mut url = token.instance.clone();
            match url.path_segments_mut() {
                Ok(mut path) => {
                    path.pop_if_empty().extend([
                        "services",
                        "data",
                        API_VERSION,
                        "sobjects",
                        "Lead",
                        &self.external_id_field,
                        lead.id.as_str(),
                    ]);
                }
                Err(()) => return Outcome::dead(Status::NotSent, "the instance URL has no path"),
            }
            let sent = batch
                .http
                .patch(url)
                .bearer_auth(token.access.expose())
                .header("Accept", "application/json")
                // Duplicate rules that only alert must not block the write.
                .header("Sforce-Duplicate-Rule-Header", "allowSave=true")
                // Said, not left to the default: who owns the Lead.
                .header("Sforce-Auto-Assign", &self.assignment)
                .json(&fields)
                .send()
                .await;
            let answer = match sent {
                Err(e) => return Outcome::unanswered(&e),
                Ok(response) => Answer::read_whole(response, batch.now).await,
            };
            let errors = api_errors(&answer);
            let code = |c: &str| errors.iter().any(|e| e.error_code == c);
            return match answer.status.as_u16() {
                200 | 201 | 204 => Outcome::Delivered {
                    status: Status::Http(answer.status.as_u16()),
                },
                300 => Outcome::dead(
                    Status::Http(300),
                    format!(
                        "several Leads have {} = {}: mark the field Unique (and External ID) \
                         so one lead is one record",
                        self.external_id_field, lead.id
                    ),
                ),
                401 if attempt == 0 => {
                    // INVALID_SESSION_ID: the token ran out. Once more, new.
                    self.token.forget().await;
                    continue;
                }
                401 => answer.refused(
                    "Salesforce refused a fresh token: check the Run As user and the External \
                     Client App's OAuth scopes (api)",
                ),
                403 if code("REQUEST_LIMIT_EXCEEDED") => Outcome::Retry {
                    status: Status::Http(403),
                    error: "the org's daily API request limit is reached; trying again hourly"
                        .into(),
                    after: Some(LIMIT_RETRY),
                    maybe_done: false,
                },
                403 => answer.refused(
                    "the Run As user may not create Leads through the API: give it a profile or \
                     permission set with API Enabled and Create/Edit on Lead",
                ),
                400 | 404 if !errors.is_empty() => Outcome::dead(
                    Status::Http(answer.status.as_u16()),
                    errors
                        .iter()
                        .map(|e| advice(e, &self.external_id_field))
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
                _ => answer.outcome(),
            };
        }
        Outcome::retry(Status::NoToken, "no token Salesforce would take")
    }
}

impl Destination for SalesforceDestination {
    fn name(&self) -> &DestinationName {
        &self.name
    }

    fn family(&self) -> Family {
        Family::Crm {
            writes_do_not_contact: true,
        }
    }

    /// The client id too: services quote it back when they refuse it
    /// ("No client with requested id: …"), and it names the integration.
    fn secrets(&self) -> Vec<Secret> {
        vec![self.client_secret.clone(), Secret::new(&self.client_id)]
    }

    fn deliver<'a>(&'a self, batch: Batch<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(self.write(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::stored;

    fn built(pairs: &[(&str, &str)]) -> Result<Vec<String>, ConfigError> {
        crate::delivery::destinations::testing::built(super::KIND, pairs)
    }

    #[test]
    fn countries_as_customers_write_them() {
        for (text, code) in [
            ("USA", Some("US")),
            ("United States", Some("US")),
            ("Japan", Some("JP")),
            ("jp", Some("JP")),
            ("United Kingdom", Some("GB")),
            ("U.S.A.", Some("US")),
            ("Germany", Some("DE")),
            // Not English: kept in the description rather than guessed.
            ("Deutschland", None),
            ("Atlantis", None),
            ("", None),
        ] {
            assert_eq!(country_code(text), code, "{text}");
        }
    }

    #[test]
    fn required_fields_are_filled_as_web_to_lead_does_and_lengths_kept() {
        let sparse = lead_fields(&stored(r#"{"OfferTitle":"O"}"#), None, false, false);
        assert_eq!(sparse["LastName"], NOT_PROVIDED);
        assert_eq!(sparse["Company"], NOT_PROVIDED);
        assert!(sparse.get("Email").is_none() && sparse.get("LeadSource").is_none());
        let long = "😀".repeat(100);
        let full = lead_fields(
            &stored(&format!(
                r#"{{"UserDetails":{{"FirstName":"{long}","LastName":"Tanaka","Company":"Fabrikam",
                "Email":"not an address","Country":"USA","Phone":"+1 425"}},"Description":"Call me"}}"#
            )),
            Some("Microsoft Marketplace"),
            false,
            false,
        );
        assert!(full["FirstName"].as_str().unwrap().encode_utf16().count() <= FIRST_NAME);
        assert_eq!(full["Country"], "USA");
        assert_eq!(full["LeadSource"], "Microsoft Marketplace");
        assert!(
            full.get("Email").is_none(),
            "a malformed address is not sent"
        );
        let description = full["Description"].as_str().unwrap();
        assert!(
            description.contains("Email as given: not an address"),
            "{description}"
        );
        assert!(description.contains("Marketplace lead id: 20261122-0011223344556677"));
    }

    #[test]
    fn with_country_picklists_the_code_is_sent_or_the_country_kept_in_the_note() {
        let japan = lead_fields(
            &stored(r#"{"UserDetails":{"Country":"Japan"}}"#),
            None,
            true,
            false,
        );
        assert_eq!(japan["CountryCode"], "JP");
        assert!(japan.get("Country").is_none());
        let unknown = lead_fields(
            &stored(r#"{"UserDetails":{"Country":"Atlantis"}}"#),
            None,
            true,
            false,
        );
        assert!(unknown.get("CountryCode").is_none() && unknown.get("Country").is_none());
        assert!(unknown["Description"]
            .as_str()
            .unwrap()
            .contains("Atlantis"));
    }

    #[test]
    fn do_not_contact_sets_the_opt_outs() {
        let dnc = lead_fields(
            &stored(r#"{"LeadSource":"SPZA-DNC|a.b"}"#),
            None,
            false,
            true,
        );
        assert_eq!(dnc["HasOptedOutOfEmail"], true);
        assert_eq!(dnc["DoNotCall"], true);
        assert!(dnc["Description"]
            .as_str()
            .unwrap()
            .contains("DO NOT CONTACT"));
    }

    #[test]
    fn errors_say_what_to_change() {
        let blocked = ApiError {
            message: "Use one of these records?".into(),
            error_code: "DUPLICATES_DETECTED".into(),
            fields: vec![],
        };
        assert!(advice(&blocked, "X__c").contains("Duplicate Rules"));
        let picklist = ApiError {
            message: "bad value for restricted picklist field: Japan".into(),
            error_code: "FIELD_INTEGRITY_EXCEPTION".into(),
            fields: vec!["Country".into()],
        };
        assert!(advice(&picklist, "X__c").contains("SALESFORCE_COUNTRY_PICKLISTS=true"));
    }

    #[test]
    fn settings_together_on_a_my_domain() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        let full = [
            dev,
            ("SALESFORCE_URL", "https://contoso.my.salesforce.com"),
            ("SALESFORCE_CLIENT_ID", "3MVG9abc"),
            ("SALESFORCE_CLIENT_SECRET", "s3cr3t-value"),
        ];
        assert_eq!(built(&full).unwrap(), ["salesforce"]);
        let missing = built(&full[..3]).unwrap_err();
        assert_eq!(missing.setting, "SALESFORCE_CLIENT_SECRET");
        let login = [
            dev,
            ("SALESFORCE_URL", "https://login.salesforce.com"),
            ("SALESFORCE_CLIENT_ID", "3MVG9abc"),
            ("SALESFORCE_CLIENT_SECRET", "s3cr3t-value"),
        ];
        assert_eq!(built(&login).unwrap_err().setting, "SALESFORCE_URL");
        let field = [&full[..], &[("SALESFORCE_EXTERNAL_ID_FIELD", "Lead Id")]].concat();
        assert_eq!(
            built(&field).unwrap_err().setting,
            "SALESFORCE_EXTERNAL_ID_FIELD"
        );
        let picklists = [&full[..], &[("SALESFORCE_COUNTRY_PICKLISTS", "maybe")]].concat();
        assert_eq!(
            built(&picklists).unwrap_err().setting,
            "SALESFORCE_COUNTRY_PICKLISTS"
        );
        assert!(!built(&full[..3])
            .unwrap_err()
            .to_string()
            .contains("s3cr3t"));
    }
}
