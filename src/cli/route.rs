//! `handler route <lead.json>`: which destinations a lead would go to and
//! why, decided by the same [`Routes`](crate::routing::Routes) ingest uses
//! — without storing or sending anything. The way to check routing
//! settings before Partner Center's next lead.

use crate::configuration::Settings;
use crate::delivery::Destinations;
use crate::domain::Lead;
use crate::routing::Decision;
use anyhow::Context;
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct RouteOptions {
    /// A lead as Partner Center posts it (JSON); `-` or nothing reads stdin.
    pub lead: Option<PathBuf>,
    /// Print JSON ({"lead": {…, "rating"}, "destinations": [{"name","takes","why"}]}).
    #[arg(long)]
    pub json: bool,
}

pub fn run(settings: &Settings, options: RouteOptions) -> anyhow::Result<()> {
    let body = read(options.lead.as_ref())?;
    // The same parse as LeadIngest: a body it would refuse is said so.
    let lead = Lead::parse(&body).map_err(|e| {
        anyhow::anyhow!("LeadIngest would refuse this body ({e}); it would go nowhere")
    })?;
    // Rated as LeadIngest rates it, so a `_RATING` route decides here as
    // it will there.
    let lead = if settings.rate_leads {
        lead.rated()
    } else {
        lead
    };
    let destinations = Destinations::from_settings(settings)?;
    let decisions = destinations.routes().explain(&lead);
    if options.json {
        println!("{}", as_json(&lead, &decisions));
    } else {
        print!("{}", as_text(&lead, &decisions));
    }
    Ok(())
}

fn read(path: Option<&PathBuf>) -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    match path {
        Some(path) if path.as_os_str() != "-" => {
            std::fs::File::open(path)
                .and_then(|f| {
                    f.take(crate::domain::MAX_BODY_BYTES as u64 + 1)
                        .read_to_end(&mut body)
                })
                .with_context(|| format!("could not read {}", path.display()))?;
        }
        _ => {
            std::io::stdin()
                .take(crate::domain::MAX_BODY_BYTES as u64 + 1)
                .read_to_end(&mut body)
                .context("could not read the lead from stdin")?;
        }
    }
    Ok(body)
}

/// What routing looks at, in one line.
fn describe(lead: &Lead) -> String {
    let mut parts = vec![format!(
        "offer {}",
        lead.offer_id().unwrap_or("(no offer id in LeadSource)")
    )];
    if let Some(title) = &lead.offer_title {
        parts.push(format!("title {title:?}"));
    }
    parts.push(format!("action {}", lead.action().unwrap_or("(none)")));

    if lead.is_do_not_contact() {
        parts.push("DO NOT CONTACT".into());
    }
    if lead.is_test {
        parts.push("Partner Center test lead".into());
    }
    parts.join(", ")
}

fn as_text(lead: &Lead, decisions: &[Decision]) -> String {
    let width = decisions
        .iter()
        .map(|d| d.destination.to_string().len())
        .chain(["digest".len()])
        .max()
        .unwrap_or(0);
    let mut out = format!("lead: {}\n", describe(lead));
    if let Some(rating) = &lead.rating {
        out.push_str(&format!(
            "rated {} (score {}): {}\n",
            rating.level,
            rating.score,
            rating.why()
        ));
    }
    out.push_str(&format!(
        "  {:width$}  yes  every stored lead is in the digest\n",
        "digest"
    ));
    for d in decisions {
        out.push_str(&format!(
            "  {:width$}  {}  {}\n",
            d.destination.to_string(),
            if d.takes { "yes" } else { "no " },
            d.why
        ));
    }
    if decisions.is_empty() {
        out.push_str("no per-lead destination is configured\n");
    }
    out
}

fn as_json(lead: &Lead, decisions: &[Decision]) -> serde_json::Value {
    json!({
        "lead": {
            "offer": lead.offer_id(),
            "offerTitle": lead.offer_title,
            "action": lead.action(),
            "doNotContact": lead.is_do_not_contact(),
            "test": lead.is_test,
            "rating": lead.rating.as_ref().map(|r| json!({
                "level": r.level.as_str(),
                "score": r.score,
                "reasons": r.reasons,
            })),
        },
        "destinations": decisions.iter().map(|d| json!({
            "name": d.destination.to_string(),
            "takes": d.takes,
            "why": d.why,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::Settings;

    #[test]
    fn says_who_takes_a_lead_and_why() {
        let settings = Settings::from_vars(
            [
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("TEAMS_WEBHOOK_URL__analytics", "https://example.com/a"),
                ("TEAMS_OFFERS__analytics", "fabrikam.analytics"),
                ("TEAMS_WEBHOOK_URL__gateway", "https://example.com/g"),
                ("TEAMS_OFFERS__gateway", "fabrikam.gateway"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        let lead = Lead::parse(
            br#"{"LeadSource":"SPZA-PLT|fabrikam.analytics","OfferTitle":"Contoso Analytics"}"#,
        )
        .unwrap()
        .rated();
        let decisions = Destinations::from_settings(&settings)
            .unwrap()
            .routes()
            .explain(&lead);
        let text = as_text(&lead, &decisions);
        assert!(
            text.contains(
                "lead: offer fabrikam.analytics, title \"Contoso Analytics\", action PLT\nrated \
                 cold (score 10): asked to be contacted · no email · no company\n"
            ),
            "{text}"
        );
        let line = |name: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(name))
                .unwrap_or_default()
                .to_owned()
        };
        assert!(line("teams:analytics").contains("yes  offer"), "{text}");
        assert!(line("teams:gateway").contains("no   offer"), "{text}");
        let json = as_json(&lead, &decisions);
        assert_eq!(json["destinations"][0]["takes"], true);
        assert_eq!(json["destinations"][1]["takes"], false);
        assert_eq!(json["lead"]["action"], "PLT");
        assert_eq!(json["lead"]["rating"]["level"], "cold");
    }
}
