//! Which lead to call first: `hot`, `warm` or `cold`, with its reasons in
//! short phrases a sales person reads at a glance ("asked to be contacted",
//! "company email domain", "personal mailbox (gmail.com)").
//!
//! The rating is a function of the lead alone. Each signal the lead shows
//! weighs what [`RULES`] says — the rules are that table, data, not
//! scattered `if`s — and the sum decides the level ([`HOT_FROM`],
//! [`WARM_FROM`]). Partner Center's test leads and "do not contact" leads
//! are never hot: they are cold, saying why. Free-mail domains come from
//! the npm package `free-email-domains` (its data in
//! `data/free-email-domains.txt`, pinned; `scripts/update-free-email-domains`
//! updates it), disposable ones from the `mailchecker` crate's list
//! (pinned in Cargo.lock), each looked up in a sorted copy.
//!
//! A lead is rated once, when it is stored, and keeps that rating: the
//! rules may change, history is re-rated only when asked (`handler leads
//! rate`). [`RULES_VERSION`] names the rules a rating came from.

use super::Lead;
use std::fmt;
use std::sync::OnceLock;

/// Bumped whenever [`RULES`] or the thresholds change.
pub const RULES_VERSION: u32 = 1;
/// A score at least this is hot...
pub const HOT_FROM: i32 = 50;
/// ...at least this, warm; below, cold.
pub const WARM_FROM: i32 = 20;

/// How good a lead looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Hot,
    Warm,
    Cold,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Warm => "warm",
            Self::Cold => "cold",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "hot" => Some(Self::Hot),
            "warm" => Some(Self::Warm),
            "cold" => Some(Self::Cold),
            _ => None,
        }
    }

    /// "Hot", "Warm", "Cold": as CRMs spell their choices.
    pub fn title(self) -> &'static str {
        match self {
            Self::Hot => "Hot",
            Self::Warm => "Warm",
            Self::Cold => "Cold",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lead's rating: its level, the score it came from, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub level: Level,
    pub score: i32,
    pub reasons: Vec<String>,
    /// The [`RULES_VERSION`] it was rated under.
    pub rules: u32,
}

impl Rating {
    /// The reasons on one line: "asked to be contacted · phone given".
    pub fn why(&self) -> String {
        self.reasons.join(" · ")
    }
}

/// Something a lead shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    AskedToBeContacted,
    BoughtInThePortal,
    StartedATestDrive,
    InstalledOnly,
    CompanyEmailDomain,
    PersonalMailbox,
    DisposableMailbox,
    NoEmail,
    PhoneGiven,
    JobTitleGiven,
    NoCompany,
    WroteANote,
}

/// What a signal weighs, and how it reads (`{domain}`: the email's).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub signal: Signal,
    pub weight: i32,
    pub reason: &'static str,
}

/// The rules, in the order their reasons are shown. A customer who asks to
/// be contacted or buys, from a company address, with a phone, is hot; an
/// install from a personal mailbox is cold.
pub const RULES: &[Rule] = &[
    Rule {
        signal: Signal::AskedToBeContacted,
        weight: 40,
        reason: "asked to be contacted",
    },
    Rule {
        signal: Signal::BoughtInThePortal,
        weight: 40,
        reason: "bought in the Azure portal",
    },
    Rule {
        signal: Signal::StartedATestDrive,
        weight: 25,
        reason: "started a test drive",
    },
    Rule {
        signal: Signal::InstalledOnly,
        weight: 0,
        reason: "installed only",
    },
    Rule {
        signal: Signal::CompanyEmailDomain,
        weight: 20,
        reason: "company email domain",
    },
    Rule {
        signal: Signal::PersonalMailbox,
        weight: -15,
        reason: "personal mailbox ({domain})",
    },
    Rule {
        signal: Signal::DisposableMailbox,
        weight: -40,
        reason: "disposable mailbox ({domain})",
    },
    Rule {
        signal: Signal::NoEmail,
        weight: -20,
        reason: "no email",
    },
    Rule {
        signal: Signal::PhoneGiven,
        weight: 10,
        reason: "phone given",
    },
    Rule {
        signal: Signal::JobTitleGiven,
        weight: 5,
        reason: "job title given",
    },
    Rule {
        signal: Signal::NoCompany,
        weight: -10,
        reason: "no company",
    },
    Rule {
        signal: Signal::WroteANote,
        weight: 10,
        reason: "wrote a note",
    },
];

/// A note shorter than this says nothing (`" "`, `"Campaigns: "`).
const NOTE_MIN_CHARS: usize = 12;

