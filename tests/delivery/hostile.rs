//! Hostile customer text (HTML, Markdown, CR/LF, quotes) stays literal in
//! the email, the Teams card and the webhook's JSON.

use super::destinations::{card, verified};
use super::*;
use pulldown_cmark::{Event, Parser};
use testkit::shared_maildev;

const FIRST: &str = "**Eve** [click](https://evil.example) <script>alert(1)</script>";
const COMPANY: &str = "_Acme_ & \"Sons\"\r\nBcc: victim@example.com";
const NOTE: &str = "- not a list\r\n1. nor this\n# nor a heading `code` ~~strike~~ \\ backslash";

fn hostile() -> String {
    serde_json::json!({
        "UserDetails": {"FirstName": FIRST, "LastName": "O'Brien", "Email": "eve@contoso.example",
            "Company": COMPANY, "Title": "<b>CTO</b>", "Country": "Ja|pan", "Phone": "+1 (425) 555-0100"},
        "OfferTitle": "Offer *x*", "ActionCode": "PLT", "LeadSource": "SPZA-PLT|a.b",
        "Description": NOTE,
    })
    .to_string()
}

/// What a CommonMark renderer shows for `markdown`, as plain text.
fn shown(markdown: &str) -> String {
    Parser::new(markdown)
        .map(|event| match event {
            Event::Text(text) | Event::Code(text) => text.into_string(),
            Event::SoftBreak | Event::HardBreak => " ".into(),
            Event::Html(html) | Event::InlineHtml(html) => html.into_string(),
            _ => String::new(),
        })
        .collect()
}

/// Customer text on one line, as every view shows it.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[tokio::test]
async fn hostile_text_stays_literal_everywhere() {
    let s = setup().await;
    post(&s.app, hostile()).await;
    let maildev = shared_maildev();
    until(&s.app, Duration::from_secs(60), async || {
        !s.webhook.received().is_empty()
            && !s.teams.received().is_empty()
            && !maildev.emails_to(&s.notify_to).await.is_empty()
    })
    .await;

    // Webhook: every field exactly as normalised (trimmed), the raw body as sent.
    let event = verified(&s.webhook.received()[0]);
    let data = &event["data"];
    assert_eq!(data["firstName"], FIRST);
    assert_eq!(data["company"], COMPANY);
    assert_eq!(data["description"], NOTE);
    assert_eq!(data["title"], "<b>CTO</b>");
    assert_eq!(data["raw"], hostile());

    // Teams: rendered as Markdown, every value reads as the customer wrote it.
    let content = card(&s.teams.received()[0]);
    let facts = content["body"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "FactSet")
        .unwrap()["facts"]
        .as_array()
        .unwrap()
        .clone();
    let fact = |title: &str| -> String {
        facts
            .iter()
            .find(|f| f["title"] == title)
            .map(|f| shown(f["value"].as_str().unwrap()))
            .unwrap_or_else(|| panic!("no {title} fact"))
    };
    assert_eq!(fact("Name"), format!("{FIRST} O'Brien"));
    assert_eq!(fact("Company"), one_line(COMPANY));
    assert_eq!(fact("Note"), one_line(NOTE));
    assert_eq!(fact("Title"), "<b>CTO</b>");
    assert_eq!(fact("Offer"), "Offer *x*");
    assert_eq!(fact("Country"), "Ja|pan");

    // Email: escaped in HTML, literal in text, nothing in a header.
    let email = &maildev.emails_to(&s.notify_to).await[0];
    let html = email["html"].as_str().unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("<b>CTO"),
        "{html}"
    );
    assert!(html.contains("&lt;script&gt;") && html.contains("&quot;Sons&quot;"));
    let text = email["text"].as_str().unwrap();
    assert!(
        text.contains("**Eve** [click](https://evil.example) <script>alert(1)</script>"),
        "{text}"
    );
    // The subject names who, as one clean bounded line: the company's line
    // break cannot add a header.
    let subject = email["subject"].as_str().unwrap();
    assert!(
        subject
            == "Hot lead: **Eve** [click](https://evil.example) <… (_Acme_ & \"Sons\" Bcc: \
                victim@e…) – Offer *x*: asked to be contacted",
        "{subject}"
    );
    assert!(!subject.chars().any(char::is_control) && subject.chars().count() <= 120);
    assert!(email["bcc"].as_array().is_none_or(|b| b.is_empty()));
    report!("hostile text: literal in webhook JSON, Teams card facts and the email");
    s.app.stop().await;
}
