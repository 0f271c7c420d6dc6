//! Rendering a digest: the subject line, a plain-text part and an HTML part.
//!
//! Customer-entered text is hostile: the HTML comes from askama templates,
//! which escape every value, and no customer text ever reaches the subject
//! (a mail header). The message is bounded whatever the leads hold: at most
//! [`MAX_DETAILED_LEADS`] leads in detail, each shown field cut to a few
//! hundred characters ([`FIELD_CHARS`]), the rest counted, so the whole
//! message stays under [`MAX_MESSAGE_BYTES`] — far below ACS's 10 MB.

use super::card::{field, format_time, Card};
use crate::domain::TimeRange;
use crate::store::{DeadLetter, LeadRef, StoredLead};
use askama::Template;
use std::collections::BTreeMap;
use time::macros::format_description;
use time::OffsetDateTime;

/// Customer leads shown in detail; the rest are counted.
pub const MAX_DETAILED_LEADS: usize = 200;
/// Partner Center test leads shown in detail.
const MAX_DETAILED_TEST_LEADS: usize = 20;
/// Dead letters shown in detail.
const MAX_DETAILED_DEAD_LETTERS: usize = 50;
/// Offers named in the summary; the rest are counted together.
const MAX_SUMMARY_OFFERS: usize = 20;
/// Characters of a note shown in a digest's card.
const NOTE_CHARS: usize = 500;
pub use super::card::FIELD_CHARS;
/// The plain-text and HTML parts together never exceed this (checked by a
/// test with the largest leads there can be).
pub const MAX_MESSAGE_BYTES: usize = 3 * 1024 * 1024;

/// A destination that gave up on a lead, as the digest shows it.
#[derive(Debug, Clone)]
pub struct DeadRow {
    pub lead_id: String,
    pub destination: String,
    pub status: String,
    pub excerpt: String,
    pub time: String,
}

/// The customer leads of one offer, counted per action.
#[derive(Debug, Clone, Default)]
struct OfferCount {
    total: usize,
    hot: usize,
    /// Action in words → leads.
    actions: BTreeMap<String, usize>,
}

/// One line of the summary: "Contoso Analytics: 3 (2 asked to be
/// contacted, 1 installed)".
#[derive(Debug, Clone)]
pub struct OfferLine {
    pub offer: String,
    pub total: usize,
    /// Of those, rated hot.
    pub hot: usize,
    pub actions: String,
}

/// A digest being put together: leads are added one at a time, and only
/// what is shown is kept.
#[derive(Debug, Clone, Default)]
pub struct Digest {
    /// Receive times of the earliest and latest lead added.
    span: Option<(OffsetDateTime, OffsetDateTime)>,
    customers: Vec<Card>,
    tests: Vec<Card>,
    /// Customer leads per offer (title, or id; "(no offer)").
    offers: BTreeMap<String, OfferCount>,
    customer_total: usize,
    test_total: usize,
    dead: Vec<DeadRow>,
    dead_total: usize,
    rejected: usize,
    /// Leads left pending for the next digest (over the per-digest limit).
    waiting: usize,
}

impl Digest {
    pub fn new() -> Self {
        Self::default()
    }

    /// A digest of `leads`, for tests and dry runs.
    pub fn of(leads: &[StoredLead]) -> Self {
        let mut digest = Self::new();
        for lead in leads {
            digest.count_lead(&crate::store::outbox::lead_ref(lead), lead.received_at);
            digest.show_lead(lead);
        }
        digest
    }

    /// Counts a lead, under its offer and action; whether it is also
    /// shown is [`Digest::wants_details`]'s call.
    pub fn count_lead(&mut self, lead: &LeadRef, received_at: OffsetDateTime) {
        if lead.is_test {
            self.test_total += 1;
        } else {
            self.customer_total += 1;
            let offer = lead.offer.as_deref().map(field).filter(|o| !o.is_empty());
            let count = self
                .offers
                .entry(offer.unwrap_or_else(|| "(no offer named)".to_owned()))
                .or_default();
            count.total += 1;
            if lead.rating == Some(crate::domain::Level::Hot) {
                count.hot += 1;
            }
            let action = crate::domain::action_in_words(lead.action.as_deref());
            *count
                .actions
                .entry(if action.is_empty() {
                    "no action given".to_owned()
                } else {
                    field(&action)
                })
                .or_default() += 1;
        }
        self.span = Some(match self.span {
            None => (received_at, received_at),
            Some((first, last)) => (first.min(received_at), last.max(received_at)),
        });
    }

