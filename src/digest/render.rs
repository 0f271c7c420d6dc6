//! Rendering a digest: the subject line, a plain-text part and an HTML part.
//!
//! Customer-entered text is hostile: the HTML comes from askama templates,
//! which escape every value, and no customer text ever reaches the subject
//! (a mail header). Very large digests show the first leads in detail and
//! state the total.

use crate::domain::{text, EmailAddress, TimeRange};
use crate::store::StoredLead;
use askama::Template;
use time::macros::format_description;
use time::OffsetDateTime;

/// Customer leads shown in detail; the rest are counted.
pub const MAX_DETAILED_LEADS: usize = 200;
/// Partner Center test leads shown in detail.
const MAX_DETAILED_TEST_LEADS: usize = 20;

/// One lead as the digest shows it; every value is display-ready text.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub company: String,
    pub title: String,
    pub email: String,
    /// Only set when `email` is a valid address, so the link is safe.
    pub mailto: Option<String>,
    pub phone: String,
    pub country: String,
    pub offer: String,
    pub action: String,
    pub source: String,
    pub time: String,
    pub description: String,
}

impl Row {
    fn new(stored: &StoredLead) -> Self {
        let lead = &stored.lead;
        let c = &lead.customer;
        let text = |v: &Option<String>| v.as_deref().map(displayable).unwrap_or_default();
        let mailto = c
            .email
            .as_deref()
            .and_then(|e| EmailAddress::parse(e).ok())
            .map(|e| format!("mailto:{e}"));
        Self {
            name: displayable(&c.full_name().unwrap_or_default()),
            company: text(&c.company),
            title: text(&c.title),
            email: text(&c.email),
            mailto,
            phone: text(&c.phone),
            country: text(&c.country),
            offer: displayable(
                lead.offer_title
                    .as_deref()
                    .or(lead.source.as_ref().map(|s| s.offer_id.as_str()))
                    .unwrap_or_default(),
            ),
            action: displayable(&action_label(lead.action_code.as_deref())),
            source: text(&lead.lead_source),
            time: format_time(stored.received_at),
            description: text(&lead.description),
        }
    }
}

/// Customer text for display, on one line ([`text::single_line`]): a field
/// can neither fake another entry in the plain-text part nor smuggle raw
/// control bytes into the message.
fn displayable(value: &str) -> String {
    text::single_line(value).into_owned()
}

/// Partner Center's action codes, spelled out.
fn action_label(code: Option<&str>) -> String {
    let meaning = match code {
        Some("INS") => "install",
        Some("PLT") => "contact me / trial",
        Some("DNC") => "do not contact",
        Some("Create") => "Azure portal purchase",
        Some("StartTestDrive") => "test drive",
        Some(other) => return other.to_owned(),
        None => return String::new(),
    };
    format!("{} ({meaning})", code.unwrap_or_default())
}

fn format_time(at: OffsetDateTime) -> String {
    at.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// A digest ready to render.
#[derive(Debug, Clone)]
pub struct Digest {
    window: TimeRange,
    customers: Vec<Row>,
    tests: Vec<Row>,
    customer_total: usize,
    test_total: usize,
}

impl Digest {
    pub fn new(window: TimeRange, leads: &[StoredLead]) -> Self {
        let (tests, customers): (Vec<&StoredLead>, Vec<&StoredLead>) =
            leads.iter().partition(|l| l.lead.is_test);
        Self {
            window,
            customer_total: customers.len(),
            test_total: tests.len(),
            customers: customers
                .iter()
                .take(MAX_DETAILED_LEADS)
                .map(|l| Row::new(l))
                .collect(),
            tests: tests
                .iter()
                .take(MAX_DETAILED_TEST_LEADS)
                .map(|l| Row::new(l))
                .collect(),
        }
    }

    /// E.g. `3 new marketplace leads · 22 Nov 09:59–10:59 UTC`. Built only
    /// from counts and times: no customer text in a header.
    pub fn subject(&self) -> String {
        let leads = match self.customer_total {
            1 => "1 new marketplace lead".to_owned(),
            n => format!("{n} new marketplace leads"),
        };
        let tests = match self.test_total {
            0 => String::new(),
            1 => " + 1 test lead".to_owned(),
            n => format!(" + {n} test leads"),
        };
        format!("{leads}{tests} · {}", self.window_label())
    }

    fn window_label(&self) -> String {
        let day = format_description!("[day padding:none] [month repr:short]");
        let clock = format_description!("[hour]:[minute]");
        let (start, end) = (self.window.start, self.window.end);
        let fmt = |at: OffsetDateTime, f: &[time::format_description::FormatItem<'_>]| {
            at.format(f).unwrap_or_default()
        };
        if start.date() == end.date() {
            format!(
                "{} {}–{} UTC",
                fmt(end, day),
                fmt(start, clock),
                fmt(end, clock)
            )
        } else {
            format!(
                "{} {} – {} {} UTC",
                fmt(start, day),
                fmt(start, clock),
                fmt(end, day),
                fmt(end, clock)
            )
        }
    }

    fn view(&self) -> View<'_> {
        View {
            subject: self.subject(),
            window: self.window_label(),
            customers: &self.customers,
            tests: &self.tests,
            customer_total: self.customer_total,
            test_total: self.test_total,
            customers_hidden: self.customer_total - self.customers.len(),
            tests_hidden: self.test_total - self.tests.len(),
        }
    }

    pub fn text(&self) -> String {
        TextPart { v: self.view() }
            .render()
            .unwrap_or_else(|e| format!("(the digest could not be rendered: {e})"))
    }

    pub fn html(&self) -> String {
        HtmlPart { v: self.view() }
            .render()
            .unwrap_or_else(|e| format!("<p>The digest could not be rendered: {e}</p>"))
    }
}

