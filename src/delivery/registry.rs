//! Every kind of destination, and the configured destinations built from
//! the settings: each kind once per label it is set under (`NOTIFY_TO`,
//! `NOTIFY_TO__backup`), each with its route (`<PREFIX>_OFFERS`,
//! `<PREFIX>_ACTIONS`, `<PREFIX>_TEST_LEADS`, labelled the same way).
//!
//! Route settings: `<PREFIX>_OFFERS`, `_ACTIONS`, `_TEST_LEADS`, `_RATING`.
//!
//! A kind is switched on by its first setting (`NOTIFY_TO`, `WEBHOOK_URL`
//! …): the others only refine it. Empty is the same as unset everywhere,
//! so a template that writes every setting, blank where unused, configures
//! nothing it did not mean to; a setting that refines or routes a
//! destination that is not switched on is a warning naming it, not an
//! error. So is a name one letter off one we read, and an action code
//! Partner Center does not document.
//!
//! Adding a kind: its file in [`super::destinations`] (its `KIND`,
//! `PREFIX`, `TITLE`, `ABOUT` and setting names, `build`, what it sends,
//! its `Destination`) and its line in [`KINDS`]; then its parameters in
//! the Bicep and its section in the README. Everything else reads this
//! registry: the start-up check and its "did you mean", the command line's
//! help, `handler settings --list`, and through it `tests/infra`'s check
//! of the Bicep. Building does no I/O, so the command line builds the same
//! list to know the routes.

use super::destination::{Build, Destination, Family};
use super::redact::Redactor;
use crate::configuration::{
    setting, spelling, values, ConfigError, ConfigWarning, Environment, Scope, Settings,
};
use crate::domain::{DestinationName, Level};
use crate::routing::{Filter, Pattern, Route, Routes, TestLeads};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A kind of destination.
pub struct Kind {
    /// Its name in destination names: `teams`.
    pub name: &'static str,
    /// Its route settings start with this: `TEAMS_OFFERS`.
    pub prefix: &'static str,
    /// Its name for people: `Teams`.
    pub title: &'static str,
    /// What it does with a lead: `an Adaptive Card per lead in a channel`.
    pub about: &'static str,
    /// The settings that configure it: the first switches it on, the
    /// others refine it.
    pub settings: &'static [&'static str],
    /// Of those, the ones that apply to every destination of the kind when
    /// unlabelled (`NOTIFY_MAX_PER_HOUR`, the sending domain's budget).
    pub shared: &'static [&'static str],
    build: Build,
}

/// A kind from its module in [`super::destinations`].
macro_rules! kind {
    ($module:ident) => {
        kind!($module, &[])
    };
    ($module:ident, $shared:expr) => {
        Kind {
            name: super::destinations::$module::KIND,
            prefix: super::destinations::$module::PREFIX,
            title: super::destinations::$module::TITLE,
            about: super::destinations::$module::ABOUT,
            settings: super::destinations::$module::SETTINGS,
            shared: $shared,
            build: super::destinations::$module::build,
        }
    };
}

/// Every kind, in the order destinations are listed and tried.
pub const KINDS: &[Kind] = &[
    kind!(notify, &[super::destinations::notify::NOTIFY_MAX_PER_HOUR]),
    kind!(teams),
    kind!(webhook),
    kind!(dataverse),
    kind!(hubspot),
    kind!(salesforce),
    kind!(marketo),
];

/// Route settings, after a kind's prefix.
const OFFERS: &str = "_OFFERS";
const ACTIONS: &str = "_ACTIONS";
const TEST_LEADS: &str = "_TEST_LEADS";
const RATING: &str = "_RATING";
const ROUTE_SETTINGS: [&str; 4] = [OFFERS, ACTIONS, TEST_LEADS, RATING];

/// The action codes Partner Center documents (`ActionCode`, and the action
/// in `LeadSource`).
pub const ACTION_CODES: [&str; 5] = ["INS", "PLT", "Create", "StartTestDrive", "DNC"];

impl Kind {
    /// Its route settings: `TEAMS_OFFERS`, `TEAMS_ACTIONS`, …
    pub fn route_settings(&self) -> Vec<String> {
        ROUTE_SETTINGS
            .iter()
            .map(|r| format!("{}{r}", self.prefix))
            .collect()
    }
}

