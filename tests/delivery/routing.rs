//! Routing through the real handler: named destinations of one kind each
//! get exactly their offers' leads, a "do not contact" lead reaches only
//! the destination that asks for it, `handler route` says what delivery
//! then does, and a filter added later with `deliveries backfill` sends
//! only the older leads that match it.

use super::destinations::verified;
use super::*;
use marketplace_leads::domain::Lead;
use marketplace_leads::store::Consumer;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use testkit::fakes::receiver::Received;
use testkit::shared_maildev;

fn offer_lead(name: &str, source: &str, title: &str) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"{name}","LastName":"Buyer","Email":"{name}@contoso.example","Company":"Contoso"}},
"LeadSource":"{source}","OfferTitle":"{title}","Description":"Please call {name}"}}"#
    )
}

/// The leads of the scenario: name → body.
fn leads() -> Vec<(&'static str, String)> {
    let analytics = |name, action: &str| {
        offer_lead(
            name,
            &format!("SPZA-{action}|fabrikam.analytics"),
            "Contoso Analytics",
        )
    };
    let gateway = |name, action: &str| {
        offer_lead(
            name,
            &format!("AzureMarketplace-{action}|fabrikam.gateway"),
            "Contoso Gateway",
        )
    };
    vec![
        ("Ana", analytics("Ana", "PLT")),
        ("Abe", analytics("Abe", "PLT")),
        ("Ali", analytics("Ali", "INS")),
        ("Gus", gateway("Gus", "INS")),
        ("Gia", gateway("Gia", "Create")),
        // Asked a cross-listed partner, not us: only the DNC webhook.
        ("Dee", analytics("Dee", "DNC")),
        // An offer no destination names: the digest only.
        (
            "Ola",
            offer_lead("Ola", "SPZA-PLT|fabrikam.other", "Contoso Other"),
        ),
    ]
}

fn teams_lead_id(request: &Received) -> String {
    let card: Value = serde_json::from_slice(&request.body).unwrap();
    let facts = card["attachments"][0]["content"]["body"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "FactSet")
        .unwrap()["facts"]
        .clone();
    facts
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Lead id")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        // Teams text is Markdown-escaped.
        .replace('\\', "")
}

