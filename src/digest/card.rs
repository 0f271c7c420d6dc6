//! A lead as the people who receive it read it: a card with the customer's
//! name and company as its heading, their note right under it, then the
//! details, and a reply button. The per-lead email is one or a few cards;
//! the digest shows one per lead after its summary.
//!
//! Every value is display-ready text: on one line where a line break could
//! fake another entry (the note keeps its lines, indented in the plain
//! text), cut to a bounded length, and escaped by the askama templates.

use super::subject;
use crate::domain::{text, EmailAddress};
use crate::store::StoredLead;
use askama::Template;
use time::macros::format_description;
use time::OffsetDateTime;

/// Characters shown of each field.
pub const FIELD_CHARS: usize = 120;

/// One lead, ready for the templates.
#[derive(Debug, Clone)]
pub struct Card {
    /// "Aiko Tanaka · Fabrikam", or what there is of it.
    pub heading: String,
    pub title: String,
    pub email: String,
    /// `mailto:` of a valid address only, with a subject naming the offer.
    pub reply: Option<String>,
    /// "Reply to Aiko" (or "Reply" without a first name).
    pub reply_label: String,
    pub phone: String,
    /// `tel:` of the phone's digits and `+`, when it has digits.
    pub tel: Option<String>,
    pub country: String,
    pub offer: String,
    /// What the customer did, in words ("asked to be contacted").
    pub action: String,
    pub time: String,
    /// The note, its lines kept; `note_lines` for the plain text.
    pub note: String,
    pub note_lines: Vec<String>,
    pub lead_id: String,
    pub is_test: bool,
    pub do_not_contact: bool,
    /// "hot", "warm" or "cold", and its reasons on one line; empty for a
    /// lead stored before ratings.
    pub rating: String,
    pub rating_why: String,
    /// The rating's level, for ordering cards.
    pub level: Option<crate::domain::Level>,
}

impl Card {
    /// `note_chars`: how much of the note to show (a per-lead email shows
    /// it whole; a digest cuts it).
    pub fn new(stored: &StoredLead, note_chars: usize) -> Self {
        let lead = &stored.lead;
        let c = &lead.customer;
        let text = |v: &Option<String>| v.as_deref().map(field).unwrap_or_default();
        let name = c.full_name().map(|n| field(&n)).unwrap_or_default();
        let company = text(&c.company);
        let heading = match (name.is_empty(), company.is_empty()) {
            (false, false) => format!("{name} · {company}"),
            (false, true) => name,
            (true, false) => company,
            (true, true) => "(no name given)".to_owned(),
        };
        let offer = field(
            lead.offer_title
                .as_deref()
                .or(lead.offer_id())
                .unwrap_or_default(),
        );
        let do_not_contact = lead.is_do_not_contact();
        // A customer who asked not to be contacted gets no link to tap.
        let reply = c
            .email
            .as_deref()
            .filter(|_| !do_not_contact)
            .and_then(|e| EmailAddress::parse(e).ok())
            .map(|e| e.mailto(Some(&reply_subject(lead.action(), &offer))));
        let first_name = c
            .first_name
            .as_deref()
            .map(|f| subject::part(f, 40))
            .filter(|f| !f.is_empty());
        let note = lead
            .description
            .as_deref()
            .map(|n| text::truncated(&multi_line(n), note_chars).into_owned())
            .unwrap_or_default();
        // Shown, but not as something a mail app turns into a link.
        let shown = |value: String| {
            if do_not_contact {
                unlinkable(&value)
            } else {
                value
            }
        };
        Self {
            heading,
            title: text(&c.title),
            email: shown(text(&c.email)),
            reply,
            reply_label: match first_name {
                Some(first) => format!("Reply to {first}"),
                None => "Reply".to_owned(),
            },
            phone: shown(text(&c.phone)),
            tel: c.phone.as_deref().filter(|_| !do_not_contact).and_then(tel),
            country: text(&c.country),
            offer,
            action: field(&crate::domain::action_in_words(lead.action())),
            time: format_time(stored.received_at),
            note_lines: note.lines().map(str::to_owned).collect(),
            note,
            lead_id: stored.id.to_string(),
            is_test: lead.is_test,
            do_not_contact,
            rating: lead
                .level()
                .map(|l| l.as_str().to_owned())
                .unwrap_or_default(),
            level: lead.level(),
            rating_why: lead
                .rating
                .as_ref()
                .map(|r| field(&r.why()))
                .unwrap_or_default(),
        }
    }
}