/// Rates `lead` under the current [`RULES`].
pub fn rate(lead: &Lead) -> Rating {
    let email = lead
        .customer
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| e.contains('@'));
    let domain = email
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let signals = signals(lead, email, &domain);
    let mut score = 0;
    let mut reasons = Vec::new();
    for rule in RULES.iter().filter(|rule| signals.contains(&rule.signal)) {
        score += rule.weight;
        reasons.push(rule.reason.replace("{domain}", &domain));
    }
    let mut level = if score >= HOT_FROM {
        Level::Hot
    } else if score >= WARM_FROM {
        Level::Warm
    } else {
        Level::Cold
    };
    // Never someone to call first, whatever else they show.
    let overrides = [
        (lead.is_test, "Partner Center test lead"),
        (lead.is_do_not_contact(), "do not contact"),
    ];
    for (applies, reason) in overrides.iter().rev() {
        if *applies {
            level = Level::Cold;
            reasons.insert(0, (*reason).to_owned());
        }
    }
    Rating {
        level,
        score,
        reasons,
        rules: RULES_VERSION,
    }
}

fn signals(lead: &Lead, email: Option<&str>, domain: &str) -> Vec<Signal> {
    let mut found = Vec::with_capacity(6);
    match lead.action().map(str::to_ascii_uppercase).as_deref() {
        Some("PLT") => found.push(Signal::AskedToBeContacted),
        Some("CREATE") => found.push(Signal::BoughtInThePortal),
        Some("STARTTESTDRIVE") => found.push(Signal::StartedATestDrive),
        Some("INS") => found.push(Signal::InstalledOnly),
        _ => {}
    }
    match email {
        None => found.push(Signal::NoEmail),
        Some(_) if is_disposable(domain) => found.push(Signal::DisposableMailbox),
        Some(_) if is_free_mail(domain) => found.push(Signal::PersonalMailbox),
        Some(_) => found.push(Signal::CompanyEmailDomain),
    }
    let given = |value: &Option<String>| value.as_deref().is_some_and(|v| !v.trim().is_empty());
    let c = &lead.customer;
    if given(&c.phone) {
        found.push(Signal::PhoneGiven);
    }
    if given(&c.title) {
        found.push(Signal::JobTitleGiven);
    }
    if !given(&c.company) {
        found.push(Signal::NoCompany);
    }
    let note = lead
        .description
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if note.chars().count() >= NOTE_MIN_CHARS && !note.starts_with("Campaigns:") {
        found.push(Signal::WroteANote);
    }
    found
}

/// The free-mail domains, from the pinned package's data.
fn free_mail_domains() -> &'static [&'static str] {
    static DOMAINS: OnceLock<Vec<&'static str>> = OnceLock::new();
    DOMAINS.get_or_init(|| {
        let mut domains: Vec<&'static str> = include_str!("data/free-email-domains.txt")
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .collect();
        domains.sort_unstable();
        domains
    })
}

/// Whether `domain` (lowercase) is a free mail provider's.
pub fn is_free_mail(domain: &str) -> bool {
    !domain.is_empty() && free_mail_domains().binary_search(&domain).is_ok()
}

/// The disposable mailbox domains of the pinned `mailchecker` crate, sorted
/// once: its own `is_valid` scans all ~56,000 for each suffix of each
/// address (60 µs a lead, a fifth of ingest's CPU); a binary search is
/// well under a microsecond.
fn disposable_domains() -> &'static [&'static str] {
    static DOMAINS: OnceLock<Vec<&'static str>> = OnceLock::new();
    DOMAINS.get_or_init(|| {
        let mut domains = mailchecker::blacklist();
        domains.sort_unstable();
        domains
    })
}