/// The kinds' names for people, in a list: `email, Teams, … and Marketo`.
pub fn titles() -> String {
    let titles: Vec<&str> = KINDS.iter().map(|k| k.title).collect();
    match titles.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Every setting name the handler reads, unlabelled: the configuration's,
/// each kind's and each kind's route settings.
pub fn known_settings() -> Vec<String> {
    let mut names: Vec<String> = setting::all().map(str::to_owned).collect();
    for kind in KINDS {
        names.extend(kind.settings.iter().map(|s| (*s).to_owned()));
        names.extend(kind.route_settings());
    }
    names.sort();
    names.dedup();
    names
}

/// The configured destinations and their routes.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    list: Vec<Arc<dyn Destination>>,
    routes: Routes,
    warnings: Vec<ConfigWarning>,
}

impl Destinations {
    /// Every destination the settings configure; an error names the
    /// setting that is wrong. What is only doubtful is kept in
    /// [`Destinations::warnings`].
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let env = &settings.delivery.environment;
        let mut list: Vec<Arc<dyn Destination>> = Vec::new();
        let mut routes = Vec::new();
        let mut warnings = spelling::near_misses(env.names(), &known_settings());
        let mut seen: BTreeMap<DestinationName, String> = BTreeMap::new();
        for kind in KINDS {
            let labels = labels(env, kind);
            let switched_on = labels
                .iter()
                .filter(|label| env.scope(label.as_deref()).get(kind.settings[0]).is_some())
                .count();
            for label in labels {
                let scope = env.scope(label.as_deref());
                let first = scope.name(kind.settings[0]);
                let name = DestinationName::of(kind.name, label.as_deref())
                    .map_err(|e| ConfigError::named(&first, e))?;
                if scope.get(kind.settings[0]).is_none() {
                    for set in settings_of(env, kind, scope) {
                        let shared = label.is_none() && kind.shared.contains(&set.as_str());
                        if !(shared && switched_on > 0) {
                            warnings.push(ConfigWarning::new(
                                &set,
                                format!(
                                    "applies to the destination {name}, which is not switched \
                                     on (set {first}): ignored"
                                ),
                            ));
                        }
                    }
                    continue;
                }
                let destination = (kind.build)(scope, name.clone(), settings, &mut warnings)?;
                if let Some(other) = seen.insert(name.clone(), first.clone()) {
                    return Err(ConfigError::named(
                        &first,
                        format!("configures {name} a second time (as {other} does)"),
                    ));
                }
                routes.push(Route {
                    filter: filter(scope, kind, destination.family(), settings, &mut warnings)?,
                    destination: name,
                });
                list.push(Arc::from(destination));
            }
        }
        Ok(Self {
            list,
            routes: Routes::new(routes),
            warnings,
        })
    }

    /// What the settings probably got wrong without stopping start-up:
    /// logged once at start-up, each naming its setting.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    pub fn routes(&self) -> &Routes {
        &self.routes
    }

    pub fn get(&self, name: &DestinationName) -> Option<&Arc<dyn Destination>> {
        self.list.iter().find(|d| d.name() == name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Destination>> {
        self.list.iter()
    }

    pub fn names(&self) -> Vec<DestinationName> {
        self.list.iter().map(|d| d.name().clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Redacts every credential the destinations hold.
    pub fn redactor(&self) -> Redactor {
        let secrets: Vec<_> = self.list.iter().flat_map(|d| d.secrets()).collect();
        Redactor::new(secrets.iter())
    }
}

/// The labels `kind` is set under, in order, each once.
fn labels(env: &Environment, kind: &Kind) -> Vec<Option<String>> {
    let mut labels: Vec<Option<String>> = Vec::new();
    let route = kind.route_settings();
    for setting in kind
        .settings
        .iter()
        .copied()
        .chain(route.iter().map(String::as_str))
    {
        for label in env.labels(setting) {
            if !labels.contains(&label) {
                labels.push(label);
            }
        }
    }
    labels.sort();
    labels
}

/// The settings of `kind` (its own and its routes) set under `scope`'s
/// label, as the user wrote them.
fn settings_of(env: &Environment, kind: &Kind, scope: Scope<'_>) -> Vec<String> {
    let route = kind.route_settings();
    kind.settings
        .iter()
        .copied()
        .chain(route.iter().map(String::as_str))
        .map(|s| scope.name(s))
        .filter(|name| env.get(name).is_some())
        .collect()
}

/// The destination's route: its own settings, or the defaults of its
/// family (a CRM takes test leads with `CRM_INCLUDE_TEST_LEADS`, and
/// "do not contact" leads with `CRM_INCLUDE_DNC` when it can mark them).
fn filter(
    scope: Scope<'_>,
    kind: &Kind,
    family: Family,
    settings: &Settings,
    warnings: &mut Vec<ConfigWarning>,
) -> Result<Filter, ConfigError> {
    let delivery = &settings.delivery;
    let (default_tests, do_not_contact) = match family {
        Family::Notification => (TestLeads::Included, false),
        Family::Crm {
            writes_do_not_contact,
        } => (
            if delivery.crm_test_leads {
                TestLeads::Included
            } else {
                TestLeads::Excluded
            },
            writes_do_not_contact && delivery.crm_do_not_contact,
        ),
    };
    let setting = |suffix: &str| format!("{}{suffix}", kind.prefix);
    let list = |suffix: &str| -> Result<Option<Vec<String>>, ConfigError> {
        let Some(value) = scope.get(&setting(suffix)) else {
            return Ok(None);
        };
        let items: Vec<String> = value
            .split([',', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if items.is_empty() {
            return Err(scope.error(&setting(suffix), "lists nothing, so no lead could match"));
        }
        Ok(Some(items))
    };
    let offers = match list(OFFERS)? {
        Some(items) => items
            .iter()
            .map(|o| Pattern::parse(o).map_err(|e| scope.error(&setting(OFFERS), e)))
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let actions = list(ACTIONS)?.unwrap_or_default();
    let known = ACTION_CODES.join(", ");
    for action in &actions {
        if !action.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(scope.error(
                &setting(ACTIONS),
                format!("{action:?} is not an action code ({known})"),
            ));
        }
        if !ACTION_CODES
            .iter()
            .any(|code| code.eq_ignore_ascii_case(action))
        {
            // Kept: Partner Center may add codes, and a route must not
            // stop start-up for one it does not know yet.
            warnings.push(scope.warning(
                &setting(ACTIONS),
                format!(
                    "{action:?} is not an action code Partner Center documents ({known}){}; \
                     kept, so only leads with exactly that code match it",
                    spelling::nearest(action, &ACTION_CODES)
                        .map(|code| format!(": did you mean {code}?"))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    let names_dnc = actions.iter().any(|a| a.eq_ignore_ascii_case("DNC"));
    if names_dnc
        && family
            == (Family::Crm {
                writes_do_not_contact: false,
            })
    {
        return Err(scope.error(
            &setting(ACTIONS),
            "names DNC, but this CRM cannot mark a record \"do not contact\"",
        ));
    }
    let test_leads = match scope.get(&setting(TEST_LEADS)) {
        None => default_tests,
        Some(v) if v.trim().eq_ignore_ascii_case("only") => TestLeads::Only,
        Some(v) => match values::boolean(&scope.name(&setting(TEST_LEADS)), Some(&v), false) {
            Ok(true) => TestLeads::Included,
            Ok(false) => TestLeads::Excluded,
            Err(_) => {
                return Err(scope.error(
                    &setting(TEST_LEADS),
                    "must be true (test leads too), false (no test leads) or only (test leads \
                     only)",
                ))
            }
        },
    };
    // Partner Center's test leads are installs (`AzureMarketplace`, INS):
    // "test leads only" of other actions could never match.
    if test_leads == TestLeads::Only
        && !actions.is_empty()
        && !actions.iter().any(|a| a.eq_ignore_ascii_case("INS"))
    {
        return Err(scope.error(
            &setting(TEST_LEADS),
            format!(
                "is only, but {} leaves out INS, the action of Partner Center's test leads: \
                 no lead could match",
                scope.name(&setting(ACTIONS))
            ),
        ));
    }
    let ratings = list(RATING)?
        .unwrap_or_default()
        .iter()
        .map(|r| {
            Level::parse(r).ok_or_else(|| {
                scope.error(
                    &setting(RATING),
                    format!("{r:?} is not a rating: hot, warm or cold"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !ratings.is_empty() && !settings.rate_leads {
        return Err(scope.error(
            &setting(RATING),
            "takes leads by rating, but LEAD_RATING=false rates none: no lead could match",
        ));
    }
    Ok(Filter {
        offers,
        actions,
        test_leads,
        do_not_contact: do_not_contact || names_dnc,
        ratings,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The names of the destinations `pairs` configure.
    pub fn built(pairs: &[(&str, &str)]) -> Result<Vec<String>, ConfigError> {
        let settings =
            Settings::from_vars(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))?;
        Ok(Destinations::from_settings(&settings)?
            .names()
            .iter()
            .map(|n| n.to_string())
            .collect())
    }

    const DEV: (&str, &str) = ("LEADS_STORAGE", "UseDevelopmentStorage=true");
    const TEAMS: &str = "https://prod.westus.logic.azure.com/workflows/x?sig=abc";

    #[test]
    fn nothing_configured_is_nothing() {
        assert!(built(&[DEV]).unwrap().is_empty());
    }

    #[test]
    fn named_destinations_and_their_routes() {
        let settings = Settings::from_vars(
            [
                DEV,
                ("TEAMS_WEBHOOK_URL", TEAMS),
                ("TEAMS_WEBHOOK_URL__analytics", TEAMS),
                (
                    "TEAMS_OFFERS__analytics",
                    "fabrikam.analytics, Contoso Analytics*",
                ),
                ("TEAMS_ACTIONS__analytics", "PLT;Create"),
                ("HUBSPOT_TOKEN", "pat-na1-x"),
                ("HUBSPOT_ACTIONS", "INS"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        let destinations = Destinations::from_settings(&settings).unwrap();
        let names: Vec<_> = destinations.names().iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["teams", "teams:analytics", "hubspot"]);
        let route = destinations
            .routes()
            .route(&DestinationName::parse("teams:analytics").unwrap())
            .unwrap();
        assert_eq!(route.filter.offers.len(), 2);
        assert_eq!(route.filter.actions, ["PLT", "Create"]);
        let hubspot = destinations
            .routes()
            .route(&DestinationName::parse("hubspot").unwrap())
            .unwrap();
        assert_eq!(hubspot.filter.test_leads, TestLeads::Excluded);
    }

    #[test]
    fn a_rating_route_needs_rated_leads() {
        let teams = ("TEAMS_WEBHOOK_URL__sales", TEAMS);
        let hot = ("TEAMS_RATING__sales", "hot, warm");
        assert_eq!(built(&[DEV, teams, hot]).unwrap(), ["teams:sales"]);
        let tepid = built(&[DEV, teams, ("TEAMS_RATING__sales", "tepid")]).unwrap_err();
        assert_eq!(tepid.setting, "TEAMS_RATING__sales");
        let off = built(&[DEV, teams, hot, ("LEAD_RATING", "false")]).unwrap_err();
        assert_eq!(off.setting, "TEAMS_RATING__sales");
        assert!(off.reason.contains("LEAD_RATING=false"), "{off}");
        let bad = built(&[DEV, ("LEAD_RATING", "sometimes")]).unwrap_err();
        assert_eq!(bad.setting, "LEAD_RATING");
    }

    /// What `pairs` (with development storage) is warned about: (setting,
    /// message) pairs.
    fn warnings(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        let settings = Settings::from_vars(
            [&[DEV], pairs]
                .concat()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .unwrap();
        Destinations::from_settings(&settings)
            .unwrap()
            .warnings()
            .iter()
            .map(|w| (w.setting.clone(), w.message.clone()))
            .collect()
    }

    /// A template writes every setting, blank where unused, and a default
    /// for caps and options: that switches nothing on and stops nothing.
    #[test]
    fn blank_switches_leave_refinements_as_warnings() {
        let blank_but_defaults = [
            ("NOTIFY_TO", ""),
            ("NOTIFY_MAX_PER_HOUR", "10"),
            ("WEBHOOK_URL", " "),
            ("WEBHOOK_SECRET", ""),
            ("SALESFORCE_URL", ""),
            ("SALESFORCE_EXTERNAL_ID_FIELD", "MarketplaceLeadId__c"),
            ("SALESFORCE_COUNTRY_PICKLISTS", "False"),
            ("HUBSPOT_API_URL", "https://api.hubapi.com"),
            ("DATAVERSE_CLIENT_ID", "x"),
            ("TEAMS_OFFERS", ""),
            ("TEAMS_OFFERS__sales", "contoso.*"),
            ("NOTIFY_MAX_PER_HOUR__backup", "5"),
            ("CRM_INCLUDE_DNC", "False"),
        ];
        assert!(built(&[&[DEV], &blank_but_defaults[..]].concat())
            .unwrap()
            .is_empty());
        let warned: Vec<String> = warnings(&blank_but_defaults)
            .into_iter()
            .map(|(setting, message)| {
                assert!(message.contains("not switched on"), "{setting}: {message}");
                setting
            })
            .collect();
        assert_eq!(
            warned,
            [
                "NOTIFY_MAX_PER_HOUR",
                "NOTIFY_MAX_PER_HOUR__backup",
                "TEAMS_OFFERS__sales",
                "DATAVERSE_CLIENT_ID",
                "HUBSPOT_API_URL",
                "SALESFORCE_EXTERNAL_ID_FIELD",
                "SALESFORCE_COUNTRY_PICKLISTS",
            ]
        );
        // The unlabelled cap is the sending domain's budget: with any email
        // destination it applies, so it is no warning then.
        let with_backup = warnings(&[
            ("SMTP_URL", "smtp://127.0.0.1:1025"),
            ("DIGEST_FROM", "leads@contoso.com"),
            ("NOTIFY_MAX_PER_HOUR", "10"),
            ("NOTIFY_TO__backup", "a@contoso.com"),
        ]);
        assert!(with_backup.is_empty(), "{with_backup:?}");
    }

    #[test]
    fn doubtful_settings_are_named_with_what_was_meant() {
        let found = warnings(&[
            ("TEAMS_WEBHOOK_URL__sales", TEAMS),
            ("TEAMS_ACTIONS__sales", "PLT;Creat"),
            ("TEAMS_WEBHOK_URL", TEAMS),
            ("TEAMS_OFFER__sales", "x"),
            ("DIGEST_SCHEDUEL", "0 0 8 * * *"),
            ("NOTIFY_T0", "a@contoso.com"),
        ]);
        let about = |setting: &str| {
            found
                .iter()
                .find(|(s, _)| s == setting)
                .map(|(_, m)| m.clone())
                .unwrap_or_else(|| panic!("no warning about {setting}: {found:?}"))
        };
        let action = about("TEAMS_ACTIONS__sales");
        assert!(
            action.contains("\"Creat\"")
                && action.contains("INS, PLT, Create, StartTestDrive, DNC"),
            "{action}"
        );
        assert!(action.contains("did you mean Create?"), "{action}");
        assert!(about("TEAMS_WEBHOK_URL").ends_with("did you mean TEAMS_WEBHOOK_URL?"));
        assert!(about("TEAMS_OFFER__sales").ends_with("did you mean TEAMS_OFFERS__sales?"));
        assert!(about("DIGEST_SCHEDUEL").ends_with("did you mean DIGEST_SCHEDULE?"));
        assert!(about("NOTIFY_T0").ends_with("did you mean NOTIFY_TO?"));
        assert_eq!(found.len(), 5, "{found:?}");
    }

    #[test]
    fn routes_that_cannot_work_stop_start_up_naming_the_setting() {
        let error = |pairs: &[(&str, &str)]| built(&[&[DEV], pairs].concat()).unwrap_err();
        let tests = error(&[
            ("TEAMS_WEBHOOK_URL", TEAMS),
            ("TEAMS_TEST_LEADS", "sometimes"),
        ]);
        assert_eq!(tests.setting, "TEAMS_TEST_LEADS");
        for value in ["true", "false", "only"] {
            assert!(tests.reason.contains(value), "{tests}");
        }
        assert_eq!(
            error(&[("TEAMS_WEBHOOK_URL", TEAMS), ("TEAMS_OFFERS", " , ")]).setting,
            "TEAMS_OFFERS"
        );
        assert_eq!(
            error(&[("TEAMS_WEBHOOK_URL", TEAMS), ("TEAMS_ACTIONS", "P L T")]).setting,
            "TEAMS_ACTIONS"
        );
        assert_eq!(
            error(&[("HUBSPOT_TOKEN", "pat"), ("HUBSPOT_ACTIONS", "DNC")]).setting,
            "HUBSPOT_ACTIONS"
        );
        assert_eq!(
            error(&[
                ("TEAMS_WEBHOOK_URL__Sales", TEAMS),
                ("TEAMS_WEBHOOK_URL__sales", TEAMS)
            ])
            .setting,
            "TEAMS_WEBHOOK_URL__sales"
        );
        assert_eq!(
            error(&[("TEAMS_WEBHOOK_URL__a.b", TEAMS)]).setting,
            "TEAMS_WEBHOOK_URL__a.b"
        );
        assert_eq!(
            error(&[
                ("TEAMS_WEBHOOK_URL", TEAMS),
                ("TEAMS_TEST_LEADS", "sometimes")
            ])
            .setting,
            "TEAMS_TEST_LEADS"
        );
        let never = error(&[
            ("TEAMS_WEBHOOK_URL__checks", TEAMS),
            ("TEAMS_TEST_LEADS__checks", "only"),
            ("TEAMS_ACTIONS__checks", "PLT"),
        ]);
        assert_eq!(never.setting, "TEAMS_TEST_LEADS__checks");
        assert!(never.reason.contains("TEAMS_ACTIONS__checks"), "{never}");
    }
}
