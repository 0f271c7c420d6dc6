//! Marketo Engage (`MARKETO_URL`): the lead's customer as a Marketo lead,
//! written with Sync Leads (`createOrUpdate` by `email`), so one person is
//! one Marketo lead however many leads they send, and a retry updates the
//! same one.
//!
//! Authentication: a Custom Service's client id and secret
//! (`MARKETO_CLIENT_ID`, `MARKETO_CLIENT_SECRET`) exchanged at
//! `/identity/oauth/token` for a token sent as `Authorization: Bearer`
//! (the `access_token` query parameter is gone since 2026-01-31).
//!
//! Marketo answers **200 for errors**: the body's `success`, its `errors`
//! and each record's `status` and `reasons` say what happened. `601`/`602`
//! (token invalid or expired) get a new token and one more try; `606`,
//! `615`, `608`, `611`, `604` are retried with backoff; `607` (the daily
//! quota) after the quota resets; a record `skipped` is dead, with its
//! reasons.
//!
//! Marketo has no standard field for a note, an offer or a lead id: with
//! `MARKETO_FIELDS` (`note=marketplaceNote,offer=marketplaceOffer,
//! action=marketplaceAction,leadId=marketplaceLeadId`) they go into custom
//! fields the admin created; `MARKETO_LEAD_SOURCE` sets the standard
//! `leadSource`. The rating's score (0–100) goes into the standard
//! `leadScore` (or the integer field `score=` names, or none with
//! `score=none`), and its level into a custom field with `rating=`.

use super::crm::{client_credentials, granted, token_answer, TokenCache};
use crate::configuration::{values, ConfigError, ConfigWarning, Scope, Settings};
use crate::delivery::destination::{Batch, Destination, Family};
use crate::delivery::outcome::{Answer, Outcome, Status};
use crate::domain::{text, DestinationName, EmailAddress, Secret};
use crate::store::StoredLead;
use futures::future::BoxFuture;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;
use time::OffsetDateTime;
use url::Url;

pub const KIND: &str = "marketo";
/// Its route settings start with this: `MARKETO_OFFERS`.
pub const PREFIX: &str = "MARKETO";
/// What it is called in help and lists.
pub const TITLE: &str = "Marketo";
/// What it does with a lead, in a few words.
pub const ABOUT: &str = "a lead per lead, synced by email";
/// Its settings: the first switches it on, the others refine it.
pub const MARKETO_URL: &str = "MARKETO_URL";
pub const MARKETO_CLIENT_ID: &str = "MARKETO_CLIENT_ID";
pub const MARKETO_CLIENT_SECRET: &str = "MARKETO_CLIENT_SECRET";
pub const MARKETO_LEAD_SOURCE: &str = "MARKETO_LEAD_SOURCE";
pub const MARKETO_FIELDS: &str = "MARKETO_FIELDS";
pub const SETTINGS: &[&str] = &[
    MARKETO_URL,
    MARKETO_CLIENT_ID,
    MARKETO_CLIENT_SECRET,
    MARKETO_LEAD_SOURCE,
    MARKETO_FIELDS,
];
/// Marketo's string fields hold 255 characters.
const VALUE_CHARS: usize = 255;
/// The note's field is a Text Area (the README says so): more room.
const NOTE_CHARS: usize = 2_000;

/// What we write besides the customer's fields, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extras {
    /// The standard `leadSource`.
    pub lead_source: Option<String>,
    /// Custom fields' REST API names, by what they hold.
    pub note: Option<String>,
    pub offer: Option<String>,
    pub action: Option<String>,
    pub lead_id: Option<String>,
    /// The integer field the rating's score (0–100) goes into: the standard
    /// `leadScore` unless `score=` says otherwise (`score=none`: nowhere).
    pub score: Option<String>,
    /// A custom string field for the level (`hot`, `warm`, `cold`).
    pub rating: Option<String>,
}

impl Default for Extras {
    fn default() -> Self {
        Self {
            lead_source: None,
            note: None,
            offer: None,
            action: None,
            lead_id: None,
            score: Some(STANDARD_SCORE.into()),
            rating: None,
        }
    }
}

/// Marketo's standard score field.
const STANDARD_SCORE: &str = "leadScore";

