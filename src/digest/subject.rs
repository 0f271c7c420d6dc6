//! Subject lines that tell leads apart in an inbox: who, which offer, and
//! what they did — "Aiko Tanaka (Fabrikam) – Contoso Analytics: asked to be
//! contacted".
//!
//! A subject is a mail header, and customer text is hostile: each piece is
//! one clean line (control characters and line breaks become spaces,
//! bidirectional overrides are removed with them, runs of spaces collapse),
//! anything that reads as an RFC 2047 encoded word (`=?`) is broken up so
//! a mail client cannot decode it into something else, and the whole is
//! bounded. Encoding non-ASCII for the header is the mail library's job.

use crate::domain::text;
use crate::store::StoredLead;

/// The most characters a subject has (RFC 2822 recommends lines of at most
/// 78; inboxes show about this much).
pub const MAX_SUBJECT_CHARS: usize = 120;

/// A piece of customer text for a subject: one line, at most `max` chars.
pub fn part(value: &str, max: usize) -> String {
    let line = text::single_line(value);
    let collapsed = line.split_whitespace().collect::<Vec<_>>().join(" ");
    // `=?` opens an encoded word: a space between keeps it literal.
    let literal = collapsed.replace("=?", "= ?");
    text::truncated(&literal, max).into_owned()
}

/// The subject of a per-lead email of `leads` (one, or a few combined).
pub fn of_leads(leads: &[StoredLead]) -> String {
    let subject = match leads {
        [] => "Marketplace lead".to_owned(),
        [one] => of_lead(one),
        [first, ..] => {
            let offers = offers(leads);
            let hot = leads
                .iter()
                .filter(|l| l.lead.level() == Some(crate::domain::Level::Hot))
                .count();
            format!(
                "{} marketplace leads{}{} – first: {}",
                leads.len(),
                if hot > 0 {
                    format!(", {hot} hot")
                } else {
                    String::new()
                },
                if offers.is_empty() {
                    String::new()
                } else {
                    format!(" ({offers})")
                },
                who(first)
            )
        }
    };
    text::truncated(&subject, MAX_SUBJECT_CHARS).into_owned()
}

/// "Aiko Tanaka (Fabrikam) – Contoso Analytics: asked to be contacted".
fn of_lead(stored: &StoredLead) -> String {
    let lead = &stored.lead;
    let action = crate::domain::action_in_words(lead.action());
    let offer = lead
        .offer_title
        .as_deref()
        .or(lead.offer_id())
        .map(|o| part(o, 50))
        .filter(|o| !o.is_empty());
    let mut subject = String::new();
    if lead.is_test {
        subject.push_str("[TEST] ");
    }
    if lead.is_do_not_contact() {
        subject.push_str("[DO NOT CONTACT] ");
    }
    if lead.level() == Some(crate::domain::Level::Hot) {
        subject.push_str("Hot lead: ");
    }
    subject.push_str(&who(stored));
    if let Some(offer) = offer {
        subject.push_str(" – ");
        subject.push_str(&offer);
    }
    if !action.is_empty() {
        subject.push_str(": ");
        subject.push_str(&action);
    }
    subject
}

/// "Aiko Tanaka (Fabrikam)", or what there is of it.
fn who(stored: &StoredLead) -> String {
    let c = &stored.lead.customer;
    let name = c
        .full_name()
        .map(|n| part(&n, 40))
        .filter(|n| !n.is_empty());
    let company = c
        .company
        .as_deref()
        .map(|n| part(n, 30))
        .filter(|n| !n.is_empty());
    match (name, company) {
        (Some(name), Some(company)) => format!("{name} ({company})"),
        (Some(name), None) => name,
        (None, Some(company)) => company,
        (None, None) => "A customer".to_owned(),
    }
}

