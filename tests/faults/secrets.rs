//! Credentials never leave the process: not in a log line, not in an
//! answer, not in the run history — whatever storage answers.

use super::*;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;
use testkit::{free_port, shared_azurite, DEV_ACCOUNT};

const SIG: &str = "c2VjcmV0LXNhcy1zaWduYXR1cmUtdmFsdWU";

fn handler_env(storage: &str) -> Vec<(String, String)> {
    vec![
        ("LEADS_STORAGE".into(), storage.into()),
        (
            "LEADS_TABLE".into(),
            format!("Secrets{}", &uuid::Uuid::new_v4().simple().to_string()[..8]),
        ),
        ("DIGEST_TO".into(), "a@example.com".into()),
        ("DIGEST_FROM".into(), "b@example.com".into()),
        ("SMTP_URL".into(), "smtp://127.0.0.1:9".into()),
        ("RUST_LOG".into(), "debug".into()),
    ]
}

/// Runs the standalone binary, makes it post a lead and run the digest
/// (storage failing as it does), and returns the answers and every line it
/// logged.
async fn exercise(storage: &str) -> (String, String, String) {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_handler"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HANDLER_PORT", port.to_string())
        .envs(handler_env(storage))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read as it comes: a full pipe would block the handler (debug logs).
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let client = reqwest::Client::new();
    let address = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..200 {
        if client.get(&address).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "the handler did not start");
    let ingest = client
        .post(format!("{address}/api/LeadIngest"))
        .body(lead("Sas"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let digest = client
        .post(format!("{address}/LeadDigest"))
        .body(r#"{"Data":{"timer":{"IsPastDue":false}},"Metadata":{}}"#)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let logs = stdout.join().unwrap() + &stderr.join().unwrap();
    assert!(logs.contains("DEBUG"), "debug logs were on");
    (ingest, digest, logs)
}

#[tokio::test]
async fn a_sas_signature_never_leaves_the_process() {
    // Storage that cannot be reached, by a SAS connection string.
    let dead = free_port();
    let storage = format!(
        "SharedAccessSignature=sv=2022-11-02&ss=t&srt=sco&sp=rwdlacu&se=2030-01-01T00:00:00Z&sig={SIG}%3D;\
         TableEndpoint=http://127.0.0.1:{dead}/{DEV_ACCOUNT}"
    );
    let (ingest, digest, logs) = exercise(&storage).await;
    report!("SAS and unreachable storage: ingest answered {ingest}; digest answered {digest}");
    for (what, text) in [
        ("ingest answer", &ingest),
        ("digest answer", &digest),
        ("logs", &logs),
    ] {
        assert!(
            !text.contains(SIG),
            "the signature is in the {what}: {text}"
        );
        let unredacted = text
            .match_indices("sig=")
            .filter(|(at, _)| !text[at + 4..].starts_with("REDACTED"))
            .count();
        assert_eq!(unredacted, 0, "a sig= value is in the {what}: {text}");
    }
    assert!(digest.contains("storage is unavailable"), "{digest}");
}

#[tokio::test]
async fn a_wrong_account_key_gets_a_short_answer_of_our_own() {
    let wrong_key = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleQ==";
    let storage = format!(
        "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={wrong_key};\
         TableEndpoint=http://127.0.0.1:{}/{DEV_ACCOUNT};",
        shared_azurite().port
    );
    let (ingest, digest, logs) = exercise(&storage).await;
    report!("wrong account key: digest answered {digest}");
    for (what, text) in [
        ("ingest answer", &ingest),
        ("digest answer", &digest),
        ("logs", &logs),
    ] {
        assert!(!text.contains(wrong_key), "the key is in the {what}");
        assert!(
            !text.contains("<?xml") && !text.contains("RequestId"),
            "service text in the {what}: {text}"
        );
    }
    assert!(digest.contains("HTTP 403"), "{digest}");
    assert!(digest.len() < 400, "a short message: {digest}");
    // The storage client logs its requests at debug, Authorization and all.
    for scheme in ["SharedKey ", "Basic ", "Bearer "] {
        let unredacted: Vec<&str> = logs
            .match_indices(scheme)
            .filter(|(at, _)| !logs[at + scheme.len()..].starts_with("REDACTED"))
            .map(|(at, _)| &logs[at..(at + 60).min(logs.len())])
            .collect();
        assert!(
            unredacted.is_empty(),
            "a {scheme}credential in the debug log: {unredacted:?}"
        );
    }
}
