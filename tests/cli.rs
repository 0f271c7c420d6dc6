//! The `handler` binary itself: start-up validation and graceful shutdown.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn handler() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_handler"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command
}

#[test]
fn bad_configuration_exits_at_start_naming_the_setting() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "LEADS_STORAGE"),
        (
            &[("LEADS_STORAGE", "not a connection string")],
            "LEADS_STORAGE",
        ),
        (
            &[
                ("AzureWebJobsStorage", "UseDevelopmentStorage=true"),
                ("DIGEST_TO", "nobody"),
            ],
            "DIGEST_TO",
        ),
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("DIGEST_SCHEDULE", "every hour"),
            ],
            "DIGEST_SCHEDULE",
        ),
        (
            &[(
                "LEADS_STORAGE",
                "AccountName=a;AccountKey=c2VjcmV0LWtleQ==;TableEndpoint=ftp://x",
            )],
            "LEADS_STORAGE",
        ),
        // Settings that would start and then never work.
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("LEADS_TABLE", "tables"),
            ],
            "LEADS_TABLE",
        ),
        (
            &[(
                "LEADS_STORAGE",
                "AccountName=a;AccountKey=not-base64-c2VjcmV0;EndpointSuffix=core.windows.net",
            )],
            "LEADS_STORAGE",
        ),
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                (
                    "SMTP_URL",
                    "smtp://user:c2VjcmV0LWtleQ@127.0.0.1:1025?tls=bogus",
                ),
            ],
            "SMTP_URL",
        ),
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("DIGEST_SCHEDULE", "0 0 8 30 2 *"),
            ],
            "DIGEST_SCHEDULE",
        ),
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("WEBHOOK_URL", "https://hooks.example.com/leads"),
            ],
            "WEBHOOK_SECRET",
        ),
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("NOTIFY_TO", "sales@contoso.com"),
            ],
            "NOTIFY_TO",
        ),
        // A secret pasted with a line break inside would fail every attempt.
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                ("HUBSPOT_TOKEN", "pat-na1-c2VjcmV0\nc2VjcmV0"),
            ],
            "HUBSPOT_TOKEN",
        ),
        // A route that could match no lead.
        (
            &[
                ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
                (
                    "TEAMS_WEBHOOK_URL__sales",
                    "https://example.invalid/workflow",
                ),
                ("TEAMS_OFFERS__sales", " , "),
            ],
            "TEAMS_OFFERS__sales",
        ),
    ];
    for (env, setting) in cases {
        let output = handler()
            .envs(env.iter().copied())
            .arg("serve")
            .output()
            .expect("run handler");
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("setting {setting}:")),
            "{env:?}: {stderr}"
        );
        assert!(
            !stderr.contains("c2VjcmV0LWtleQ") && !stderr.contains("c2VjcmV0"),
            "no secret in the message: {stderr}"
        );
    }
}

/// A route of a destination that is not switched on (its URL blank, as a
/// template writes it) does not stop start-up: the handler starts and says
/// which setting applies to nothing, and which name was probably meant.
#[test]
fn doubtful_settings_start_with_a_warning_naming_them() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let mut child = handler()
        .envs([
            ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
            ("TEAMS_WEBHOOK_URL__sales", ""),
            ("TEAMS_OFFERS__sales", "fabrikam.*"),
            ("DIGEST_SCHEDUEL", "0 0 8 * * *"),
        ])
        .env("HANDLER_PORT", port.to_string())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run handler");
    let mut stdout = child.stdout.take().expect("stdout");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    while !(seen.contains("listening") && seen.contains("DIGEST_SCHEDUEL")) {
        assert!(
            Instant::now() < deadline,
            "no start-up with warnings: {seen}"
        );
        match stdout.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buffer[..n])),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("setting TEAMS_OFFERS__sales: applies to the destination teams:sales, which is not switched on"),
        "{seen}"
    );
    assert!(seen.contains("did you mean DIGEST_SCHEDULE?"), "{seen}");
    assert!(seen.contains("listening"), "it started: {seen}");
}

#[test]
fn settings_are_checked_without_starting_and_listed_from_the_registry() {
    let checked = handler()
        .envs([
            ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
            ("SMTP_URL", "smtp://127.0.0.1:1025"),
            ("DIGEST_TO", "sales@contoso.example; ops@contoso.example"),
            ("DIGEST_FROM", "leads@contoso.example"),
            (
                "TEAMS_WEBHOOK_URL__sales",
                "https://contoso.example/workflows/1",
            ),
            ("WEBHOOK_URL", "https://hooks.contoso.example/leads"),
            ("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("HUBSPOT_OFFERS", "contoso.*"),
        ])
        .args(["settings"])
        .output()
        .expect("run handler settings");
    let out = String::from_utf8_lossy(&checked.stdout);
    let err = String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{out}{err}");
    assert!(out.contains("storage   account devstoreaccount1"), "{out}");
    assert!(
        out.contains("digest    to 2 recipient(s), on \"0 0 * * * *\""),
        "{out}"
    );
    assert!(out.contains("deliver   to teams:sales, webhook"), "{out}");
    assert!(out.contains("OK, with 1 warning (above)"), "{out}");
    assert!(
        err.contains("setting HUBSPOT_OFFERS: applies to the destination hubspot"),
        "the warning is named: {err}"
    );
    assert!(
        !out.contains("whsec_") && !err.contains("whsec_"),
        "no secret"
    );

    let wrong = handler()
        .envs([
            ("LEADS_STORAGE", "UseDevelopmentStorage=true"),
            ("WEBHOOK_URL", "https://hooks.contoso.example/leads"),
        ])
        .args(["settings"])
        .output()
        .expect("run handler settings");
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("WEBHOOK_SECRET"),
        "the error names the setting"
    );

    // Listing needs nothing set, and names every kind the registry has.
    let listed = handler()
        .args(["settings", "--list", "--json"])
        .output()
        .expect("run handler settings --list");
    assert!(listed.status.success());
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    let kinds: Vec<&str> = listed["destinations"]
        .as_array()
        .expect("destinations")
        .iter()
        .filter_map(|k| k["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        [
            "email",
            "teams",
            "webhook",
            "dataverse",
            "hubspot",
            "salesforce",
            "marketo"
        ]
    );
    assert!(listed["deployed"]
        .as_array()
        .expect("deployed")
        .iter()
        .any(|n| n == "DIGEST_TO"));
}

#[test]
fn standalone_server_answers_readiness_and_stops_on_sigterm() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    // Storage need not be up for the server to start and answer readiness.
    let mut child = handler()
        .env(
            "LEADS_STORAGE",
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1",
        )
        .env("HANDLER_PORT", port.to_string())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start handler");

    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::Write;
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            break answer;
        }
        assert!(Instant::now() < deadline, "handler did not start");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "handler did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(25));
    };
    assert!(status.success(), "{status}");
    let mut logs = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(
        logs.contains("LEAD_INGEST_KEY is not set"),
        "loud warning: {logs}"
    );
    assert!(logs.contains("SIGTERM received"), "{logs}");
}

#[test]
fn a_weekend_schedule_starts() {
    // `6-7` (Saturday and Sunday) was refused: the renumbering wrapped it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let output = handler()
        .env(
            "LEADS_STORAGE",
            "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1",
        )
        .env("DIGEST_SCHEDULE", "0 0 8 * * 6-7")
        .env("HANDLER_PORT", port.to_string())
        .args(["digest", "--dry-run"])
        .output()
        .unwrap();
    // It got past the settings (storage is not there, so the run itself fails).
    assert_ne!(
        output.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
