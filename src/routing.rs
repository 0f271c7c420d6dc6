//! Which destinations get a lead: one value, [`Routes`], that ingest uses to
//! write a new lead's pending records, backfill to pick older leads, and
//! `handler route` to explain both.
//!
//! Each destination has a [`Filter`]: by offer (the offer id of
//! `LeadSource`, `publisher.offer`, or the offer's title; exact, or with
//! `*` standing for any text; case ignored), by action (`INS`, `PLT`,
//! `Create`, `StartTestDrive`, `DNC`, …), by test leads, and by rating
//! (`hot`, `warm`, `cold`: the lead's, given when it was stored; a lead
//! stored before ratings has none and passes no rating filter). No filter
//! is every lead — but two kinds of lead are held back unless asked for:
//!
//! - **Do Not Contact** (`DNC`): the customer asked a cross-listed partner
//!   to contact them, not this publisher. It is kept and in the digest,
//!   and goes only to a destination whose actions name `DNC` (or to a CRM
//!   that can mark it "do not contact", with `CRM_INCLUDE_DNC`).
//! - **Partner Center's test leads** reach a CRM only with
//!   `CRM_INCLUDE_TEST_LEADS` (or the destination's own test setting).

use crate::domain::{DestinationName, Lead, Level};
use std::fmt;

/// Which leads a destination takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Empty: every offer.
    pub offers: Vec<Pattern>,
    /// Empty: every action but `DNC`.
    pub actions: Vec<String>,
    pub test_leads: TestLeads,
    /// Takes `DNC` leads without naming the action (a CRM that marks them).
    pub do_not_contact: bool,
    /// Empty: every rating (and unrated leads).
    pub ratings: Vec<Level>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestLeads {
    Included,
    Excluded,
    /// Only Partner Center's test leads (to check a channel).
    Only,
}

impl Filter {
    /// Every lead but `DNC` ones; test leads as said.
    pub fn all(test_leads: TestLeads) -> Self {
        Self {
            offers: Vec::new(),
            actions: Vec::new(),
            test_leads,
            do_not_contact: false,
            ratings: Vec::new(),
        }
    }

