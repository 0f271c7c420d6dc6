//! Microsoft Teams (`TEAMS_WEBHOOK_URL`): an Adaptive Card posted to a
//! Teams *Workflows* webhook ("Post to a channel when a webhook request is
//! received"; Office 365 connectors are retired). Teams renders a subset of
//! Markdown in card text, so every customer value is written with each
//! ASCII punctuation character backslash-escaped (CommonMark's rule): it
//! shows literally, never as a link, list or emphasis.

use crate::configuration::{values, ConfigError, ConfigWarning, Scope, Settings};
use crate::delivery::destination::{Batch, Destination};
use crate::delivery::outcome::Outcome;
use crate::domain::{text, DestinationName, EmailAddress, Secret};
use crate::store::StoredLead;
use futures::future::BoxFuture;
use serde_json::{json, Value};

pub const KIND: &str = "teams";
/// Its route settings start with this: `TEAMS_OFFERS`.
pub const PREFIX: &str = "TEAMS";
/// What it is called in help and lists.
pub const TITLE: &str = "Teams";
/// What it does with a lead, in a few words.
pub const ABOUT: &str = "an Adaptive Card per lead in a channel (a Workflows webhook)";
/// Its settings: the first switches it on, the others refine it.
pub const TEAMS_WEBHOOK_URL: &str = "TEAMS_WEBHOOK_URL";
pub const SETTINGS: &[&str] = &[TEAMS_WEBHOOK_URL];
/// Characters shown of each value; the note gets more.
const VALUE_CHARS: usize = 200;
const NOTE_CHARS: usize = 1_000;

pub struct TeamsDestination {
    name: DestinationName,
    /// It carries the workflow's signature (`sig=`): a secret.
    url: Secret,
}

/// `TEAMS_WEBHOOK_URL[__label]`: a Workflows webhook URL.
pub fn build(
    scope: Scope<'_>,
    name: DestinationName,
    _: &Settings,
    _: &mut Vec<ConfigWarning>,
) -> Result<Box<dyn Destination>, ConfigError> {
    let url = scope.required(TEAMS_WEBHOOK_URL)?;
    values::https_url(&scope.name(TEAMS_WEBHOOK_URL), &url)?;
    let url = values::secret(&scope.name(TEAMS_WEBHOOK_URL), &url)?;
    Ok(Box::new(TeamsDestination { name, url }))
}

impl std::fmt::Debug for TeamsDestination {
    // The URL carries the workflow's signature.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TeamsDestination")
    }
}

/// `text` as card text that shows literally: on one line, cut short, and
/// every ASCII punctuation character escaped.
pub fn literal(value: &str, max_chars: usize) -> String {
    let shown = text::truncated(&text::single_line(value), max_chars).into_owned();
    let mut out = String::with_capacity(shown.len() + shown.len() / 4);
    for c in shown.chars() {
        if c.is_ascii_punctuation() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The message Teams' Workflows webhook takes: one Adaptive Card (1.4).
pub fn card(stored: &StoredLead) -> Value {
    let lead = &stored.lead;
    let c = &lead.customer;
    let fact = |title: &str, value: Option<&str>, max: usize| {
        value.map(|v| json!({ "title": title, "value": literal(v, max) }))
    };
    let name = c.full_name();
    let facts: Vec<Value> = [
        fact("Name", name.as_deref(), VALUE_CHARS),
        fact("Company", c.company.as_deref(), VALUE_CHARS),
        fact("Title", c.title.as_deref(), VALUE_CHARS),
        fact("Email", c.email.as_deref(), VALUE_CHARS),
        fact("Phone", c.phone.as_deref(), VALUE_CHARS),
        fact("Country", c.country.as_deref(), VALUE_CHARS),
        fact("Offer", lead.offer_title.as_deref(), VALUE_CHARS),
        fact(
            "Action",
            Some(&crate::domain::action_in_words(lead.action()))
                .filter(|a| !a.is_empty())
                .map(|a| a.as_ref()),
            VALUE_CHARS,
        ),
        fact("Note", lead.description.as_deref(), NOTE_CHARS),
        fact("Lead id", Some(stored.id.as_str()), VALUE_CHARS),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut body = vec![json!({
        "type": "TextBlock",
        "text": if lead.is_test { "Partner Center test lead" } else { "New marketplace lead" },
        "weight": "Bolder",
        "size": "Medium",
        "wrap": true,
    })];
    if lead.is_test {
        body.push(json!({
            "type": "TextBlock",
            "text": "TEST: sent by Partner Center's Validate button or at publish, not a customer.",
            "color": "Warning",
            "wrap": true,
        }));
    }
    if lead.is_do_not_contact() {
        body.push(json!({
            "type": "TextBlock",
            "text": "DO NOT CONTACT: the customer asked a partner, not you, to contact them.",
            "color": "Attention",
            "weight": "Bolder",
            "size": "Medium",
            "wrap": true,
        }));
    }
    if let Some(rating) = &lead.rating {
        // Which lead to call first, under any warning and above the facts.
        body.push(json!({
            "type": "TextBlock",
            "text": format!("**{}** · {}", rating.level.title().to_uppercase(), literal(&rating.why(), VALUE_CHARS)),
            "color": match rating.level {
                crate::domain::Level::Hot => "Good",
                crate::domain::Level::Warm => "Warning",
                crate::domain::Level::Cold => "Default",
            },
            "wrap": true,
        }));
    }
    body.push(json!({ "type": "FactSet", "facts": facts }));
    // A mailto link only for a valid address (nothing else can become a
    // URL), and none for a customer who asked not to be contacted.
    let actions: Vec<Value> = c
        .email
        .as_deref()
        .filter(|_| !lead.is_do_not_contact())
        .and_then(|e| EmailAddress::parse(e).ok())
        .map(|address| {
            json!({
                "type": "Action.OpenUrl",
                "title": "Email the customer",
                "url": address.mailto(None),
            })
        })
        .into_iter()
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": body,
                "actions": actions,
            },
        }],
    })
}

