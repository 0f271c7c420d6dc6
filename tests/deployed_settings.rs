//! The settings users actually produce start the handler and it works.
//!
//! Every other test chooses its own settings, so a change that stopped the
//! handler starting with the shipped ones went unnoticed once. Here the
//! settings are derived, not copied, from what ships:
//!
//! - `local.settings.sample.json`'s `Values`, exactly as `func start` passes
//!   them (blank ones included);
//! - the app settings `infra/main.bicep` writes, evaluated from the
//!   template by `tests/infra/bicep_eval.py` as `az deployment group create
//!   -p infra/main.bicepparam` would: every parameter at its default; each
//!   destination switched on through its own parameter; named routes in
//!   `destinationSettings`.
//!
//! Only what points at another machine is replaced by its local stand-in
//! ([`on_this_machine`]): the storage account (one Azurite account per set,
//! so `LEADS_TABLE` stays as written), the email service (a fake of ACS
//! that checks requests as documented; MailDev for the sample's SMTP), the
//! CRMs' and receivers' URLs, and what the Functions platform sets
//! (`FUNCTIONS_CUSTOMHANDLER_PORT`, the managed-identity endpoint). Each
//! set then starts the real binary the way the Functions host does
//! (`host.json`'s executable and arguments, the host's port) and must
//! answer `GET /`, store a lead posted to `/api/LeadIngest`, run LeadDigest
//! and LeadDeliver from the host's timer payload, email the digest, and
//! deliver to what it switches on — and log no configuration warning.

use futures::future::join_all;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use testkit::fakes::acs::{FakeAcs, ServerAuth, ACS_RESOURCE};
use testkit::fakes::{
    DataverseFake, HubSpotFake, ManagedIdentityFake, MarketoFake, Receiver, SalesforceFake,
};
use testkit::{free_port, report, Azurite, MailDev};

const REPO: &str = env!("CARGO_MANIFEST_DIR");
/// The Functions host gives a handler about 30 s to answer `GET /`.
const READY_WITHIN: Duration = Duration::from_secs(30);
/// How long a delivery or an email may take to show at its fake.
const ARRIVES_WITHIN: Duration = Duration::from_secs(20);
const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One set of settings, as its user wrote it.
struct SettingsSet {
    name: &'static str,
    settings: Vec<(String, String)>,
    /// Where it runs: `Azure` (a deployment) or `Local` (`func start`).
    place: Place,
    /// Checked once the lead is stored and both timers ran.
    delivered: Check,
}

#[derive(Clone, Copy, PartialEq)]
enum Place {
    Azure,
    Local,
}