    /// Whether `lead` passes, and why (or why not), in words.
    pub fn check(&self, lead: &Lead) -> Result<String, String> {
        match (self.test_leads, lead.is_test) {
            (TestLeads::Excluded, true) => return Err("a test lead: test leads excluded".into()),
            (TestLeads::Only, false) => return Err("not a test lead: test leads only".into()),
            _ => {}
        }
        let action = lead.action();
        let named = |a: &str| self.actions.iter().any(|x| x.eq_ignore_ascii_case(a));
        if lead.is_do_not_contact() {
            if !(named("DNC") || self.do_not_contact) {
                return Err("do not contact (DNC): only to destinations that name DNC".into());
            }
        } else if !self.actions.is_empty() {
            match action {
                Some(a) if named(a) => {}
                Some(a) => {
                    return Err(format!(
                        "action {a} is not one of {}",
                        self.actions.join(", ")
                    ))
                }
                None => return Err("the lead names no action".into()),
            }
        }
        let mut why = Vec::new();
        if !self.offers.is_empty() {
            let candidates = [lead.offer_id(), lead.offer_title.as_deref()];
            let matched = self.offers.iter().find_map(|pattern| {
                // The same reading as Pattern::matches_lead, naming what matched.
                candidates
                    .iter()
                    .flatten()
                    .find(|c| pattern.matches(c))
                    .map(|c| format!("offer {c:?} matches {pattern}"))
            });
            match matched {
                Some(m) => why.push(m),
                None => {
                    let offer = lead
                        .offer_id()
                        .or(lead.offer_title.as_deref())
                        .unwrap_or("(none)");
                    return Err(format!(
                        "offer {offer:?} matches none of {}",
                        self.offers
                            .iter()
                            .map(Pattern::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        if let (false, Some(a)) = (self.actions.is_empty(), action) {
            why.push(format!("action {a}"));
        }
        if !self.ratings.is_empty() {
            let wanted = || {
                self.ratings
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            // The reasons are the lead's to show (route prints them once).
            match &lead.rating {
                Some(rating) if self.ratings.contains(&rating.level) => {
                    why.push(format!("rated {}", rating.level));
                }
                Some(rating) => return Err(format!("rated {}, not {}", rating.level, wanted())),
                None => {
                    return Err(format!(
                        "not rated (stored before ratings), not {}",
                        wanted()
                    ))
                }
            }
        }
        if lead.is_do_not_contact() {
            why.push("do not contact, as this destination asks".into());
        }
        if lead.is_test {
            why.push("a test lead".into());
        }
        Ok(if why.is_empty() {
            "every lead".into()
        } else {
            why.join("; ")
        })
    }

    /// Whether `lead` passes.
    pub fn takes(&self, lead: &Lead) -> bool {
        self.check(lead).is_ok()
    }
}

/// An offer pattern: exact, or with `*` for any text; case ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() || text.chars().all(|c| c == '*') && text.len() > 1 {
            return Err(format!("{text:?} is not an offer pattern"));
        }
        if text.chars().any(char::is_control) {
            return Err("an offer pattern has a control character".into());
        }
        Ok(Self(text.to_lowercase()))
    }

    pub fn matches(&self, value: &str) -> bool {
        glob(self.0.as_bytes(), value.trim().to_lowercase().as_bytes())
    }

    /// Whether `lead`'s offer — its id (`publisher.offer`) or its title —
    /// matches: as a route's `_OFFERS` and `leads list --offer` read it.
    pub fn matches_lead(&self, lead: &Lead) -> bool {
        [lead.offer_id(), lead.offer_title.as_deref()]
            .into_iter()
            .flatten()
            .any(|offer| self.matches(offer))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `*` matches any run of bytes; everything else itself. Iterative, with
/// one backtrack point, so hostile input costs at most |p|·|v|.
fn glob(pattern: &[u8], value: &[u8]) -> bool {
    let (mut p, mut v) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while v < value.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, v));
            p += 1;
        } else if p < pattern.len() && pattern[p] == value[v] {
            p += 1;
            v += 1;
        } else if let Some((sp, sv)) = star {
            p = sp + 1;
            v = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// A destination and its filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub destination: DestinationName,
    pub filter: Filter,
}

/// A destination's verdict on one lead, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub destination: DestinationName,
    pub takes: bool,
    pub why: String,
}

/// Every configured destination's route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    routes: Vec<Route>,
}

impl Routes {
    pub fn new(routes: Vec<Route>) -> Self {
        Self { routes }
    }

    /// The destinations that take `lead`, in configuration order.
    pub fn destinations_for<'a>(
        &'a self,
        lead: &'a Lead,
    ) -> impl Iterator<Item = &'a DestinationName> + 'a {
        self.routes
            .iter()
            .filter(move |r| r.filter.takes(lead))
            .map(|r| &r.destination)
    }

    /// Whether `destination` is configured and takes `lead`.
    pub fn accepts(&self, destination: &DestinationName, lead: &Lead) -> bool {
        self.route(destination)
            .is_some_and(|r| r.filter.takes(lead))
    }

    /// Every destination's verdict on `lead`, with its reason.
    pub fn explain(&self, lead: &Lead) -> Vec<Decision> {
        self.routes
            .iter()
            .map(|r| {
                let (takes, why) = match r.filter.check(lead) {
                    Ok(why) => (true, why),
                    Err(why) => (false, why),
                };
                Decision {
                    destination: r.destination.clone(),
                    takes,
                    why,
                }
            })
            .collect()
    }

    pub fn route(&self, destination: &DestinationName) -> Option<&Route> {
        self.routes.iter().find(|r| &r.destination == destination)
    }

    pub fn names(&self) -> impl Iterator<Item = &DestinationName> {
        self.routes.iter().map(|r| &r.destination)
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(source: &str, title: &str, extra: &str) -> Lead {
        Lead::parse(
            format!(
                r#"{{"LeadSource":"{source}","OfferTitle":"{title}","UserDetails":{{"Email":"a@b.co"{extra}}}}}"#
            )
            .as_bytes(),
        )
        .unwrap()
    }

    fn filter(offers: &[&str], actions: &[&str]) -> Filter {
        Filter {
            offers: offers.iter().map(|o| Pattern::parse(o).unwrap()).collect(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
            ..Filter::all(TestLeads::Included)
        }
    }

    #[test]
    fn globs() {
        for (pattern, value, expected) in [
            ("fabrikam.analytics", "Fabrikam.Analytics", true),
            ("fabrikam.*", "fabrikam.analytics", true),
            ("*analytics*", "contoso analytics pro", true),
            ("*.analytics", "fabrikam.analytics-free", false),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("*", "", true),
            ("a", "ab", false),
        ] {
            assert_eq!(
                Pattern::parse(pattern).unwrap().matches(value),
                expected,
                "{pattern} ~ {value}"
            );
        }
        assert!(Pattern::parse(" ").is_err());
        assert!(Pattern::parse("**").is_err());
        // Hostile: many stars against a long value ends quickly.
        let many = Pattern::parse(&"*a".repeat(100)).unwrap();
        assert!(!many.matches(&"a".repeat(99)));
    }

    #[test]
    fn offers_by_id_or_title() {
        let by_id = filter(&["fabrikam.analytics"], &[]);
        let analytics = lead("SPZA-PLT|fabrikam.analytics", "Contoso Analytics", "");
        let gateway = lead("SPZA-PLT|fabrikam.gateway", "Contoso Gateway", "");
        assert!(by_id.takes(&analytics) && !by_id.takes(&gateway));
        let by_title = filter(&["contoso analytics"], &[]);
        assert!(by_title.takes(&analytics) && !by_title.takes(&gateway));
        let either = filter(&["*gateway*", "fabrikam.analytics"], &[]);
        assert!(either.takes(&analytics) && either.takes(&gateway));
        assert_eq!(
            by_id.check(&gateway).unwrap_err(),
            "offer \"fabrikam.gateway\" matches none of fabrikam.analytics"
        );
    }

    #[test]
    fn a_malformed_lead_source_falls_back_to_the_title() {
        let odd = lead("AzureMarketplace", "Contoso Analytics", "");
        assert_eq!(odd.offer_id(), None);
        assert!(filter(&["contoso*"], &[]).takes(&odd));
        assert!(!filter(&["fabrikam.*"], &[]).takes(&odd));
        assert!(!filter(&[], &["PLT"]).takes(&odd), "no action to match");
        assert!(Filter::all(TestLeads::Included).takes(&odd));
    }

    #[test]
    fn actions_and_do_not_contact() {
        let contact = lead("SPZA-PLT|f.a", "A", "");
        let install = lead("AzureMarketplace-INS|f.a", "A", "");
        let dnc = lead("SPZA-DNC|f.a", "A", "");
        let plt = filter(&[], &["plt", "Create"]);
        assert!(plt.takes(&contact) && !plt.takes(&install) && !plt.takes(&dnc));
        let all = Filter::all(TestLeads::Included);
        assert!(all.takes(&contact) && all.takes(&install));
        assert!(!all.takes(&dnc), "DNC goes nowhere unless named");
        assert!(filter(&[], &["DNC"]).takes(&dnc));
        assert!(!filter(&[], &["DNC"]).takes(&contact), "only DNC then");
        let crm = Filter {
            do_not_contact: true,
            ..Filter::all(TestLeads::Excluded)
        };
        assert!(crm.takes(&dnc) && crm.takes(&contact));
    }

    #[test]
    fn a_route_can_take_hot_leads_only() {
        let hot_only = Filter {
            ratings: vec![Level::Hot],
            ..Filter::all(TestLeads::Included)
        };
        let hot = Lead::parse(
            br#"{"UserDetails":{"Email":"a@contoso.com","Company":"Contoso","Phone":"1"},"ActionCode":"PLT","Description":"Please call me soon"}"#,
        )
        .unwrap()
        .rated();
        let cold = Lead::parse(br#"{"UserDetails":{"Email":"b@gmail.com"},"ActionCode":"INS"}"#)
            .unwrap()
            .rated();
        let unrated = Lead::parse(br#"{"UserDetails":{"Email":"a@contoso.com"}}"#).unwrap();
        let why = hot_only.check(&hot).unwrap();
        assert_eq!(why, "rated hot");
        let not = hot_only.check(&cold).unwrap_err();
        assert_eq!(not, "rated cold, not hot");
        assert!(not.ends_with("not hot"), "{not}");
        assert!(hot_only
            .check(&unrated)
            .unwrap_err()
            .starts_with("not rated"));
    }

    #[test]
    fn test_leads() {
        let test = lead("SPZA-PLT|f.a", "A", r#","FirstName":"MSFT_TEST_x""#);
        assert!(test.is_test);
        let real = lead("SPZA-PLT|f.a", "A", "");
        assert!(Filter::all(TestLeads::Included).takes(&test));
        assert!(!Filter::all(TestLeads::Excluded).takes(&test));
        assert!(Filter::all(TestLeads::Only).takes(&test));
        assert!(!Filter::all(TestLeads::Only).takes(&real));
    }

    #[test]
    fn routes_explain_what_they_decide() {
        let name = |n: &str| DestinationName::parse(n).unwrap();
        let routes = Routes::new(vec![
            Route {
                destination: name("teams:analytics"),
                filter: filter(&["fabrikam.analytics"], &[]),
            },
            Route {
                destination: name("hubspot"),
                filter: Filter::all(TestLeads::Excluded),
            },
        ]);
        let analytics = lead("SPZA-PLT|fabrikam.analytics", "Contoso Analytics", "");
        let gateway = lead("SPZA-PLT|fabrikam.gateway", "G", "");
        let to: Vec<_> = routes
            .destinations_for(&analytics)
            .map(|d| d.to_string())
            .collect();
        assert_eq!(to, ["teams:analytics", "hubspot"]);
        let to: Vec<_> = routes
            .destinations_for(&gateway)
            .map(|d| d.to_string())
            .collect();
        assert_eq!(to, ["hubspot"]);
        let explained = routes.explain(&gateway);
        assert!(!explained[0].takes && explained[0].why.contains("matches none"));
        assert!(explained[1].takes);
        assert!(routes.accepts(&name("hubspot"), &gateway));
        assert!(!routes.accepts(&name("teams"), &gateway), "not configured");
    }
}