/// The subject of a reply to the customer, in the words of what they did.
pub fn reply_subject(action: Option<&str>, offer: &str) -> String {
    let code = action.map(str::to_ascii_uppercase);
    let offer = if offer.is_empty() {
        "our marketplace offer"
    } else {
        offer
    };
    match code.as_deref() {
        Some("INS") => format!("Getting started with {offer}"),
        Some("CREATE") => format!("Your purchase of {offer}"),
        Some("STARTTESTDRIVE") => format!("Your test drive of {offer}"),
        _ if offer == "our marketplace offer" => "Your marketplace enquiry".to_owned(),
        _ => format!("Your enquiry about {offer}"),
    }
}

#[cfg(test)]
mod reply_tests {
    use super::*;

    #[test]
    fn a_reply_names_what_the_customer_did() {
        let offer = "Contoso Analytics";
        assert_eq!(
            reply_subject(Some("PLT"), offer),
            "Your enquiry about Contoso Analytics"
        );
        assert_eq!(
            reply_subject(Some("INS"), offer),
            "Getting started with Contoso Analytics"
        );
        assert_eq!(
            reply_subject(Some("Create"), offer),
            "Your purchase of Contoso Analytics"
        );
        assert_eq!(
            reply_subject(Some("StartTestDrive"), offer),
            "Your test drive of Contoso Analytics"
        );
        assert_eq!(reply_subject(None, ""), "Your marketplace enquiry");
        assert_eq!(
            reply_subject(Some("INS"), ""),
            "Getting started with our marketplace offer"
        );
    }

    #[test]
    fn a_do_not_contact_lead_invites_no_contact() {
        let dnc = crate::store::testing::stored(
            r#"{"UserDetails":{"FirstName":"Aiko","Email":"aiko@fabrikam.example","Phone":"+81 3 1234 5678"},"LeadSource":"AzureMarketplace-DNC|p.o","ActionCode":"DNC","OfferTitle":"Contoso"}"#,
        );
        let card = Card::new(&dnc, 1_000);
        assert!(card.do_not_contact);
        assert_eq!((card.reply.as_deref(), card.tel.as_deref()), (None, None));
        let email = LeadEmail::of(std::slice::from_ref(&dnc));
        for part in [&email.html, &email.text] {
            assert!(
                !part.contains("mailto:") && !part.contains("tel:"),
                "{part}"
            );
            assert!(
                !part.contains("aiko@fabrikam.example"),
                "an address a mail app would link"
            );
            assert!(!part.contains("1234"), "a number a phone would dial");
        }
        assert!(email.text.contains("aiko@\u{200B}fabrikam.\u{200B}example"));
    }
}

/// `value` with a zero-width space after each `@`, `.` and digit, so mail
/// apps (which link what looks like an address or a phone number) leave it
/// as text.
fn unlinkable(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 2);
    for c in value.chars() {
        out.push(c);
        if c == '@' || c == '.' || c.is_ascii_digit() {
            out.push('\u{200B}');
        }
    }
    out
}

/// A shown field: on one line, at most [`FIELD_CHARS`] characters.
pub fn field(value: &str) -> String {
    text::truncated(&text::single_line(value), FIELD_CHARS).into_owned()
}

/// The note with its line breaks kept (CR LF and CR become LF) and every
/// other control or bidirectional character a space; blank runs of lines
/// become one.
fn multi_line(note: &str) -> String {
    let normalised = note.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<String> = normalised
        .split('\n')
        .map(|l| text::single_line(l).trim_end().to_owned())
        .collect();
    let mut out = String::new();
    let mut blank = false;
    for line in lines {
        if line.trim().is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank { "\n\n" } else { "\n" });
        }
        blank = false;
        out.push_str(&line);
    }
    out
}

/// `tel:` with the number's `+` and digits, when it has 3 to 20 digits.
fn tel(phone: &str) -> Option<String> {
    let plus = phone.trim_start().starts_with('+');
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    (3..=20)
        .contains(&digits.len())
        .then(|| format!("tel:{}{digits}", if plus { "+" } else { "" }))
}