/// The distinct offers of `leads`, at most two named.
fn offers(leads: &[StoredLead]) -> String {
    let mut names: Vec<String> = Vec::new();
    for lead in leads {
        if let Some(offer) = lead
            .lead
            .offer_title
            .as_deref()
            .or(lead.lead.offer_id())
            .map(|o| part(o, 30))
            .filter(|o| !o.is_empty())
        {
            if !names.contains(&offer) {
                names.push(offer);
            }
        }
    }
    match names.len() {
        0..=2 => names.join(", "),
        n => format!("{}, {} and {} more", names[0], names[1], n - 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::stored;

    fn subject_of(first_name: &str) -> String {
        let body = serde_json::json!({
            "UserDetails": {"FirstName": first_name, "LastName": "Tanaka", "Company": "Fabrikam"},
            "LeadSource": "SPZA-PLT|contoso.analytics", "OfferTitle": "Contoso Analytics",
        });
        of_leads(&[stored(&body.to_string())])
    }

    fn assert_clean(subject: &str) {
        assert!(subject.chars().count() <= MAX_SUBJECT_CHARS, "{subject}");
        assert!(!subject.chars().any(char::is_control), "{subject:?}");
        for bidi in ['\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}'] {
            assert!(!subject.contains(bidi), "{subject:?}");
        }
        assert!(!subject.contains("=?"), "{subject:?}");
    }

    #[test]
    fn a_subject_names_who_which_offer_and_what() {
        assert_eq!(
            subject_of("Aiko"),
            "Aiko Tanaka (Fabrikam) – Contoso Analytics: asked to be contacted"
        );
        assert_eq!(
            of_leads(&[stored(r#"{"LeadSource":"AzureMarketplace-INS|a.b"}"#)]),
            "A customer – a.b: installed"
        );
    }

    #[test]
    fn hostile_names_give_one_clean_bounded_line() {
        for hostile in [
            "Aiko\r\nBcc: victim@example.com",
            "=?utf-8?B?SGFja2Vk?=",
            "\u{202E}gnp.exe",
            &"A".repeat(500),
            "😀".repeat(200).as_str(),
            "\0\u{7}\u{1b}[31mred",
        ] {
            let subject = subject_of(hostile);
            assert_clean(&subject);
            assert!(subject.contains("Contoso Analytics"), "{subject}");
        }
        assert_eq!(
            subject_of("Aiko\r\nBcc: victim@example.com"),
            "Aiko Bcc: victim@example.com Tanaka (Fabrikam) – Contoso Analytics: asked to be \
             contacted"
        );
        assert!(subject_of("=?utf-8?B?SGFja2Vk?=").starts_with("= ?utf-8?B?SGFja2Vk?= Tanaka"));
        // 500 characters of name are cut, with the offer still in view.
        let long = subject_of(&"A".repeat(500));
        assert!(long.starts_with(&format!("{}…", "A".repeat(39))), "{long}");
    }

    #[test]
    fn combined_leads_are_counted_with_their_offers() {
        let leads = [
            stored(r#"{"UserDetails":{"FirstName":"Aiko"},"OfferTitle":"Analytics"}"#),
            stored(r#"{"UserDetails":{"FirstName":"Ben"},"OfferTitle":"Gateway"}"#),
            stored(r#"{"UserDetails":{"FirstName":"Cy"},"OfferTitle":"Analytics"}"#),
        ];
        assert_eq!(
            of_leads(&leads),
            "3 marketplace leads (Analytics, Gateway) – first: Aiko"
        );
    }

    #[test]
    fn test_and_do_not_contact_leads_are_marked() {
        assert!(
            of_leads(&[stored(r#"{"UserDetails":{"FirstName":"MSFT_TEST_1"}}"#)])
                .starts_with("[TEST] ")
        );
        assert!(of_leads(&[stored(r#"{"LeadSource":"SPZA-DNC|a.b"}"#)])
            .starts_with("[DO NOT CONTACT] A customer – a.b: do not contact"));
    }
}