/// Whether `domain` (lowercase) or a domain it is under belongs to a
/// disposable mailbox service (`x.mailinator.com` does).
pub fn is_disposable(domain: &str) -> bool {
    let list = disposable_domains();
    let mut rest = domain;
    loop {
        if list.binary_search(&rest).is_ok() {
            return true;
        }
        match rest.split_once('.') {
            Some((_, parent)) if parent.contains('.') => rest = parent,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(body: &str) -> Lead {
        Lead::parse(body.as_bytes()).unwrap()
    }

    fn rated(body: &str) -> (Level, String) {
        let rating = rate(&lead(body));
        (rating.level, rating.why())
    }

    #[test]
    fn the_lists_are_the_pinned_packages() {
        let header = include_str!("data/free-email-domains.txt")
            .lines()
            .next()
            .unwrap();
        assert!(header.starts_with("# free-email-domains@1.12.6 (npm), 14125 domains"));
        assert_eq!(free_mail_domains().len(), 14_125);
        for free in [
            "gmail.com",
            "outlook.com",
            "yahoo.co.jp",
            "web.de",
            "qq.com",
        ] {
            assert!(is_free_mail(free), "{free}");
        }
        for company in ["contoso.com", "fabrikam.co.jp", "microsoft.com", ""] {
            assert!(!is_free_mail(company), "{company}");
        }
        assert!(is_disposable("mailinator.com"));
        assert!(is_disposable("sub.guerrillamailblock.com"));
        assert!(!is_disposable("contoso.com") && !is_disposable("com") && !is_disposable(""));
        // Every domain of the crate's list, and under it, as the crate's
        // own check says; addresses it finds fine are fine here too.
        for domain in mailchecker::blacklist().iter().step_by(7) {
            assert!(is_disposable(domain), "{domain}");
            assert!(is_disposable(&format!("mx.{domain}")), "{domain}");
        }
        for fine in ["gmail.com", "contoso.co.jp", "mail.fabrikam.example"] {
            assert!(mailchecker::is_valid(&format!("someone@{fine}")));
            assert!(!is_disposable(fine), "{fine}");
        }
    }

    #[test]
    fn who_to_call_first() {
        assert_eq!(
            rated(r#"{"UserDetails":{"FirstName":"Aiko","Email":"aiko@fabrikam.co.jp","Phone":"+81 3","Company":"Fabrikam","Title":"CTO"},"ActionCode":"PLT","Description":"Please call me about 500 seats"}"#),
            (
                Level::Hot,
                "asked to be contacted · company email domain · phone given · job title given · wrote a note".into()
            )
        );
        assert_eq!(
            rated(r#"{"UserDetails":{"Email":"bob@gmail.com"},"ActionCode":"INS"}"#),
            (
                Level::Cold,
                "installed only · personal mailbox (gmail.com) · no company".into()
            )
        );
        assert_eq!(
            rated(
                r#"{"UserDetails":{"Email":"eve@mailinator.com","Company":"X"},"ActionCode":"PLT"}"#
            )
            .0,
            Level::Cold
        );
        assert_eq!(
            rated(
                r#"{"UserDetails":{"Email":"kim@contoso.com","Company":"Contoso"},"ActionCode":"INS"}"#
            ),
            (Level::Warm, "installed only · company email domain".into())
        );
    }

    #[test]
    fn test_leads_and_do_not_contact_are_never_hot() {
        let (level, why) = rated(
            r#"{"UserDetails":{"FirstName":"MSFT_TEST_636573304831318844","Email":"MSFT_TEST_636573304831318844@test.com","Phone":"1234567890","Company":"MSFT_TEST","Title":"MSFT_TEST"},"LeadSource":"AzureMarketplace","ActionCode":"PLT","Description":"a long enough note here"}"#,
        );
        assert_eq!(level, Level::Cold);
        assert!(why.starts_with("Partner Center test lead"), "{why}");
        let (level, why) = rated(
            r#"{"UserDetails":{"Email":"a@contoso.com","Phone":"1","Company":"Contoso"},"LeadSource":"SPZA-DNC|p.o","ActionCode":"DNC"}"#,
        );
        assert_eq!(level, Level::Cold);
        assert!(why.starts_with("do not contact"), "{why}");
    }

    #[test]
    fn levels_read_back() {
        for level in [Level::Hot, Level::Warm, Level::Cold] {
            assert_eq!(Level::parse(level.as_str()), Some(level));
            assert_eq!(Level::parse(level.title()), Some(level));
        }
        assert_eq!(Level::parse("tepid"), None);
    }

    /// The README's table is the rules: same order, same words, same
    /// weights, same thresholds.
    #[test]
    fn the_readme_documents_these_rules() {
        let readme = include_str!("../../README.md");
        let rows: Vec<(String, i32)> = readme
            .lines()
            .skip_while(|l| !l.starts_with("| The lead shows |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let reason = cells[2]
                    .replace("(gmail.com)", "({domain})")
                    .replace("(mailinator.com)", "({domain})");
                let weight = cells[3].replace('−', "-").replace('+', "");
                (reason, weight.parse().unwrap())
            })
            .collect();
        let rules: Vec<(String, i32)> = RULES
            .iter()
            .map(|r| (r.reason.to_owned(), r.weight))
            .collect();
        assert_eq!(rows, rules);
        assert!(readme.contains(&format!("score of **{HOT_FROM} or more is hot**")));
        assert!(readme.contains(&format!("**{WARM_FROM} or more warm**")));
    }
}