impl Extras {
    /// `MARKETO_FIELDS`: `what=apiName` pairs, `,` between them.
    fn parse(lead_source: Option<String>, fields: Option<&str>) -> Result<Self, String> {
        let mut extras = Self {
            lead_source: lead_source.map(|s| s.trim().to_owned()),
            ..Self::default()
        };
        for pair in fields
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (what, field) = pair
                .split_once('=')
                .map(|(w, f)| (w.trim(), f.trim()))
                .ok_or_else(|| format!("{pair:?} is not what=fieldName"))?;
            if what.eq_ignore_ascii_case("score") && field.eq_ignore_ascii_case("none") {
                extras.score = None;
                continue;
            }
            let valid = field.starts_with(|c: char| c.is_ascii_alphabetic())
                && field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("{field:?} is not a Marketo field's REST API name"));
            }
            let slot = match what.to_ascii_lowercase().as_str() {
                "note" => &mut extras.note,
                "offer" => &mut extras.offer,
                "action" => &mut extras.action,
                "leadid" => &mut extras.lead_id,
                "score" => &mut extras.score,
                "rating" => &mut extras.rating,
                _ => {
                    return Err(format!(
                        "{what:?} is not note, offer, action, leadId, score or rating"
                    ))
                }
            };
            *slot = Some(field.to_owned());
        }
        Ok(extras)
    }
}
/// A token is replaced this long before Marketo says it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);
/// Marketo's daily quota resets at midnight US Central time (06:00 UTC,
/// an hour earlier in summer: this errs late).
const QUOTA_RESET_HOUR_UTC: u8 = 6;

pub struct MarketoDestination {
    name: DestinationName,
    base: Url,
    client_id: String,
    client_secret: Secret,
    token: TokenCache<Secret>,
    extras: Extras,
}

impl std::fmt::Debug for MarketoDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketoDestination")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