pub fn format_time(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// The email sent for one lead, or for a few combined when the hourly
/// limit held them back.
pub struct LeadEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The per-lead email's notes are shown whole (a lead body is at most
/// 64 KiB, so this bounds nothing a lead can hold).
const FULL_NOTE: usize = crate::domain::MAX_BODY_BYTES;

impl LeadEmail {
    pub fn of(leads: &[StoredLead]) -> Self {
        let cards: Vec<Card> = leads.iter().map(|l| Card::new(l, FULL_NOTE)).collect();
        let subject = subject::of_leads(leads);
        let view = LeadView {
            subject: &subject,
            cards: &cards,
        };
        Self {
            text: LeadText { v: &view }
                .render()
                .unwrap_or_else(|e| format!("(the email could not be rendered: {e})")),
            html: LeadHtml { v: &view }
                .render()
                .unwrap_or_else(|e| format!("<p>The email could not be rendered: {e}</p>")),
            subject,
        }
    }
}

struct LeadView<'a> {
    subject: &'a str,
    cards: &'a [Card],
}

#[derive(Template)]
#[template(path = "lead.txt", escape = "none")]
struct LeadText<'a> {
    v: &'a LeadView<'a>,
}

#[derive(Template)]
#[template(path = "lead.html")]
struct LeadHtml<'a> {
    v: &'a LeadView<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::stored;

    const AIKO: &str = r#"{"UserDetails":{"FirstName":"Aiko","LastName":"Tanaka","Email":"aiko@fabrikam.example",
        "Company":"Fabrikam","Title":"CTO","Phone":"+81 3-1234-5678","Country":"Japan"},
        "LeadSource":"SPZA-PLT|contoso.analytics","OfferTitle":"Contoso Analytics",
        "Description":"Please call me.\r\nWe have 40 seats.\r\n\r\n\r\nThanks"}"#;

    #[test]
    fn a_card_leads_with_who_and_what_they_wrote() {
        let card = Card::new(&stored(AIKO), 500);
        assert_eq!(card.heading, "Aiko Tanaka · Fabrikam");
        assert_eq!(card.note, "Please call me.\nWe have 40 seats.\n\nThanks");
        assert_eq!(card.action, "asked to be contacted");
        assert_eq!(card.tel.as_deref(), Some("tel:+81312345678"));
        assert_eq!(card.reply_label, "Reply to Aiko");
        assert_eq!(
            card.reply.as_deref(),
            Some(
                "mailto:aiko@fabrikam.example?subject=Your%20enquiry%20about%20Contoso%20Analytics"
            )
        );
    }

    #[test]
    fn the_per_lead_email_quotes_the_note_and_offers_a_reply() {
        let email = LeadEmail::of(&[stored(AIKO)]);
        assert_eq!(
            email.subject,
            "Hot lead: Aiko Tanaka (Fabrikam) – Contoso Analytics: asked to be contacted"
        );
        assert!(email.html.contains("We have 40 seats."), "{}", email.html);
        assert!(email.html.contains("Reply to Aiko"));
        assert!(email.html.contains("href=\"tel:+81312345678\""));
        assert!(email.html.contains("20261122-0011223344556677"));
        // The plain text: the note indented, so it cannot fake a field.
        assert!(
            email.text.contains("  > We have 40 seats."),
            "{}",
            email.text
        );
        assert!(email.text.contains("  Email: aiko@fabrikam.example\n"));
    }

    #[test]
    fn test_and_do_not_contact_leads_say_so_first() {
        let test = LeadEmail::of(&[stored(
            r#"{"UserDetails":{"FirstName":"MSFT_TEST_636573304831318844"}}"#,
        )]);
        assert!(test.html.contains("TEST LEAD"), "{}", test.html);
        assert!(test.text.starts_with("TEST LEAD"), "{}", test.text);
        let dnc = LeadEmail::of(&[stored(
            r#"{"UserDetails":{"FirstName":"Quiet","Email":"q@x.example"},"LeadSource":"SPZA-DNC|a.b"}"#,
        )]);
        assert!(dnc.html.contains("DO NOT CONTACT"), "{}", dnc.html);
        assert!(dnc.text.starts_with("DO NOT CONTACT"), "{}", dnc.text);
        assert!(dnc.subject.contains("do not contact"), "{}", dnc.subject);
        assert!(
            !dnc.html.contains("Reply to Quiet"),
            "no reply button for DNC"
        );
    }

    #[test]
    fn hostile_text_is_escaped() {
        let email = LeadEmail::of(&[stored(
            r#"{"UserDetails":{"FirstName":"<script>x</script>","Email":"\"><img src=x>@e.example"},
                "Description":"<b>hi</b>\u202Eexe.txt"}"#,
        )]);
        assert!(!email.html.contains("<script>x") && !email.html.contains("<img"));
        assert!(!email.html.contains("<b>hi"));
        assert!(!email.html.contains('\u{202E}'));
        assert!(!email.html.contains("mailto:&quot;"));
    }
}