/// The lead ids an email's plain text names ("Lead <id>").
fn email_lead_ids(email: &Value) -> Vec<String> {
    email["text"]
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Lead "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn named_destinations_get_their_offers_and_route_says_so_first() {
    let teams_analytics = Receiver::start().await;
    let teams_gateway = Receiver::start().await;
    let dnc_hook = Receiver::start().await;
    for teams in [&teams_analytics, &teams_gateway] {
        teams.answer(Answer::Status(202));
    }
    let unique = uuid::Uuid::new_v4().simple().to_string();
    let analytics_list = format!("analytics-{unique}@example.com");
    let gateway_list = format!("gateway-{unique}@example.com");
    let settings: Vec<(&str, String)> = vec![
        (
            "TEAMS_WEBHOOK_URL__analytics",
            teams_analytics.url("/workflows/a?sig=s3cr3t"),
        ),
        ("TEAMS_OFFERS__analytics", "fabrikam.analytics".into()),
        (
            "TEAMS_WEBHOOK_URL__gateway",
            teams_gateway.url("/workflows/g?sig=s3cr3t"),
        ),
        // By title, with a glob.
        ("TEAMS_OFFERS__gateway", "*gateway*".into()),
        ("NOTIFY_TO__analytics", analytics_list.clone()),
        ("NOTIFY_OFFERS__analytics", "Contoso Analytics".into()),
        // Only the contact requests of the gateway offer.
        ("NOTIFY_TO__gateway", gateway_list.clone()),
        ("NOTIFY_OFFERS__gateway", "fabrikam.gateway".into()),
        ("NOTIFY_ACTIONS__gateway", "Create".into()),
        ("WEBHOOK_URL__dnc", dnc_hook.url("/hooks/dnc")),
        ("WEBHOOK_SECRET__dnc", SECRET.into()),
        ("WEBHOOK_ACTIONS__dnc", "DNC".into()),
    ];
    let app = spawn_app_with(AppOptions {
        extra: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        ..AppOptions::default()
    })
    .await;

    // What `handler route` says, before any lead is sent.
    let mut predicted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for (name, body) in leads() {
        let answer = route(&app, &body);
        for decision in answer["destinations"].as_array().unwrap() {
            if decision["takes"] == true {
                predicted
                    .entry(name)
                    .or_default()
                    .insert(decision["name"].as_str().unwrap().to_owned());
            }
        }
        if name == "Dee" {
            assert_eq!(answer["lead"]["doNotContact"], true);
        }
    }

    let mut ids: BTreeMap<String, &str> = BTreeMap::new();
    for (name, body) in leads() {
        ids.insert(post(&app, body).await, name);
    }
    let maildev = shared_maildev();
    until(&app, Duration::from_secs(60), async || {
        teams_analytics.received().len() >= 3
            && teams_gateway.received().len() >= 2
            && !dnc_hook.received().is_empty()
            && maildev.emails_to(&analytics_list).await.len() >= 3
            && !maildev.emails_to(&gateway_list).await.is_empty()
    })
    .await;
    // One more sweep: nothing else may arrive.
    {
        let _quiet = deliverer(&app).quiesce().await;
        app.clock.advance(Duration::from_secs(120));
        deliverer(&app).sweep(app.clock.now()).await.unwrap();
    }

    let mut delivered: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut note = |destination: &str, lead_id: String| {
        let name = ids.get(&lead_id).copied().unwrap_or("(unknown)");
        let fresh = delivered
            .entry(name)
            .or_default()
            .insert(destination.to_owned());
        assert!(fresh, "{name} reached {destination} twice");
    };
    for request in teams_analytics.received() {
        note("teams:analytics", teams_lead_id(&request));
    }
    for request in teams_gateway.received() {
        note("teams:gateway", teams_lead_id(&request));
    }
    for request in dnc_hook.received() {
        let event = verified(&request);
        note(
            "webhook:dnc",
            event["data"]["leadId"].as_str().unwrap().to_owned(),
        );
    }
    for (list, destination) in [
        (&analytics_list, "email:analytics"),
        (&gateway_list, "email:gateway"),
    ] {
        for email in maildev.emails_to(list).await {
            for id in email_lead_ids(&email) {
                note(destination, id);
            }
        }
    }

    let expected: BTreeMap<&str, BTreeSet<String>> = [
        ("Ana", vec!["teams:analytics", "email:analytics"]),
        ("Abe", vec!["teams:analytics", "email:analytics"]),
        ("Ali", vec!["teams:analytics", "email:analytics"]),
        ("Gus", vec!["teams:gateway"]),
        ("Gia", vec!["teams:gateway", "email:gateway"]),
        ("Dee", vec!["webhook:dnc"]),
    ]
    .into_iter()
    .map(|(name, to)| (name, to.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(delivered, expected, "what arrived where");
    assert_eq!(predicted, delivered, "`handler route` said otherwise");
    assert!(
        !delivered.contains_key("Ola"),
        "an offer nobody names reaches no destination"
    );
    // Every lead is still in the digest, Dee and Ola included.
    assert_eq!(records(&app, "P", "digest").await, 7);
    report!(
        "routing: 7 leads to 5 named destinations as `route` predicted: {}",
        delivered
            .iter()
            .map(|(name, to)| format!(
                "{name}→{}",
                to.iter().cloned().collect::<Vec<_>>().join("+")
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    app.stop().await;
}

/// A hot-only Teams channel (`TEAMS_RATING__sales=hot`) beside one that
/// takes every lead: the sales channel gets exactly the hot leads, each
/// card saying why, and `handler route --json` predicted it lead by lead.
#[tokio::test]
async fn a_hot_only_teams_channel_gets_exactly_the_hot_leads() {
    let sales = Receiver::start().await;
    let everyone = Receiver::start().await;
    for teams in [&sales, &everyone] {
        teams.answer(Answer::Status(202));
    }
    let app = spawn_app_with(AppOptions {
        extra: vec![
            (
                "TEAMS_WEBHOOK_URL__sales".into(),
                sales.url("/workflows/s?sig=s3cr3t"),
            ),
            ("TEAMS_RATING__sales".into(), "hot".into()),
            (
                "TEAMS_WEBHOOK_URL__all".into(),
                everyone.url("/workflows/a?sig=s3cr3t"),
            ),
        ],
        ..AppOptions::default()
    })
    .await;
    let person = |name: &str, email: &str, source: &str, extra: &str| {
        format!(
            r#"{{"UserDetails":{{"FirstName":"{name}","LastName":"Buyer","Email":"{email}"{extra}}},
"LeadSource":"{source}","OfferTitle":"Contoso Analytics"}}"#
        )
    };
    let company = r#","Company":"Contoso","Phone":"+1 425 555 0100""#;
    let leads = [
        // Asked to be contacted from a company address, with a phone: hot.
        (
            "Hal",
            person(
                "Hal",
                "hal@contoso.example",
                "SPZA-PLT|fabrikam.analytics",
                company,
            ),
        ),
        // Bought in the portal: hot.
        (
            "Hub",
            person(
                "Hub",
                "hub@contoso.example",
                "AzurePortal-Create|fabrikam.analytics",
                company,
            ),
        ),
        // Asked, but from a personal mailbox and no company: not hot.
        (
            "Pat",
            person(
                "Pat",
                "pat.buyer@gmail.com",
                "SPZA-PLT|fabrikam.analytics",
                "",
            ),
        ),
        // Installed only: not hot.
        (
            "Ian",
            person(
                "Ian",
                "ian@contoso.example",
                "AzureMarketplace-INS|fabrikam.analytics",
                company,
            ),
        ),
        // Asked a partner, not us: never hot.
        (
            "Dan",
            person(
                "Dan",
                "dan@contoso.example",
                "SPZA-DNC|fabrikam.analytics",
                company,
            ),
        ),
    ];

    let mut predicted_hot = BTreeSet::new();
    let mut levels = BTreeMap::new();
    for (name, body) in &leads {
        let answer = route(&app, body);
        let level = answer["lead"]["rating"]["level"]
            .as_str()
            .unwrap()
            .to_owned();
        let sales_takes = answer["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "teams:sales")
            .unwrap();
        if sales_takes["takes"] == true {
            predicted_hot.insert(*name);
        } else if *name != "Dan" {
            // (Dan is left out before his rating is looked at.)
            let why = sales_takes["why"].as_str().unwrap();
            assert!(why.contains(&format!("rated {level}")), "{name}: {why}");
        }
        levels.insert(*name, level);
    }
    assert_eq!(predicted_hot, BTreeSet::from(["Hal", "Hub"]), "{levels:?}");

    let mut ids: BTreeMap<String, &str> = BTreeMap::new();
    for (name, body) in &leads {
        ids.insert(post(&app, body.clone()).await, name);
    }
    until(&app, Duration::from_secs(60), async || {
        // Dan's lead goes to no one: he asked a partner, not us.
        everyone.received().len() >= leads.len() - 1 && sales.received().len() >= 2
    })
    .await;
    {
        let _quiet = deliverer(&app).quiesce().await;
        app.clock.advance(Duration::from_secs(120));
        deliverer(&app).sweep(app.clock.now()).await.unwrap();
    }
    let received: Vec<(&str, Value)> = sales
        .received()
        .iter()
        .map(|request| {
            let card: Value = serde_json::from_slice(&request.body).unwrap();
            (ids[&teams_lead_id(request)], card)
        })
        .collect();
    let delivered: BTreeSet<&str> = received.iter().map(|(name, _)| *name).collect();
    assert_eq!(received.len(), 2, "each hot lead once");
    assert_eq!(
        delivered, predicted_hot,
        "the sales channel got what route predicted"
    );
    for (name, card) in &received {
        let rating = &card["attachments"][0]["content"]["body"][1]["text"];
        assert!(
            rating.as_str().unwrap().starts_with("**HOT** · "),
            "{name}: {rating}"
        );
    }
    assert_eq!(everyone.received().len(), leads.len() - 1);
    report!(
        "hot-only Teams channel: {} of {} leads ({}), as `route --json` predicted; ratings {levels:?}",
        delivered.len(),
        leads.len(),
        delivered.iter().copied().collect::<Vec<_>>().join(", ")
    );
    app.stop().await;
}

/// `handler route --json` with the app's settings.
fn route(app: &TestApp, body: &str) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(["route", "--json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "error")
        .envs(app.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run handler route");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "handler route: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test]
async fn a_filter_added_later_backfills_only_the_older_leads_it_matches() {
    let hook = Receiver::start().await;
    let app = spawn_app_with(AppOptions {
        extra: vec![
            (
                "WEBHOOK_URL__analytics".into(),
                hook.url("/hooks/analytics"),
            ),
            ("WEBHOOK_SECRET__analytics".into(), SECRET.into()),
            (
                "WEBHOOK_OFFERS__analytics".into(),
                "fabrikam.analytics".into(),
            ),
        ],
        ..AppOptions::default()
    })
    .await;
    let store = app.store();
    store.ensure_tables().await.unwrap();
    // Stored before the filter existed: the digest's record only.
    let now = app.clock.now();
    let mut expected = BTreeSet::new();
    for (day, (name, body)) in leads().into_iter().enumerate() {
        let lead = Lead::parse(body.as_bytes()).unwrap();
        let at = now - time::Duration::days(day as i64 + 1);
        let saved = store.save(&lead, at, &[Consumer::Digest]).await.unwrap();
        let marketplace_leads::store::SaveOutcome::Created(id) = saved else {
            panic!("{name} stored twice");
        };
        if ["Ana", "Abe", "Ali"].contains(&name) {
            expected.insert(id.to_string());
        }
    }
    let backfill = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_handler"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "error")
            .envs(app.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let args = [
        "deliveries",
        "backfill",
        "--destination",
        "webhook:analytics",
        "--since",
        "30d",
    ];
    let first = backfill(&args);
    until(&app, Duration::from_secs(60), async || {
        hook.received().len() >= expected.len()
    })
    .await;
    let again = backfill(&args);
    {
        let _quiet = deliverer(&app).quiesce().await;
        app.clock.advance(Duration::from_secs(120));
        deliverer(&app).sweep(app.clock.now()).await.unwrap();
    }
    let got: BTreeSet<String> = hook
        .received()
        .iter()
        .map(|r| verified(r)["data"]["leadId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(hook.received().len(), expected.len(), "each once");
    assert_eq!(
        got, expected,
        "only the analytics offer's leads, DNC left out"
    );
    report!(
        "backfill with a filter: {} of 7 older leads sent (first run: {}; second: {})",
        got.len(),
        first.trim(),
        again.trim()
    );
    app.stop().await;
}