/// `MARKETO_URL` (`https://<munchkin-id>.mktorest.com`, as Admin > Web
/// Services shows it, `/rest` or not), `MARKETO_CLIENT_ID` and
/// `MARKETO_CLIENT_SECRET` together.
pub fn build(
    scope: Scope<'_>,
    name: DestinationName,
    _: &Settings,
    _: &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError> {
    let found: Vec<Option<String>> = SETTINGS[..3].iter().map(|s| scope.get(s)).collect();
    if let Some((missing, _)) = SETTINGS[..3].iter().zip(&found).find(|(_, v)| v.is_none()) {
        return Err(scope.error(
            missing,
            "Marketo needs MARKETO_URL, MARKETO_CLIENT_ID and MARKETO_CLIENT_SECRET together (a \
             Custom Service of an API-only user)",
        ));
    }
    let [url, client_id, secret] = [0, 1, 2].map(|i| found[i].clone().unwrap_or_default());
    let mut base = values::https_url(&scope.name(MARKETO_URL), &url)?;
    // Admin > Web Services shows the REST endpoint with `/rest`: the base
    // is what comes before it (the identity service is beside it).
    let path = base.path().trim_end_matches('/').to_owned();
    base.set_path(path.strip_suffix("/rest").unwrap_or(&path));
    base.set_query(None);
    Ok(Box::new(MarketoDestination {
        name,
        base,
        client_id: values::secret(&scope.name(MARKETO_CLIENT_ID), &client_id)?
            .expose()
            .to_owned(),
        client_secret: values::secret(&scope.name(MARKETO_CLIENT_SECRET), &secret)?,
        token: TokenCache::default(),
        extras: Extras::parse(
            scope.get(MARKETO_LEAD_SOURCE),
            scope.get(MARKETO_FIELDS).as_deref(),
        )
        .map_err(|e| scope.error(MARKETO_FIELDS, e))?,
    }))
}

/// The Sync Leads input record (REST API field names); `None` without a
/// valid email, which Marketo keys leads by.
pub fn lead_record(
    stored: &StoredLead,
    do_not_contact: bool,
    extras: &Extras,
) -> Option<Map<String, Value>> {
    let c = &stored.lead.customer;
    let email = EmailAddress::parse(c.email.as_deref()?).ok()?;
    let mut record = Map::new();
    record.insert("email".into(), json!(email.as_str()));
    for (name, value) in [
        ("firstName", &c.first_name),
        ("lastName", &c.last_name),
        ("company", &c.company),
        ("title", &c.title),
        ("phone", &c.phone),
        ("country", &c.country),
    ] {
        if let Some(value) = value {
            record.insert(
                name.into(),
                json!(text::truncated(value, VALUE_CHARS).into_owned()),
            );
        }
    }
    if do_not_contact {
        record.insert("unsubscribed".into(), json!(true));
    }
    let lead = &stored.lead;
    let offer = lead.offer_title.as_deref().or(lead.offer_id());
    let standard_lead_source = extras.lead_source.as_ref().map(|_| "leadSource");
    for (field, value, chars) in [
        (
            standard_lead_source,
            extras.lead_source.as_deref(),
            VALUE_CHARS,
        ),
        (
            extras.note.as_deref(),
            lead.description.as_deref(),
            NOTE_CHARS,
        ),
        (extras.offer.as_deref(), offer, VALUE_CHARS),
        (extras.action.as_deref(), lead.action(), VALUE_CHARS),
        (
            extras.lead_id.as_deref(),
            Some(stored.id.as_str()),
            VALUE_CHARS,
        ),
    ] {
        let value = value.map(str::trim).filter(|v| !v.is_empty());
        if let (Some(field), Some(value)) = (field, value) {
            record.insert(
                field.into(),
                json!(text::truncated(value, chars).into_owned()),
            );
        }
    }
    if let Some(rating) = &lead.rating {
        if let Some(field) = &extras.score {
            record.insert(field.clone(), json!(rating.score.clamp(0, 100)));
        }
        if let Some(field) = &extras.rating {
            record.insert(field.clone(), json!(rating.level.as_str()));
        }
    }
    Some(record)
}

/// Marketo's answer, HTTP 200 either way.
#[derive(Debug, Default, Deserialize)]
struct Reply {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<Reason>,
    #[serde(default)]
    result: Vec<RecordResult>,
}

#[derive(Debug, Default, Deserialize)]
struct Reason {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Debug, Default, Deserialize)]
struct RecordResult {
    #[serde(default)]
    status: String,
    #[serde(default)]
    reasons: Vec<Reason>,
}

