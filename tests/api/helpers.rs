//! Test harness: real Azurite and MailDev processes (from the npm packages
//! pinned in package-lock.json), and `spawn_app()`, which gives each test its
//! own application on port 0 with its own randomly named tables.

use azure_data_tables::prelude::*;
use futures::StreamExt;
use marketplace_leads::clock::Clock;
use marketplace_leads::configuration::Settings;
use marketplace_leads::digest::{DigestError, DigestRunner, RunReport, SETTLE};
use marketplace_leads::startup::Application;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn node_bin(tool: &str) -> PathBuf {
    let dir = std::env::var_os("LEADS_NODE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin"));
    let path = dir.join(tool);
    assert!(
        path.exists(),
        "{} not found: run scripts/setup-dev (npm ci) first",
        path.display()
    );
    path
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Spawns `program` so that it dies with the test process: a shell watches
/// our pid and kills the server when we are gone, even after a panic.
fn spawn_tied_to_us(program: &PathBuf, args: &[String]) -> Child {
    // SIGINT lets Azurite save its data before exiting (`set -m` keeps the
    // background job from ignoring it); SIGKILL if it has not exited in 8 s (its autosave runs every 5 s).
    let script = r#"set -m; prog="$1"; shift; "$prog" "$@" & child=$!
stop() {
  kill -INT $child 2>/dev/null
  for _ in $(seq 40); do kill -0 $child 2>/dev/null || exit 0; sleep 0.2; done
  kill -KILL $child 2>/dev/null; exit 0
}
trap stop TERM INT
while kill -0 "$TEST_PID" 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.2; done
stop"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(program)
        .args(args)
        .env("TEST_PID", std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a test server")
}

fn wait_until_listening(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_until_closed(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(Instant::now() < deadline, "port {port} still open");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A real Azurite Table service.
pub struct Azurite {
    pub port: u16,
    location: Option<tempdir::TempDir>,
    child: Option<Child>,
}

impl Azurite {
    /// In memory: for tests that never stop it.
    pub fn start() -> Self {
        let mut azurite = Self {
            port: free_port(),
            location: None,
            child: None,
        };
        azurite.launch();
        azurite
    }

    /// On disk, so it can be stopped and started again with its data.
    pub fn start_persistent() -> Self {
        let mut azurite = Self {
            port: free_port(),
            location: Some(tempdir::TempDir::new()),
            child: None,
        };
        azurite.launch();
        azurite
    }

    fn launch(&mut self) {
        let mut args: Vec<String> = [
            "--tableHost",
            "127.0.0.1",
            "--tablePort",
            &self.port.to_string(),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        match &self.location {
            Some(dir) => args.extend(["--location".into(), dir.path().display().to_string()]),
            None => args.push("--inMemoryPersistence".into()),
        }
        self.child = Some(spawn_tied_to_us(&node_bin("azurite-table"), &args));
        wait_until_listening(self.port, "Azurite");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
            wait_until_closed(self.port);
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};\
             TableEndpoint=http://127.0.0.1:{}/{DEV_ACCOUNT};",
            self.port
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Azurite shared by every test of this binary; tests isolate by table.
pub fn shared_azurite() -> &'static Azurite {
    static AZURITE: OnceLock<Azurite> = OnceLock::new();
    AZURITE.get_or_init(Azurite::start)
}

/// A real MailDev: SMTP sink plus its REST API.
pub struct MailDev {
    pub smtp_port: u16,
    pub web_port: u16,
    child: Option<Child>,
}

impl MailDev {
    pub fn start() -> Self {
        let mut maildev = Self {
            smtp_port: free_port(),
            web_port: free_port(),
            child: None,
        };
        maildev.launch();
        maildev
    }

    fn launch(&mut self) {
        let args: Vec<String> = [
            "--ip",
            "127.0.0.1",
            "--web-ip",
            "127.0.0.1",
            "-s",
            &self.smtp_port.to_string(),
            "-w",
            &self.web_port.to_string(),
            "--silent",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.child = Some(spawn_tied_to_us(&node_bin("maildev"), &args));
        wait_until_listening(self.smtp_port, "MailDev SMTP");
        wait_until_listening(self.web_port, "MailDev web");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
            wait_until_closed(self.smtp_port);
        }
    }

    /// Starts again on the same ports (its mailbox starts empty).
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    pub fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.smtp_port)
    }

    /// Every email MailDev holds that was sent to `recipient`.
    pub async fn emails_to(&self, recipient: &str) -> Vec<Value> {
        let all: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{}/email", self.web_port))
            .await
            .expect("MailDev REST API")
            .json()
            .await
            .expect("MailDev JSON");
        all.into_iter()
            .filter(|email| {
                email["to"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|to| to["address"].as_str() == Some(recipient))
            })
            .collect()
    }
}

impl Drop for MailDev {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn shared_maildev() -> &'static MailDev {
    static MAILDEV: OnceLock<MailDev> = OnceLock::new();
    MAILDEV.get_or_init(MailDev::start)
}

/// A running application with its own tables.
pub struct TestApp {
    pub address: String,
    pub table: String,
    pub recipient: String,
    pub settings: Settings,
    pub clock: Clock,
    pub client: reqwest::Client,
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
    init_logs();
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
    let settings = Settings::from_lookup(|name| env.get(name).cloned()).expect("test settings");

    let clock = Clock::default();
    let app = Application::build_with_clock(settings.clone(), 0, clock.clone())
        .await
        .expect("build the application");
    let address = format!("http://127.0.0.1:{}", app.port());
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
        clock,
        client: reqwest::Client::new(),
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

impl TestApp {
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

    /// Lets the digest's settle margin pass, then runs the digest once, as
    /// the timer would.
    pub async fn run_digest(&self) -> Result<RunReport, DigestError> {
        self.clock.advance(SETTLE + Duration::from_secs(1));
        self.digest().run(self.clock.now(), false).await
    }

    pub fn digest(&self) -> DigestRunner {
        let store =
            marketplace_leads::store::LeadStore::new(&self.settings.storage).expect("a store");
        DigestRunner::new(
            store,
            self.settings.digest.clone(),
            self.settings.storage.leads_table.clone(),
        )
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

pub async fn read_table(table: &TableClient) -> Vec<Map<String, Value>> {
    let mut stream = table.query().into_stream::<Map<String, Value>>();
    let mut rows = Vec::new();
    while let Some(page) = stream.next().await {
        match page {
            Ok(page) => rows.extend(page.entities),
            Err(e) if e.to_string().contains("404") || format!("{e:?}").contains("NotFound") => {
                break
            }
            Err(e) => panic!("query {}: {e}", table.table_name()),
        }
    }
    rows
}

/// A payload from `tests/data/leads` (copied from the shared test data).
pub fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/leads")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        marketplace_leads::telemetry::init();
    }
}

/// A temporary directory removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("leads-test-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).expect("create a temp dir");
            Self(path)
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