    /// Whether another lead of this kind would be shown in detail.
    pub fn wants_details(&self, is_test: bool) -> bool {
        if is_test {
            self.tests.len() < MAX_DETAILED_TEST_LEADS
        } else {
            self.customers.len() < MAX_DETAILED_LEADS
        }
    }

    /// Shows a counted lead in detail, if there is room — or, a customer
    /// lead rated hotter than the coldest shown, in its place: the leads
    /// to call first are never the ones left out.
    pub fn show_lead(&mut self, stored: &StoredLead) {
        if stored.lead.is_test {
            if self.wants_details(true) {
                self.tests.push(Card::new(stored, NOTE_CHARS));
            }
            return;
        }
        // Customers are kept in order — hot, warm, cold, unrated, each as
        // they came — so the coldest shown is the last.
        let order = call_order(stored.lead.level());
        if !self.wants_details(false) {
            match self.customers.last() {
                Some(coldest) if call_order(coldest.level) > order => {
                    self.customers.pop();
                }
                _ => return,
            }
        }
        let at = self
            .customers
            .partition_point(|card| call_order(card.level) <= order);
        self.customers.insert(at, Card::new(stored, NOTE_CHARS));
    }

    /// A destination gave up on a lead.
    pub fn add_dead_letter(&mut self, lead_id: &str, dead: &DeadLetter) {
        self.dead_total += 1;
        if self.dead.len() < MAX_DETAILED_DEAD_LETTERS {
            self.dead.push(DeadRow {
                lead_id: field(lead_id),
                destination: field(&dead.destination),
                status: field(&dead.last_status),
                excerpt: field(&dead.excerpt),
                time: format_time(dead.died_at),
            });
        }
    }

    /// Bodies LeadIngest refused since the last digest.
    pub fn set_rejected(&mut self, rejected: usize) {
        self.rejected = rejected;
    }

    /// Leads left for the next digest.
    pub fn set_waiting(&mut self, waiting: usize) {
        self.waiting = waiting;
    }

    /// Whether there is anything to send.
    pub fn is_empty(&self) -> bool {
        self.customer_total + self.test_total + self.dead_total + self.rejected == 0
    }

    pub fn lead_count(&self) -> usize {
        self.customer_total + self.test_total
    }

    /// The receive times of the first and last lead, as a range (its end
    /// just after the last lead).
    pub fn span(&self) -> Option<TimeRange> {
        self.span
            .and_then(|(first, last)| TimeRange::new(first, last + time::Duration::MICROSECOND))
    }

    /// E.g. `3 new marketplace leads + 1 test lead · 22 Nov 09:59–10:59
    /// UTC`. Built only from counts and times: no customer text in a header.
    pub fn subject(&self) -> String {
        let plural = |n: usize, one: &str, many: &str| match n {
            1 => format!("1 {one}"),
            n => format!("{n} {many}"),
        };
        let mut subject = match (self.customer_total, self.test_total) {
            (0, 0) => "No new leads".to_owned(),
            (0, tests) => format!(
                "{}, no customer leads",
                plural(
                    tests,
                    "Partner Center test lead",
                    "Partner Center test leads"
                )
            ),
            (customers, tests) => {
                let mut s = plural(customers, "new marketplace lead", "new marketplace leads");
                if tests > 0 {
                    s.push_str(&format!(" + {}", plural(tests, "test lead", "test leads")));
                }
                s
            }
        };
        if self.dead_total > 0 {
            subject.push_str(&format!(" + {} not delivered", self.dead_total));
        }
        if self.span.is_some() {
            subject.push_str(&format!(" · {}", self.window_label()));
        }
        subject
    }