impl Destination for TeamsDestination {
    fn name(&self) -> &DestinationName {
        &self.name
    }

    fn secrets(&self) -> Vec<Secret> {
        let mut secrets = vec![self.url.clone()];
        if let Ok(url) = url::Url::parse(self.url.expose()) {
            secrets.extend(url.query_pairs().map(|(_, value)| Secret::new(value)));
        }
        secrets
    }

    fn deliver<'a>(&'a self, batch: Batch<'a>) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let sent = batch
                .http
                .post(self.url.expose())
                .json(&card(batch.lead()))
                .send()
                .await;
            Outcome::of_sent(sent, batch.now).await
        })
    }
}

#[cfg(test)]
mod tests {
    fn built(pairs: &[(&str, &str)]) -> Result<Vec<String>, crate::configuration::ConfigError> {
        crate::delivery::destinations::testing::built(super::KIND, pairs)
    }

    use super::*;

    #[test]
    fn punctuation_is_escaped_and_lines_joined() {
        assert_eq!(
            literal("**Bold** [x](http://e)", 100),
            r"\*\*Bold\*\* \[x\]\(http\:\/\/e\)"
        );
        assert_eq!(literal("- item\r\n1. two", 100), r"\- item  1\. two");
        assert_eq!(literal("Zoë 株式会社 😀", 100), "Zoë 株式会社 😀");
        assert_eq!(literal("abcdef", 4), "abc…");
    }

    #[test]
    fn a_do_not_contact_lead_says_so_and_offers_no_email_button() {
        use crate::store::testing::stored;
        let content = |v: Value| v["attachments"][0]["content"].clone();
        let dnc = content(card(&stored(
            r#"{"UserDetails":{"Email":"q@x.example"},"LeadSource":"SPZA-DNC|a.b"}"#,
        )));
        let warning = &dnc["body"][1];
        assert_eq!(warning["color"], "Attention");
        assert!(warning["text"]
            .as_str()
            .unwrap()
            .starts_with("DO NOT CONTACT"));
        assert_eq!(dnc["actions"], json!([]));
        let contact = content(card(&stored(
            r#"{"UserDetails":{"Email":"q@x.example"},"LeadSource":"SPZA-PLT|a.b"}"#,
        )));
        assert_eq!(contact["actions"][0]["url"], "mailto:q@x.example");
        // The rating under the heading, saying why.
        let rating = &contact["body"][1];
        assert_eq!(
            rating["text"],
            "**HOT** · asked to be contacted · company email domain · no company"
        );
        assert_eq!(rating["color"], "Good");
        let dnc_rating = dnc["body"][2]["text"].as_str().unwrap();
        assert!(
            dnc_rating.starts_with("**COLD** · do not contact"),
            "{dnc_rating}"
        );
        let facts = contact["body"][2]["facts"].as_array().unwrap();
        assert!(facts
            .iter()
            .any(|f| f["title"] == "Action" && f["value"] == "asked to be contacted"));
    }

    /// A valid but hostile address: the button opens one recipient, with
    /// no `bcc` or body of the customer's making.
    #[test]
    fn a_hostile_address_is_one_recipient() {
        use crate::store::testing::stored;
        let lead = stored(
            r#"{"UserDetails":{"Email":"a%40evil.io?bcc=b%40evil.io&body=x@fabrikam.example"},"LeadSource":"SPZA-PLT|a.b"}"#,
        );
        let url = card(&lead)["attachments"][0]["content"]["actions"][0]["url"].clone();
        assert_eq!(
            url,
            "mailto:a%2540evil.io%3Fbcc%3Db%2540evil.io%26body%3Dx@fabrikam.example"
        );
        let email = crate::digest::card::Card::new(&lead, 100);
        let reply = email.reply.unwrap();
        assert!(reply.starts_with(
            "mailto:a%2540evil.io%3Fbcc%3Db%2540evil.io%26body%3Dx@fabrikam.example?subject="
        ));
        assert_eq!(reply.matches(['?', '&']).count(), 1, "{reply}");
    }

    #[test]
    fn the_url_is_a_checked_secret() {
        let dev = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
        assert_eq!(
            built(&[dev, ("TEAMS_WEBHOOK_URL", "not a url")])
                .unwrap_err()
                .setting,
            "TEAMS_WEBHOOK_URL"
        );
        assert_eq!(
            built(&[
                dev,
                (
                    "TEAMS_WEBHOOK_URL",
                    "https://prod.westus.logic.azure.com/workflows/x?sig=abc"
                ),
                (
                    "TEAMS_WEBHOOK_URL__analytics",
                    "https://prod.westus.logic.azure.com/w/y?sig=d"
                )
            ])
            .unwrap(),
            ["teams", "teams:analytics"]
        );
    }
}
