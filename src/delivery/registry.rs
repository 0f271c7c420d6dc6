//! Every kind of destination, and the configured destinations built from
//! the settings: each kind once per label it is set under (`NOTIFY_TO`,
//! `NOTIFY_TO__backup`), each with its route (`<PREFIX>_OFFERS`,
//! `<PREFIX>_ACTIONS`, `<PREFIX>_TEST_LEADS`, labelled the same way).
//!
//! Adding a kind: its file in [`super::destinations`] (settings, record,
//! `Destination`) and its line in [`KINDS`]. Building does no I/O, so the
//! command line builds the same list to know the routes.

use super::destination::{Build, Destination, Family};
use super::destinations::{dataverse, hubspot, marketo, notify, salesforce, teams, webhook};
use super::redact::Redactor;
use crate::configuration::{values, ConfigError, Environment, Scope, Settings};
use crate::domain::DestinationName;
use crate::routing::{Filter, Pattern, Route, Routes, TestLeads};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A kind of destination.
pub struct Kind {
    /// Its name in destination names: `teams`.
    pub name: &'static str,
    /// Its route settings start with this: `TEAMS_OFFERS`.
    pub prefix: &'static str,
    /// The settings that configure it (any one set configures it).
    pub settings: &'static [&'static str],
    build: Build,
}

macro_rules! kind {
    ($module:ident, $prefix:literal) => {
        Kind {
            name: $module::KIND,
            prefix: $prefix,
            settings: $module::SETTINGS,
            build: $module::build,
        }
    };
}

/// Every kind, in the order destinations are listed and tried.
pub const KINDS: &[Kind] = &[
    kind!(notify, "NOTIFY"),
    kind!(teams, "TEAMS"),
    kind!(webhook, "WEBHOOK"),
    kind!(dataverse, "DATAVERSE"),
    kind!(hubspot, "HUBSPOT"),
    kind!(salesforce, "SALESFORCE"),
    kind!(marketo, "MARKETO"),
];

/// Route settings, after a kind's prefix.
const OFFERS: &str = "_OFFERS";
const ACTIONS: &str = "_ACTIONS";
const TEST_LEADS: &str = "_TEST_LEADS";

/// The configured destinations and their routes.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    list: Vec<Arc<dyn Destination>>,
    routes: Routes,
}

impl Destinations {
    /// Every destination the settings configure; an error names the
    /// setting that is wrong (or names a destination that is not there).
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let env = &settings.delivery.environment;
        let mut list: Vec<Arc<dyn Destination>> = Vec::new();
        let mut routes = Vec::new();
        let mut seen: BTreeMap<DestinationName, String> = BTreeMap::new();
        for kind in KINDS {
            for label in labels(env, kind) {
                let scope = env.scope(label.as_deref());
                let first = scope.name(kind.settings[0]);
                let name = DestinationName::of(kind.name, label.as_deref())
                    .map_err(|e| ConfigError::named(&first, e))?;
                let built = (kind.build)(scope, name.clone(), settings)?;
                let Some(destination) = built else {
                    // Only route settings under this label.
                    return Err(ConfigError::named(
                        route_setting_of(env, kind, scope).unwrap_or(first.clone()),
                        format!(
                            "names the destination {name}, which is not configured (set {first})"
                        ),
                    ));
                };
                if let Some(other) = seen.insert(name.clone(), first.clone()) {
                    return Err(ConfigError::named(
                        &first,
                        format!("configures {name} a second time (as {other} does)"),
                    ));
                }
                routes.push(Route {
                    filter: filter(scope, kind, destination.family(), settings)?,
                    destination: name,
                });
                list.push(Arc::from(destination));
            }
        }
        Ok(Self {
            list,
            routes: Routes::new(routes),
        })
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
    let route = [OFFERS, ACTIONS, TEST_LEADS].map(|s| format!("{}{s}", kind.prefix));
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

fn route_setting_of(env: &Environment, kind: &Kind, scope: Scope<'_>) -> Option<String> {
    [OFFERS, ACTIONS, TEST_LEADS]
        .iter()
        .map(|s| scope.name(&format!("{}{s}", kind.prefix)))
        .find(|name| env.get(name).is_some())
}

/// The destination's route: its own settings, or the defaults of its
/// family (a CRM takes test leads with `CRM_INCLUDE_TEST_LEADS`, and
/// "do not contact" leads with `CRM_INCLUDE_DNC` when it can mark them).
fn filter(
    scope: Scope<'_>,
    kind: &Kind,
    family: Family,
    settings: &Settings,
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
    for action in &actions {
        if !action.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(scope.error(
                &setting(ACTIONS),
                format!("{action:?} is not an action (INS, PLT, Create, StartTestDrive, DNC, …)"),
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
        Some(v) => {
            if values::boolean(&scope.name(&setting(TEST_LEADS)), Some(&v), false)? {
                TestLeads::Included
            } else {
                TestLeads::Excluded
            }
        }
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
    Ok(Filter {
        offers,
        actions,
        test_leads,
        do_not_contact: do_not_contact || names_dnc,
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
    fn routes_that_cannot_work_stop_start_up_naming_the_setting() {
        let error = |pairs: &[(&str, &str)]| built(&[&[DEV], pairs].concat()).unwrap_err();
        let unknown = error(&[("TEAMS_OFFERS__sales", "x")]);
        assert_eq!(unknown.setting, "TEAMS_OFFERS__sales");
        assert!(
            unknown.reason.contains("TEAMS_WEBHOOK_URL__sales"),
            "{unknown}"
        );
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