fn reasons(reasons: &[Reason]) -> String {
    reasons
        .iter()
        .map(|r| format!("{} {}", r.code, r.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The wait until the daily quota resets after `now`.
pub fn until_quota_resets(now: OffsetDateTime) -> Duration {
    let today = now
        .date()
        .with_hms(QUOTA_RESET_HOUR_UTC, 0, 0)
        .map(|t| t.assume_utc())
        .unwrap_or(now);
    let next = if today > now {
        today
    } else {
        today + time::Duration::days(1)
    };
    (next - now)
        .try_into()
        .unwrap_or(Duration::from_secs(3_600))
}

impl MarketoDestination {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// A new token, and when to replace it (a little before it expires).
    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        now: OffsetDateTime,
    ) -> Result<(Secret, Option<OffsetDateTime>), Outcome> {
        let request = http
            .post(self.url("/identity/oauth/token"))
            .query(&client_credentials(&self.client_id, &self.client_secret));
        let answer = token_answer(request, now, "MARKETO_URL's identity service").await?;
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
            #[serde(default)]
            expires_in: u64,
        }
        match answer.status.as_u16() {
            200 => {
                let granted: Granted = granted(&answer, "Marketo")?;
                let lifetime =
                    Duration::from_secs(granted.expires_in).saturating_sub(EXPIRY_MARGIN);
                Ok((Secret::new(granted.access_token), Some(now + lifetime)))
            }
            400 | 401 => Err(Outcome::dead(
                Status::TokenRefused,
                format!(
                    "Marketo refused MARKETO_CLIENT_ID or MARKETO_CLIENT_SECRET (Admin > \
                     LaunchPoint > the Custom Service > View Details) — {}",
                    answer.excerpt()
                ),
            )),
            status => Err(Outcome::retry(
                Status::NoToken,
                format!("Marketo's identity service answered HTTP {status}"),
            )),
        }
    }

    async fn write(&self, batch: Batch<'_>) -> Outcome {
        let lead = batch.lead();
        let Some(record) = lead_record(lead, lead.lead.is_do_not_contact(), &self.extras) else {
            return Outcome::dead(
                Status::NoEmail,
                "Marketo keys leads by email, and this lead has no valid email address",
            );
        };
        let body = json!({
            "action": "createOrUpdate",
            "lookupField": "email",
            "input": [record],
        });
        for attempt in 0..2 {
            let fetch = || self.fetch_token(batch.http, batch.now);
            let token = match self.token.get(batch.now, fetch).await {
                Ok(token) => token,
                Err(outcome) => return outcome,
            };
            let sent = batch
                .http
                .post(self.url("/rest/v1/leads.json"))
                .bearer_auth(token.expose())
                .json(&body)
                .send()
                .await;
            let answer = match sent {
                Err(e) => return Outcome::unanswered(&e),
                Ok(response) => Answer::read_whole(response, batch.now).await,
            };
            if answer.status.as_u16() != 200 {
                return answer.outcome();
            }
            let reply: Reply = match serde_json::from_slice(&answer.body) {
                Ok(reply) => reply,
                Err(_) => {
                    return Outcome::retry(
                        Status::Http(200),
                        format!("an answer Marketo should not give: {}", answer.excerpt()),
                    )
                }
            };
            if !reply.success {
                let codes: Vec<&str> = reply.errors.iter().map(|e| e.code.as_str()).collect();
                let said = reasons(&reply.errors);
                let status = Status::Refused(codes.first().copied().unwrap_or("?").to_owned());
                if codes.iter().any(|c| matches!(*c, "601" | "602")) {
                    self.token.forget().await;
                    if attempt == 0 {
                        continue;
                    }
                    return Outcome::retry(status, said);
                }
                if codes.contains(&"607") {
                    return Outcome::Retry {
                        status,
                        error: format!(
                            "the daily API quota is reached; trying after it resets — {said}"
                        ),
                        after: Some(until_quota_resets(batch.now)),
                        maybe_done: false,
                    };
                }
                if codes
                    .iter()
                    .any(|c| matches!(*c, "606" | "615" | "608" | "611" | "604" | "713"))
                {
                    return Outcome::Retry {
                        status,
                        error: said,
                        // 606: 100 calls in 20 s.
                        after: codes.contains(&"606").then_some(Duration::from_secs(20)),
                        maybe_done: false,
                    };
                }
                return Outcome::dead(status, format!("Marketo refused the request — {said}"));
            }
            return match reply.result.first() {
                Some(r) if matches!(r.status.as_str(), "created" | "updated") => {
                    Outcome::Delivered {
                        status: Status::Written(r.status.clone()),
                    }
                }
                Some(r) => Outcome::dead(
                    Status::Refused(r.status.clone()),
                    format!("Marketo {} the lead — {}", r.status, reasons(&r.reasons)),
                ),
                None => Outcome::retry(Status::Http(200), "Marketo answered with no result"),
            };
        }
        Outcome::retry(Status::NoToken, "no token Marketo would take")
    }
}

impl Destination for MarketoDestination {
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
    use time::macros::datetime;

    fn built(pairs: &[(&str, &str)]) -> Result<Vec<String>, ConfigError> {
        crate::delivery::destinations::testing::built(super::KIND, pairs)
    }

    fn lead_record_plain(stored: &StoredLead, dnc: bool) -> Option<Map<String, Value>> {
        lead_record(stored, dnc, &Extras::default())
    }

    #[test]
    fn the_note_offer_action_and_lead_id_go_where_the_settings_say() {
        let extras = Extras::parse(
            Some("Azure Marketplace".into()),
            Some("note=marketplaceNote, offer=marketplaceOffer,action=marketplaceAction,leadId=marketplaceLeadId"),
        )
        .unwrap();
        let lead = stored(
            r#"{"UserDetails":{"Email":"a@b.co"},"LeadSource":"SPZA-PLT|p.o","OfferTitle":"Contoso","Description":"Call me"}"#,
        );
        let record = lead_record(&lead, false, &extras).unwrap();
        assert_eq!(record["leadSource"], "Azure Marketplace");
        assert_eq!(record["marketplaceNote"], "Call me");
        assert_eq!(record["marketplaceOffer"], "Contoso");
        assert_eq!(record["marketplaceAction"], "PLT");
        assert_eq!(record["marketplaceLeadId"], lead.id.as_str());
        assert!(record["leadScore"].is_i64(), "{record:?}");
        for bad in ["note", "note=", "note=1x", "colour=x", "note=a b"] {
            assert!(Extras::parse(None, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rating_goes_into_lead_score_unless_told_otherwise() {
        let lead = stored(
            r#"{"UserDetails":{"Email":"aiko@fabrikam.example","Company":"Fabrikam","Phone":"+81 3"},"LeadSource":"AzurePortal-PLT|p.o"}"#,
        );
        let score = lead.lead.rating.as_ref().unwrap().score;
        let record = lead_record_plain(&lead, false).unwrap();
        assert_eq!(record["leadScore"], json!(score.clamp(0, 100)));

        let custom = Extras::parse(
            None,
            Some("score=marketplaceScore,rating=marketplaceRating"),
        )
        .unwrap();
        let record = lead_record(&lead, false, &custom).unwrap();
        assert!(record.get("leadScore").is_none());
        assert_eq!(record["marketplaceScore"], json!(score.clamp(0, 100)));
        assert_eq!(record["marketplaceRating"], "hot");

        let none = Extras::parse(None, Some("score=none")).unwrap();
        let record = lead_record(&lead, false, &none).unwrap();
        assert!(!record.keys().any(|k| k.contains("core")), "{record:?}");

        // A personal mailbox that only installed: a score of zero, not less.
        let cold = stored(
            r#"{"UserDetails":{"Email":"someone@gmail.com"},"LeadSource":"AzureMarketplace-INS|p.o"}"#,
        );
        assert_eq!(
            lead_record_plain(&cold, false).unwrap()["leadScore"],
            json!(0)
        );
    }

    #[test]
    fn the_record_has_marketos_field_names() {
        let record = lead_record_plain(
            &stored(
                r#"{"UserDetails":{"FirstName":"Aiko","LastName":"Tanaka","Email":"aiko@fabrikam.example",
                "Company":"Fabrikam","Title":"CTO","Phone":"+81 3","Country":"Japan"}}"#,
            ),
            false,
        )
        .unwrap();
        assert_eq!(record["email"], "aiko@fabrikam.example");
        assert_eq!(record["firstName"], "Aiko");
        assert_eq!(record["lastName"], "Tanaka");
        assert_eq!(record["country"], "Japan");
        assert!(record.get("unsubscribed").is_none());
        assert!(
            lead_record_plain(&stored(r#"{"UserDetails":{"FirstName":"A"}}"#), false).is_none()
        );
        let dnc =
            lead_record_plain(&stored(r#"{"UserDetails":{"Email":"a@b.co"}}"#), true).unwrap();
        assert_eq!(dnc["unsubscribed"], true);
    }

    #[test]
    fn the_quota_resets_at_midnight_central() {
        let before = datetime!(2026-11-22 05:00 UTC);
        assert_eq!(until_quota_resets(before), Duration::from_secs(3_600));
        let after = datetime!(2026-11-22 07:00 UTC);
        assert_eq!(until_quota_resets(after), Duration::from_secs(23 * 3_600));
    }

    #[test]
    fn settings_together() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        let full = [
            dev,
            ("MARKETO_URL", "https://123-ABC-456.mktorest.com/rest"),
            ("MARKETO_CLIENT_ID", "5f6a7b8c-client"),
            ("MARKETO_CLIENT_SECRET", "s3cr3t-value"),
        ];
        assert_eq!(built(&full).unwrap(), ["marketo"]);
        assert_eq!(
            built(&full[..3]).unwrap_err().setting,
            "MARKETO_CLIENT_SECRET"
        );
        let http = [
            dev,
            ("MARKETO_URL", "http://123-ABC-456.mktorest.com"),
            full[2],
            full[3],
        ];
        assert_eq!(built(&http).unwrap_err().setting, "MARKETO_URL");
    }
}
