//! Real Azurite (Table storage) and MailDev (SMTP sink) processes, from the
//! npm packages pinned in package-lock.json, on free loopback ports, tied to
//! the test process so they die with it even after a panic.

use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const DEV_ACCOUNT: &str = "devstoreaccount1";
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub fn node_bin(tool: &str) -> PathBuf {
    let dir = std::env::var_os("LEADS_NODE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../node_modules/.bin")
        });
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
fn spawn_tied_to_us(program: &PathBuf, args: &[String], env: &[(&str, String)]) -> Child {
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
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn a test server")
}

pub fn wait_until_listening(port: u16, what: &str) {
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
    location: Option<tempfile::TempDir>,
    /// Storage accounts besides none: `AZURITE_ACCOUNTS` (then the
    /// development account is off).
    accounts: Vec<String>,
    child: Option<Child>,
}

impl Azurite {
    /// In memory: for tests that never stop it.
    pub fn start() -> Self {
        Self::start_with(None, Vec::new())
    }

    /// On disk, so it can be stopped and started again with its data.
    pub fn start_persistent() -> Self {
        Self::start_with(
            Some(tempfile::tempdir().expect("a temporary directory")),
            Vec::new(),
        )
    }

    /// In memory, serving one storage account per name (each with the
    /// development key): tests that must keep a table name as a user
    /// wrote it share one Azurite this way.
    pub fn start_with_accounts(names: &[&str]) -> Self {
        Self::start_with(None, names.iter().map(|n| n.to_string()).collect())
    }

    fn start_with(location: Option<tempfile::TempDir>, accounts: Vec<String>) -> Self {
        let mut azurite = Self {
            port: free_port(),
            location,
            accounts,
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
        let env: Vec<(&str, String)> = if self.accounts.is_empty() {
            Vec::new()
        } else {
            let accounts: Vec<String> = self
                .accounts
                .iter()
                .map(|name| format!("{name}:{DEV_KEY}"))
                .collect();
            vec![("AZURITE_ACCOUNTS", accounts.join(";"))]
        };
        self.child = Some(spawn_tied_to_us(&node_bin("azurite-table"), &args, &env));
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
        self.connection_string_of(DEV_ACCOUNT)
    }

    /// A connection string with an account SAS for the Table service
    /// (resource types service, container and object; `permissions`, e.g.
    /// `rwdlacu`), signed with the account key as the "Create an account
    /// SAS" reference specifies (version 2020-08-04); `tamper` changes one
    /// character of the signature, which Azurite must then refuse.
    pub fn sas_connection_string(&self, permissions: &str, tamper: bool) -> String {
        use base64::Engine as _;
        use hmac::Mac as _;
        let (version, expiry) = ("2020-08-04", "2099-01-01T00:00:00Z");
        let to_sign = format!("{DEV_ACCOUNT}\n{permissions}\nt\nsco\n\n{expiry}\n\n\n{version}\n");
        let key = base64::engine::general_purpose::STANDARD
            .decode(DEV_KEY)
            .expect("the well-known key is base64");
        let mut mac =
            hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length will do");
        mac.update(to_sign.as_bytes());
        let mut signature =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        if tamper {
            let first = if signature.starts_with('A') { "B" } else { "A" };
            signature.replace_range(..1, first);
        }
        let signature =
            percent_encoding::utf8_percent_encode(&signature, percent_encoding::NON_ALPHANUMERIC);
        format!(
            "SharedAccessSignature=sv={version}&ss=t&srt=sco&sp={permissions}&se={expiry}\
             &sig={signature};TableEndpoint=http://127.0.0.1:{}/{DEV_ACCOUNT};",
            self.port
        )
    }

    /// The connection string of one of the accounts it serves.
    pub fn connection_string_of(&self, account: &str) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={account};AccountKey={DEV_KEY};\
             TableEndpoint=http://127.0.0.1:{}/{account};",
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
        self.child = Some(spawn_tied_to_us(&node_bin("maildev"), &args, &[]));
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