struct View<'a> {
    subject: String,
    window: String,
    customers: &'a [Row],
    tests: &'a [Row],
    customer_total: usize,
    test_total: usize,
    customers_hidden: usize,
    tests_hidden: usize,
}

#[derive(Template)]
#[template(path = "digest.txt", escape = "none")]
struct TextPart<'a> {
    v: View<'a>,
}

#[derive(Template)]
#[template(path = "digest.html")]
struct HtmlPart<'a> {
    v: View<'a>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Lead;
    use time::macros::datetime;

    fn stored(body: &str, at: OffsetDateTime) -> StoredLead {
        StoredLead {
            id: "id".into(),
            received_at: at,
            lead: Lead::parse(body.as_bytes()).unwrap(),
        }
    }

    fn window() -> TimeRange {
        TimeRange {
            start: datetime!(2026-11-22 09:59:30 UTC),
            end: datetime!(2026-11-22 10:59:30 UTC),
        }
    }

    #[test]
    fn subject_counts_and_window() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let leads = [
            stored(r#"{"UserDetails":{"FirstName":"A"}}"#, at),
            stored(r#"{"UserDetails":{"FirstName":"B"}}"#, at),
            stored(r#"{"UserDetails":{"FirstName":"MSFT_TEST_1"}}"#, at),
        ];
        let digest = Digest::new(window(), &leads);
        assert_eq!(
            digest.subject(),
            "2 new marketplace leads + 1 test lead · 22 Nov 09:59–10:59 UTC"
        );
        let overnight = TimeRange {
            start: datetime!(2026-11-21 23:00 UTC),
            end: datetime!(2026-11-22 00:30 UTC),
        };
        assert_eq!(
            Digest::new(overnight, &leads[..1]).subject(),
            "1 new marketplace lead · 21 Nov 23:00 – 22 Nov 00:30 UTC"
        );
    }

    #[test]
    fn hostile_text_is_escaped_in_html_and_kept_out_of_the_subject() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let body = r#"{"UserDetails":{"FirstName":"<script>alert(1)</script>","Company":"A & B\r\nBcc: x@y.z",
            "Email":"\"><img src=x onerror=alert(1)>@evil.example"},
            "OfferTitle":"<b>O</b>","Description":"it's \"quoted\" & <i>tagged</i>"}"#;
        let digest = Digest::new(window(), &[stored(body, at)]);
        let html = digest.html();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("<b>O</b>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("A &amp; B"));
        assert!(
            !html.contains("mailto:&quot;"),
            "invalid addresses get no link"
        );
        let subject = digest.subject();
        assert!(!subject.contains('\n') && !subject.contains("Bcc"));
        let text = digest.text();
        assert!(
            text.contains("<script>alert(1)</script>"),
            "plain text is plain"
        );
    }

    #[test]
    fn line_breaks_in_fields_cannot_fake_entries() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let body =
            r#"{"UserDetails":{"FirstName":"Eve"},"Description":"hi\r\n\r\n2. Fake Lead\u0000"}"#;
        let text = Digest::new(window(), &[stored(body, at)]).text();
        assert!(text.contains("Note: hi    2. Fake Lead "), "{text}");
        assert!(!text.contains('\0'));
    }

    #[test]
    fn test_leads_are_shown_apart() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let leads = [
            stored(
                r#"{"UserDetails":{"FirstName":"Real","Email":"real@contoso.com"}}"#,
                at,
            ),
            stored(
                r#"{"UserDetails":{"FirstName":"MSFT_TEST_636573304831318844"}}"#,
                at,
            ),
        ];
        let digest = Digest::new(window(), &leads);
        for part in [digest.text(), digest.html()] {
            let tests_at = part
                .find("Partner Center test leads")
                .expect("test section");
            assert!(part.find("MSFT_TEST_636573304831318844").unwrap() > tests_at);
            assert!(part.find("Real").unwrap() < tests_at);
        }
        assert!(digest.html().contains("href=\"mailto:real@contoso.com\""));
    }

    #[test]
    fn large_digests_are_capped_with_the_total_stated() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let leads: Vec<_> = (0..MAX_DETAILED_LEADS + 5)
            .map(|i| stored(&format!(r#"{{"UserDetails":{{"FirstName":"N{i}"}}}}"#), at))
            .collect();
        let digest = Digest::new(window(), &leads);
        assert!(digest.subject().starts_with("205 new marketplace leads"));
        for part in [digest.text(), digest.html()] {
            assert!(part.contains("N199"));
            assert!(!part.contains("N200"));
            assert!(part.contains("5 more"), "{}", &part[part.len() - 400..]);
        }
    }
}