/// What must have arrived for a set to pass (beyond the digest).
enum Check {
    Nothing,
    Receiver(&'static str),
    Email(String),
    Dataverse,
    HubSpot,
    Salesforce,
    Marketo,
    /// The named Teams route that takes the lead, and the one that does not.
    Routes {
        taken: &'static str,
        skipped: &'static str,
    },
}

/// The stand-ins every set shares.
struct Machine {
    azurite: Azurite,
    maildev: MailDev,
    acs: FakeAcs,
    identity: ManagedIdentityFake,
    receivers: BTreeMap<&'static str, Receiver>,
    dataverse: DataverseFake,
    hubspot: HubSpotFake,
    salesforce: SalesforceFake,
    marketo: MarketoFake,
}

#[tokio::test]
async fn the_settings_users_produce_start_the_handler_and_it_works() {
    let sets = [
        "sample",
        "defaults",
        "email",
        "teams",
        "webhook",
        "dataverse",
        "hubspot",
        "salesforce",
        "marketo",
        "routes",
    ];
    let dataverse = DataverseFake::start().await;
    let identity = ManagedIdentityFake::start(&[ACS_RESOURCE, &dataverse.url()]).await;
    dataverse.trust(identity.clone());
    let mut receivers = BTreeMap::new();
    for name in ["teams", "webhook", "sales", "analytics"] {
        receivers.insert(name, Receiver::start().await);
    }
    let machine = Machine {
        azurite: Azurite::start_with_accounts(&sets),
        maildev: MailDev::start(),
        acs: FakeAcs::accepting(ServerAuth::Issued(identity.clone())).await,
        identity,
        receivers,
        dataverse,
        hubspot: HubSpotFake::start().await,
        salesforce: SalesforceFake::start().await,
        marketo: MarketoFake::start().await,
    };

    let mut all = vec![sample()];
    all.extend(deployments(&machine));
    assert_eq!(all.len(), sets.len());
    report!("{} settings sets: {}", all.len(), sets.join(", "));

    let results = join_all(all.iter().map(|set| run(set, &machine))).await;
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    assert!(
        failures.is_empty(),
        "settings users produce that do not work:\n\n{}",
        failures.join("\n\n")
    );
    assert!(
        machine.acs.problems().is_empty(),
        "ACS: {:?}",
        machine.acs.problems()
    );
    assert!(
        machine.identity.problems().is_empty(),
        "identity: {:?}",
        machine.identity.problems()
    );
}

/// `local.settings.sample.json`'s `Values`, as `func start` passes them.
fn sample() -> SettingsSet {
    let text = std::fs::read_to_string(Path::new(REPO).join("local.settings.sample.json"))
        .expect("local.settings.sample.json");
    let sample: Value = serde_json::from_str(&text).expect("the sample is JSON");
    let settings = sample["Values"]
        .as_object()
        .expect("the sample has Values")
        .iter()
        .map(|(name, value)| {
            let value = value.as_str().expect("Values are strings");
            (name.clone(), value.to_owned())
        })
        .collect();
    SettingsSet {
        name: "sample",
        settings,
        place: Place::Local,
        delivered: Check::Nothing,
    }
}

/// The app settings `infra/main.bicep` writes for each deployment users
/// make: defaults, each destination on, named routes.
fn deployments(machine: &Machine) -> Vec<SettingsSet> {
    let receiver = |name: &str| machine.receivers[name].url("/hook");
    let azure = |name: &'static str, env: Vec<(String, String)>, params: Value, delivered| {
        let mut env = env;
        env.push(("DIGEST_TO".into(), digest_to(name)));
        SettingsSet {
            name,
            settings: template_settings(&env, &params),
            place: Place::Azure,
            delivered,
        }
    };
    let pairs = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    };
    let notify_to = "sales-team@contoso.com".to_owned();
    vec![
        azure("defaults", Vec::new(), json!({}), Check::Nothing),
        azure(
            "email",
            pairs(&[("NOTIFY_TO", notify_to.clone())]),
            json!({}),
            Check::Email(notify_to),
        ),
        azure(
            "teams",
            pairs(&[("TEAMS_WEBHOOK_URL", receiver("teams"))]),
            json!({}),
            Check::Receiver("teams"),
        ),
        azure(
            "webhook",
            pairs(&[
                ("WEBHOOK_URL", receiver("webhook")),
                ("WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
            ]),
            json!({}),
            Check::Receiver("webhook"),
        ),
        azure(
            "dataverse",
            pairs(&[("DATAVERSE_URL", machine.dataverse.url())]),
            json!({}),
            Check::Dataverse,
        ),
        azure(
            "hubspot",
            pairs(&[("HUBSPOT_TOKEN", hubspot_token(&machine.hubspot))]),
            json!({}),
            Check::HubSpot,
        ),
        azure(
            "salesforce",
            machine.salesforce.settings(),
            json!({}),
            Check::Salesforce,
        ),
        azure(
            "marketo",
            machine.marketo.settings(),
            json!({}),
            Check::Marketo,
        ),
        azure(
            "routes",
            Vec::new(),
            json!({"destinationSettings": {
                "TEAMS_WEBHOOK_URL__sales": receiver("sales"),
                "TEAMS_OFFERS__sales": "contoso analytics*",
                "TEAMS_WEBHOOK_URL__analytics": receiver("analytics"),
                "TEAMS_ACTIONS__analytics": "INS;Create",
            }}),
            Check::Routes {
                taken: "sales",
                skipped: "analytics",
            },
        ),
    ]
}

fn digest_to(set: &str) -> String {
    format!("leads-{set}@contoso.com; owner-{set}@contoso.com")
}

fn hubspot_token(fake: &HubSpotFake) -> String {
    fake.settings()
        .into_iter()
        .find(|(name, _)| name == "HUBSPOT_TOKEN")
        .map(|(_, token)| token)
        .expect("the fake's token")
}

