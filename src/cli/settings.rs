//! `handler settings`: the settings the handler reads (`--list`, or
//! `--list --json` for scripts and `tests/infra`), read from the
//! configuration and the destination registry — never a copy kept by
//! hand — or a check of the ones set here: what a deployment with them
//! would start with, and what it would warn about.

use crate::configuration::{setting, Settings};
use crate::delivery::registry::KINDS;
use crate::delivery::Destinations;
use serde_json::json;

#[derive(clap::Args)]
pub struct SettingsOptions {
    /// List every setting the handler reads, instead of checking the ones
    /// set here.
    #[arg(long)]
    pub list: bool,
    /// With --list: as JSON ({"deployed", "optional", "destinations":
    /// [{"kind", "title", "about", "prefix", "settings", "shared", "routes"}]}).
    #[arg(long, requires = "list")]
    pub json: bool,
}

/// `--list`: needs no settings at all.
pub fn list(json: bool) -> String {
    if json {
        return listed_json().to_string();
    }
    let mut out = String::new();
    out.push_str("Set by infra/main.bicep on every deployment:\n");
    for name in setting::DEPLOYED {
        out.push_str(&format!("  {name}\n"));
    }
    out.push_str("\nOptional (README: Configure):\n");
    for name in setting::OPTIONAL {
        out.push_str(&format!("  {name}\n"));
    }
    out.push_str(
        "\nDestinations: the first setting switches one on, the others refine it; \
         SETTING__label adds another of the kind (TEAMS_WEBHOOK_URL__sales).\n",
    );
    for kind in KINDS {
        out.push_str(&format!(
            "  {} ({}): {}\n    {}\n    routes: {}\n",
            kind.name,
            kind.title,
            kind.about,
            kind.settings.join(", "),
            kind.route_settings().join(", ")
        ));
    }
    out
}

fn listed_json() -> serde_json::Value {
    let destinations: Vec<_> = KINDS
        .iter()
        .map(|kind| {
            json!({
                "kind": kind.name,
                "title": kind.title,
                "about": kind.about,
                "prefix": kind.prefix,
                "settings": kind.settings,
                "shared": kind.shared,
                "routes": kind.route_settings(),
            })
        })
        .collect();
    json!({
        "deployed": setting::DEPLOYED,
        "optional": setting::OPTIONAL,
        "destinations": destinations,
    })
}

/// The check: `main` has read the settings (an error stops it first, and
/// each warning is logged); this says what they configure.
pub fn check(settings: &Settings) -> anyhow::Result<String> {
    let destinations = Destinations::from_settings(settings)?;
    let names: Vec<String> = destinations
        .names()
        .iter()
        .map(ToString::to_string)
        .collect();
    let mut out = String::new();
    out.push_str(&format!(
        "storage   account {} (table {})\n",
        settings.storage.account.name, settings.storage.leads_table
    ));
    out.push_str(&format!(
        "digest    {}\n",
        match (&settings.digest.to, &settings.email.transport) {
            (Some(to), Some(_)) => format!(
                "to {} recipient(s), on \"{}\"",
                to.len(),
                settings.digest.schedule.expression()
            ),
            (None, _) => "not sent: DIGEST_TO is not set".to_owned(),
            (Some(_), None) => "not sent: no email transport (ACS_ENDPOINT, \
                                ACS_CONNECTION_STRING or SMTP_URL)"
                .to_owned(),
        }
    ));
    out.push_str(&format!(
        "deliver   {}\n",
        if names.is_empty() {
            "to no destination".to_owned()
        } else {
            format!("to {}", names.join(", "))
        }
    ));
    let warnings = destinations.warnings().len();
    out.push_str(&match warnings {
        0 => "OK\n".to_owned(),
        1 => "OK, with 1 warning (above)\n".to_owned(),
        n => format!("OK, with {n} warnings (above)\n"),
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_names_every_setting_read_and_each_destination_once() {
        let listed = listed_json();
        let mut names: Vec<String> = Vec::new();
        for group in ["deployed", "optional"] {
            for name in listed[group].as_array().expect("a list") {
                names.push(name.as_str().expect("a name").to_owned());
            }
        }
        for kind in listed["destinations"].as_array().expect("kinds") {
            for group in ["settings", "routes"] {
                for name in kind[group].as_array().expect("a list") {
                    names.push(name.as_str().expect("a name").to_owned());
                }
            }
        }
        let mut known = crate::delivery::registry::known_settings();
        known.sort();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "a setting listed twice");
        assert_eq!(names, known);
        let text = list(false);
        for kind in KINDS {
            assert_eq!(text.matches(&format!("  {} (", kind.name)).count(), 1);
            assert!(text.contains(kind.settings[0]), "{}", kind.name);
        }
    }
}