    /// The summary's lines: offers with the most leads first.
    fn offer_lines(&self) -> (Vec<OfferLine>, usize) {
        let mut offers: Vec<(&String, &OfferCount)> = self.offers.iter().collect();
        offers.sort_by(|a, b| b.1.total.cmp(&a.1.total).then(a.0.cmp(b.0)));
        let others: usize = offers
            .iter()
            .skip(MAX_SUMMARY_OFFERS)
            .map(|(_, c)| c.total)
            .sum();
        let lines = offers
            .into_iter()
            .take(MAX_SUMMARY_OFFERS)
            .map(|(offer, count)| {
                let mut actions: Vec<(&String, &usize)> = count.actions.iter().collect();
                actions.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                OfferLine {
                    offer: offer.clone(),
                    total: count.total,
                    hot: count.hot,
                    actions: actions
                        .iter()
                        .map(|(action, n)| format!("{n} {action}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                }
            })
            .collect();
        (lines, others)
    }

    fn window_label(&self) -> String {
        let day = format_description!("[day padding:none] [month repr:short]");
        let clock = format_description!("[hour]:[minute]");
        let Some((start, end)) = self.span else {
            return String::new();
        };
        let fmt = |at: OffsetDateTime, f: &[time::format_description::FormatItem<'_>]| {
            at.format(f).unwrap_or_default()
        };
        if fmt(start, clock) == fmt(end, clock) && start.date() == end.date() {
            return format!("{} {} UTC", fmt(end, day), fmt(end, clock));
        }
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
        let (offers, other_offers) = self.offer_lines();
        View {
            subject: self.subject(),
            offers,
            other_offers,
            window: self.window_label(),
            customers: &self.customers,
            tests: &self.tests,
            customer_total: self.customer_total,
            test_total: self.test_total,
            customers_hidden: self.customer_total - self.customers.len(),
            tests_hidden: self.test_total - self.tests.len(),
            dead: &self.dead,
            dead_total: self.dead_total,
            dead_hidden: self.dead_total - self.dead.len(),
            rejected: self.rejected,
            waiting: self.waiting,
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
    offers: Vec<OfferLine>,
    /// Customer leads of offers beyond [`MAX_SUMMARY_OFFERS`].
    other_offers: usize,
    window: String,
    customers: &'a [Card],
    tests: &'a [Card],
    customer_total: usize,
    test_total: usize,
    customers_hidden: usize,
    tests_hidden: usize,
    dead: &'a [DeadRow],
    dead_total: usize,
    dead_hidden: usize,
    rejected: usize,
    waiting: usize,
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

/// Where a level sorts: hot, warm, cold (as `Level` orders), unrated last.
fn call_order(level: Option<crate::domain::Level>) -> (bool, Option<crate::domain::Level>) {
    (level.is_none(), level)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::stored_at as stored;
    use time::macros::datetime;

    #[test]
    fn subject_counts_and_the_span_of_receive_times() {
        let leads = [
            stored(
                r#"{"UserDetails":{"FirstName":"A"}}"#,
                datetime!(2026-11-22 09:59:40 UTC),
            ),
            stored(
                r#"{"UserDetails":{"FirstName":"B"}}"#,
                datetime!(2026-11-22 10:59:10 UTC),
            ),
            stored(
                r#"{"UserDetails":{"FirstName":"MSFT_TEST_1"}}"#,
                datetime!(2026-11-22 10:15 UTC),
            ),
        ];
        let digest = Digest::of(&leads);
        assert_eq!(
            digest.subject(),
            "2 new marketplace leads + 1 test lead · 22 Nov 09:59–10:59 UTC"
        );
        let overnight = [
            stored(r#"{"OfferTitle":"A"}"#, datetime!(2026-11-21 23:00 UTC)),
            stored(r#"{"OfferTitle":"B"}"#, datetime!(2026-11-22 00:30 UTC)),
        ];
        assert_eq!(
            Digest::of(&overnight).subject(),
            "2 new marketplace leads · 21 Nov 23:00 – 22 Nov 00:30 UTC"
        );
        assert_eq!(
            Digest::of(&overnight[..1]).subject(),
            "1 new marketplace lead · 21 Nov 23:00 UTC"
        );
    }

    #[test]
    fn hostile_text_is_escaped_in_html_and_kept_out_of_the_subject() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let body = r#"{"UserDetails":{"FirstName":"<script>alert(1)</script>","Company":"A & B\r\nBcc: x@y.z",
            "Email":"\"><img src=x onerror=alert(1)>@evil.example"},
            "OfferTitle":"<b>O</b>","Description":"it's \"quoted\" & <i>tagged</i>"}"#;
        let digest = Digest::of(&[stored(body, at)]);
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
        let text = Digest::of(&[stored(body, at)]).text();
        // The note keeps its lines, each quoted: none can start an entry.
        assert!(text.contains("  > hi\n  > \n  > 2. Fake Lead\n"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("2. Fake")), "{text}");
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
        let digest = Digest::of(&leads);
        for part in [digest.text(), digest.html()] {
            let tests_at = part
                .find("Partner Center test leads")
                .expect("test section");
            assert!(part.find("MSFT_TEST_636573304831318844").unwrap() > tests_at);
            assert!(part.find("Real").unwrap() < tests_at);
        }
        assert!(digest
            .html()
            .contains("href=\"mailto:real@contoso.com?subject=Your%20marketplace%20enquiry\""));
    }

    #[test]
    fn the_summary_counts_each_offer_by_action() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let lead = |source: &str, title: &str| {
            stored(
                &format!(r#"{{"LeadSource":"{source}","OfferTitle":"{title}"}}"#),
                at,
            )
        };
        let digest = Digest::of(&[
            lead("SPZA-PLT|f.gateway", "Gateway"),
            lead("SPZA-PLT|f.analytics", "Analytics"),
            lead("AzureMarketplace-INS|f.analytics", "Analytics"),
            lead("SPZA-PLT|f.analytics", "Analytics"),
            lead("SPZA-DNC|f.analytics", "Analytics"),
        ]);
        let text = digest.text();
        assert!(
            text.contains(
                "By offer:\n - Analytics: 4 (2 asked to be contacted, 1 do not contact, 1 \
                 installed)\n - Gateway: 1 (1 asked to be contacted)\n"
            ),
            "{text}"
        );
        let html = digest.html();
        assert!(
            html.find("Analytics</strong>: 4").unwrap() < html.find("Gateway</strong>: 1").unwrap(),
            "{html}"
        );
        let only_tests =
            Digest::of(&[stored(r#"{"UserDetails":{"FirstName":"MSFT_TEST_1"}}"#, at)]);
        assert_eq!(
            only_tests.subject(),
            "1 Partner Center test lead, no customer leads · 22 Nov 10:15 UTC"
        );
        assert!(only_tests
            .html()
            .contains("No customer leads, only Partner Center test lead"));
        assert!(only_tests
            .text()
            .contains("No customer leads, only Partner Center test leads."));
    }

    #[test]
    fn large_digests_are_capped_with_the_total_stated() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let leads: Vec<_> = (0..MAX_DETAILED_LEADS + 5)
            .map(|i| stored(&format!(r#"{{"UserDetails":{{"FirstName":"N{i}"}}}}"#), at))
            .collect();
        let digest = Digest::of(&leads);
        assert!(digest.subject().starts_with("205 new marketplace leads"));
        for part in [digest.text(), digest.html()] {
            assert!(part.contains("N199"));
            assert!(!part.contains("N200"));
            assert!(part.contains("5 more"), "{}", &part[part.len() - 400..]);
        }
    }

    /// Over the cap, a hotter lead takes the coldest card's place, the
    /// newest cold one first; a lead no hotter than the coldest shown is
    /// counted only. Shown cards stay hot first, each level as it came.
    #[test]
    fn over_the_cap_the_hot_leads_are_the_ones_shown() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let cold = |i: usize| {
            stored(
                &format!(
                    r#"{{"UserDetails":{{"FirstName":"C{i}","Email":"c{i}@gmail.com"}},"ActionCode":"INS"}}"#
                ),
                at,
            )
        };
        let hot = stored(
            r#"{"UserDetails":{"FirstName":"Hot","Email":"h@contoso.com","Company":"Contoso","Phone":"1"},"ActionCode":"PLT"}"#,
            at,
        );
        let mut leads: Vec<_> = (0..MAX_DETAILED_LEADS).map(cold).collect();
        leads.push(hot);
        leads.push(cold(MAX_DETAILED_LEADS));
        let digest = Digest::of(&leads);
        let names: Vec<&str> = digest
            .customers
            .iter()
            .map(|c| c.heading.as_str())
            .collect();
        assert_eq!(names.len(), MAX_DETAILED_LEADS);
        assert_eq!(names[0], "Hot · Contoso");
        assert_eq!(names[1], "C0");
        assert_eq!(
            names[MAX_DETAILED_LEADS - 1],
            format!("C{}", MAX_DETAILED_LEADS - 2)
        );
        assert!(digest.text().contains("2 more"));
    }

    #[test]
    fn the_message_is_bounded_whatever_the_leads_hold() {
        // The worst case: every field as long as a body allows, of the
        // characters that grow most when escaped (`"` → `&quot;`) or
        // encoded (four-byte UTF-8).
        let at = datetime!(2026-11-22 10:15 UTC);
        let worst = |fill: &str, test: bool| {
            // Longer than any shown field, and still under the body limit.
            let value = fill.repeat(1_400);
            let first = if test {
                format!("MSFT_TEST_{value}")
            } else {
                value.clone()
            };
            stored(
                &serde_json::json!({
                    "UserDetails": {"FirstName": first, "LastName": value, "Email": value,
                        "Phone": value, "Country": value, "Company": value, "Title": value},
                    "OfferTitle": value, "LeadSource": value, "ActionCode": value,
                    "Description": value,
                })
                .to_string(),
                at,
            )
        };
        let mut leads = Vec::new();
        for i in 0..(MAX_DETAILED_LEADS + 20) {
            leads.push(worst(if i % 2 == 0 { "\"" } else { "😀" }, false));
        }
        for _ in 0..25 {
            leads.push(worst("&", true));
        }
        let mut digest = Digest::of(&leads);
        let dead = DeadLetter {
            destination: "webhook".into(),
            last_status: "\"".repeat(5_000),
            excerpt: "<".repeat(5_000),
            died_at: at,
        };
        for _ in 0..(MAX_DETAILED_DEAD_LETTERS + 5) {
            digest.add_dead_letter(&"😀".repeat(1_000), &dead);
        }
        let size = digest.text().len() + digest.html().len();
        assert!(size <= MAX_MESSAGE_BYTES, "{size} bytes");
        assert!(digest.html().contains("20 more"));
    }

    #[test]
    fn dead_letters_rejections_and_waiting_leads_are_reported() {
        let at = datetime!(2026-11-22 10:15 UTC);
        let mut digest = Digest::new();
        assert!(digest.is_empty());
        digest.add_dead_letter(
            "20261122-00ff",
            &DeadLetter {
                destination: "webhook".into(),
                last_status: "HTTP 410".into(),
                excerpt: "<gone>".into(),
                died_at: at,
            },
        );
        digest.set_rejected(3);
        digest.set_waiting(7);
        assert!(!digest.is_empty());
        assert_eq!(digest.subject(), "No new leads + 1 not delivered");
        let html = digest.html();
        assert!(html.contains("could not be delivered"), "{html}");
        assert!(html.contains("&lt;gone&gt;"));
        assert!(html.contains("3 request(s) were refused"), "{html}");
        assert!(html.contains("handler leads rejected"));
        assert!(html.contains("7 more leads"), "{html}");
        let text = digest.text();
        assert!(
            text.contains("20261122-00ff") && text.contains("<gone>"),
            "{text}"
        );
        assert!(text.contains("handler deliveries retry --dead"), "{text}");
    }
}