/// What `az deployment group create -p infra/main.bicepparam` writes, run
/// with `env`, `params` overriding parameters: evaluated from the template.
fn template_settings(env: &[(String, String)], params: &Value) -> Vec<(String, String)> {
    let python = Path::new(REPO).join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-dev",
        python.display()
    );
    let mut command = std::process::Command::new(python);
    command.arg(Path::new(REPO).join("tests/infra/bicep_eval.py"));
    for (name, value) in env {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    for (name, value) in params.as_object().into_iter().flatten() {
        command.arg("--param").arg(format!("{name}={value}"));
    }
    let output = command.output().expect("run bicep_eval.py");
    assert!(
        output.status.success(),
        "bicep_eval.py: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("bicep_eval.py prints [name, value] pairs")
}

/// `set`'s settings with what points at another machine replaced by its
/// local stand-in, and what the Functions platform adds.
fn on_this_machine(set: &SettingsSet, machine: &Machine, port: u16) -> Vec<(String, String)> {
    let storage = machine.azurite.connection_string_of(set.name);
    let mut settings: Vec<(String, String)> = set
        .settings
        .iter()
        .map(|(name, value)| {
            let local = match name.as_str() {
                "AzureWebJobsStorage" | "LEADS_STORAGE"
                    if value.contains("UseDevelopmentStorage") =>
                {
                    storage.clone()
                }
                "SMTP_URL" if !value.is_empty() => machine.maildev.smtp_url(),
                "ACS_ENDPOINT" if !value.is_empty() => machine.acs.endpoint().to_string(),
                _ => value.clone(),
            };
            (name.clone(), local)
        })
        .collect();
    let mut add = |name: &str, value: String| settings.push((name.to_owned(), value));
    add("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string());
    add(
        "FUNCTIONS_CUSTOMHANDLER_WORKER_ID",
        uuid::Uuid::new_v4().to_string(),
    );
    add("FUNCTIONS_APP_ROOT_PATH", REPO.to_owned());
    if set.place == Place::Azure {
        // The app reaches its account with its identity; here, Azurite's.
        add("LEADS_STORAGE", storage);
        for (name, value) in machine.identity.env() {
            add(&name, value);
        }
        // HubSpot's API is at a fixed address the template does not write.
        if set
            .settings
            .iter()
            .any(|(n, v)| n == "HUBSPOT_TOKEN" && !v.is_empty())
        {
            add("HUBSPOT_API_URL", machine.hubspot.url());
        }
    }
    settings
}

/// `host.json`'s `customHandler.description`: the executable and its
/// arguments, as the host starts them.
fn host_command() -> (String, Vec<String>) {
    let text = std::fs::read_to_string(Path::new(REPO).join("host.json")).expect("host.json");
    let host: Value = serde_json::from_str(&text).expect("host.json is JSON");
    let description = &host["customHandler"]["description"];
    let executable = description["defaultExecutablePath"]
        .as_str()
        .expect("defaultExecutablePath")
        .to_owned();
    let arguments = description["arguments"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a.as_str().map(str::to_owned))
        .collect();
    (executable, arguments)
}

/// Starts the set's handler as the host would and checks it works; `Err`
/// says what did not, with the handler's output.
async fn run(set: &SettingsSet, machine: &Machine) -> Result<(), String> {
    let port = free_port();
    let (executable, arguments) = host_command();
    assert_eq!(executable, "handler", "host.json starts ./handler");
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_handler"))
        .args(&arguments)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(on_this_machine(set, machine, port))
        .stdin(Stdio::null())
        .stdout(log.reopen().expect("the log file"))
        .stderr(log.reopen().expect("the log file"))
        .kill_on_drop(true)
        .spawn()
        .expect("start the handler");
    let output = || std::fs::read_to_string(log.path()).unwrap_or_default();
    let fail = |what: String| {
        format!(
            "[{}] {what}\n--- handler output ---\n{}",
            set.name,
            output()
        )
    };

    let started = Instant::now();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(fail(format!(
                "the handler exited ({status}) before it was ready"
            )));
        }
        if client.get(format!("{base}/")).send().await.is_ok() {
            break;
        }
        if started.elapsed() > READY_WITHIN {
            return Err(fail("GET / was not answered within 30 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    let lead = testkit::testdata("appsource-contact-me.json");
    let answer = client
        .post(format!("{base}/api/LeadIngest"))
        .header("content-type", "application/json")
        .body(lead)
        .send()
        .await
        .map_err(|e| fail(format!("LeadIngest: {e}")))?;
    if answer.status().as_u16() != 201 {
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        return Err(fail(format!("LeadIngest answered {status}: {body}")));
    }

    for function in ["LeadDigest", "LeadDeliver"] {
        let answer = client
            .post(format!("{base}/{function}"))
            .header(
                "X-Azure-Functions-InvocationId",
                uuid::Uuid::new_v4().to_string(),
            )
            .header("X-Azure-Functions-HostVersion", "4.1048.200")
            .header("content-type", "application/json")
            .body(timer_payload(function))
            .send()
            .await
            .map_err(|e| fail(format!("{function}: {e}")))?;
        let status = answer.status();
        let body: Value = answer.json().await.unwrap_or(Value::Null);
        if status != 200 || !body["Outputs"].is_object() {
            return Err(fail(format!("{function} answered {status}: {body}")));
        }
    }

    let digest_sent = match set.place {
        Place::Local => {
            let to = value_of(set, "DIGEST_TO");
            until(|| async { !machine.maildev.emails_to(&to).await.is_empty() }).await
        }
        Place::Azure => {
            let to = digest_to(set.name);
            let first = to.split(';').next().unwrap_or_default().trim().to_owned();
            until(|| async { machine.acs_sent_to(&first) }).await
        }
    };
    if !digest_sent {
        return Err(fail("no digest email arrived".into()));
    }
    if let Err(what) = delivered(set, machine).await {
        return Err(fail(what));
    }
    let warnings: Vec<String> = output()
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("setting "))
        .map(str::to_owned)
        .collect();
    if !warnings.is_empty() {
        return Err(fail(format!("configuration warnings: {warnings:?}")));
    }
    let _ = child.kill().await;
    Ok(())
}

/// Waits until `condition` holds, up to [`ARRIVES_WITHIN`].
async fn until<F, Fut>(condition: F) -> bool
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + ARRIVES_WITHIN;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn delivered(set: &SettingsSet, machine: &Machine) -> Result<(), String> {
    let arrived = match &set.delivered {
        Check::Nothing => true,
        Check::Receiver(name) => {
            until(|| async { !machine.receivers[name].received().is_empty() }).await
        }
        Check::Email(to) => until(|| async { machine.acs_sent_to(to) }).await,
        Check::Dataverse => until(|| async { !machine.dataverse.records().is_empty() }).await,
        Check::HubSpot => until(|| async { !machine.hubspot.contacts().is_empty() }).await,
        Check::Salesforce => until(|| async { !machine.salesforce.leads().is_empty() }).await,
        Check::Marketo => until(|| async { !machine.marketo.leads().is_empty() }).await,
        Check::Routes { taken, skipped } => {
            let taken_arrived =
                until(|| async { !machine.receivers[taken].received().is_empty() }).await;
            if !machine.receivers[skipped].received().is_empty() {
                return Err(format!("the {skipped} route took a lead it does not route"));
            }
            taken_arrived
        }
    };
    if arrived {
        Ok(())
    } else {
        Err("the destination it switches on got nothing".into())
    }
}

impl Machine {
    /// Whether the fake ACS accepted an email to `address`.
    fn acs_sent_to(&self, address: &str) -> bool {
        self.acs.sent().iter().any(|email| {
            email["recipients"]["to"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|to| to["address"] == address)
        })
    }
}

fn value_of(set: &SettingsSet, name: &str) -> String {
    set.settings
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A timer invocation as the host sends it (captured from a real host).
fn timer_payload(function: &str) -> String {
    json!({
        "Data": {"timer": {"Schedule": {"AdjustForDST": true}, "ScheduleStatus": null, "IsPastDue": false}},
        "Metadata": {"sys": {
            "MethodName": function,
            "UtcNow": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "RandGuid": uuid::Uuid::new_v4().to_string(),
        }},
    })
    .to_string()
}
