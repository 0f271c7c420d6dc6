//! `spawn_app()`: each test gets its own application, on port 0, with its
//! own randomly named tables in the shared Azurite — isolation without mocks.

use crate::services::{shared_azurite, shared_maildev, DEV_ACCOUNT, DEV_KEY};
use crate::tables::read_table;
use azure_data_tables::prelude::*;
use marketplace_leads::clock::Clock;
use marketplace_leads::configuration::Settings;
use marketplace_leads::delivery::Deliverer;
use marketplace_leads::digest::{DigestError, DigestRunner, RunReport};
use marketplace_leads::startup::Application;
use marketplace_leads::store::{Checkpoint, LeadStore};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// A running application with its own tables.
pub struct TestApp {
    pub address: String,
    pub table: String,
    pub recipient: String,
    pub settings: Settings,
    /// The app settings it was built from, for the `handler` command line.
    pub env: Vec<(String, String)>,
    pub clock: Clock,
    pub client: reqwest::Client,
    /// The app's own delivery engine (its first attempts share its lane).
    deliverer: Option<Deliverer>,
    pub tables: TableServiceClient,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub struct AppOptions {
    pub storage: String,
    pub smtp_url: Option<String>,
    pub key: Option<String>,
    pub host_port: Option<u16>,
    pub extra: Vec<(String, String)>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            storage: shared_azurite().connection_string(),
            smtp_url: Some(shared_maildev().smtp_url()),
            key: None,
            host_port: None,
            extra: Vec::new(),
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    crate::init_logs();
    let table = format!("Leads{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let recipient = format!("publisher-{}@example.com", uuid::Uuid::new_v4().simple());
    let mut env: HashMap<String, String> = HashMap::from([
        ("LEADS_STORAGE".into(), options.storage.clone()),
        ("LEADS_TABLE".into(), table.clone()),
        ("DIGEST_TO".into(), recipient.clone()),
        ("DIGEST_FROM".into(), "marketplace-leads@example.com".into()),
    ]);
    if let Some(url) = &options.smtp_url {
        env.insert("SMTP_URL".into(), url.clone());
    }
    if let Some(key) = &options.key {
        env.insert("LEAD_INGEST_KEY".into(), key.clone());
    }
    if let Some(port) = options.host_port {
        env.insert("FUNCTIONS_CUSTOMHANDLER_PORT".into(), port.to_string());
    }
    env.extend(options.extra.iter().cloned());
    let settings = Settings::from_vars(env.clone()).expect("test settings");

    let clock = Clock::default();
    let app = Application::build_with_clock(settings.clone(), 0, clock.clone())
        .await
        .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let deliverer = app.deliverer();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = stop_rx.await;
    }));

    let tables = TableServiceClient::new(
        DEV_ACCOUNT,
        azure_storage::StorageCredentials::access_key(DEV_ACCOUNT, DEV_KEY),
    );
    let tables = match table_endpoint(&options.storage) {
        Some(endpoint) => azure_data_tables::clients::TableServiceClientBuilder::with_location(
            azure_storage::CloudLocation::Custom {
                account: DEV_ACCOUNT.into(),
                uri: endpoint,
            },
            azure_storage::StorageCredentials::access_key(DEV_ACCOUNT, DEV_KEY),
        )
        .retry(azure_core::RetryOptions::none())
        .build(),
        None => tables,
    };

    TestApp {
        address,
        table,
        recipient,
        settings,
        env: env.into_iter().collect(),
        clock,
        client: reqwest::Client::new(),
        deliverer,
        tables,
        stop: Some(stop_tx),
        server: Some(server),
    }
}

fn table_endpoint(connection: &str) -> Option<String> {
    connection
        .split(';')
        .find_map(|p| p.strip_prefix("TableEndpoint="))
        .map(|e| e.trim_end_matches('/').to_owned())
}

/// Runs `binary` (the integration test's `env!("CARGO_BIN_EXE_handler")`,
/// which only a test crate knows) with `args`, PATH and `env` alone, to the
/// end.
pub fn run_cli<K, V>(
    binary: &str,
    env: impl IntoIterator<Item = (K, V)>,
    args: &[&str],
) -> std::process::Output
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    std::process::Command::new(binary)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the handler")
}

/// What a command printed, stdout then stderr.
pub fn said(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl TestApp {
    /// `binary` run with this app's settings (its destinations included),
    /// logging errors only, whatever its exit code.
    pub fn run_cli(&self, binary: &str, args: &[&str]) -> std::process::Output {
        let env = std::iter::once(("RUST_LOG".to_owned(), "error".to_owned()))
            .chain(self.env.iter().cloned());
        run_cli(binary, env, args)
    }

    /// A POST to `path_and_query` on this app, to finish and send.
    pub fn post(&self, path_and_query: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path_and_query}", self.address))
    }

    pub async fn post_lead(&self, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.post("/api/LeadIngest")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("POST /api/LeadIngest")
    }

    /// Runs the digest once, as the timer would.
    pub async fn run_digest(&self) -> Result<RunReport, DigestError> {
        self.digest().run(self.clock.now(), false).await
    }

    pub fn store(&self) -> LeadStore {
        LeadStore::from_settings(&self.settings.storage).expect("a store")
    }

    /// The digest's checkpoint as stored now (there must be one).
    pub async fn checkpoint(&self) -> Checkpoint {
        let (checkpoint, _) = self
            .store()
            .digest_state()
            .checkpoint()
            .await
            .expect("the checkpoint can be read")
            .expect("a checkpoint is stored");
        checkpoint
    }

    pub fn digest(&self) -> DigestRunner {
        DigestRunner::from_settings(self.store(), &self.settings)
    }

    /// The delivery engine, as the LeadDeliver timer runs it; `None` with no
    /// destination configured.
    pub fn deliverer(&self) -> Option<Deliverer> {
        self.deliverer.clone()
    }

    /// Every row of the leads table, read with a plain client (not ours).
    pub async fn rows(&self) -> Vec<Map<String, Value>> {
        read_table(&self.tables.table_client(&self.table)).await
    }

    /// Lead rows only (not de-duplication markers).
    pub async fn lead_rows(&self) -> Vec<Map<String, Value>> {
        self.rows()
            .await
            .into_iter()
            .filter(|r| r["RowKey"].as_str().is_some_and(|k| k.starts_with('L')))
            .collect()
    }

    pub async fn digest_rows(&self) -> Vec<Map<String, Value>> {
        read_table(&self.tables.table_client(format!("{}Digest", self.table))).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Signals shutdown (as SIGTERM does) without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Whether the server has finished shutting down.
    pub fn has_stopped(&self) -> bool {
        self.server.as_ref().is_none_or(|s| s.is_finished())
    }
}
