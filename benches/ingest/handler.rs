//! The release `handler` as the Functions host runs it: a child process
//! bound to `FUNCTIONS_CUSTOMHANDLER_PORT` (no key check, no timers of its
//! own), logging to /dev/null.

use crate::child::ChildServer;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testkit::free_port;

/// The binary measured: the release build of this package, or
/// `BENCH_HANDLER` when set (a binary built elsewhere).
pub fn binary() -> PathBuf {
    std::env::var_os("BENCH_HANDLER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_handler")))
}

/// Other builds of the handler to compare with [`binary`]:
/// `BENCH_HANDLER_VARIANTS=mimalloc=/path/to/handler,...` (for allocator
/// experiments, which need a different build).
pub fn variants() -> Vec<(String, PathBuf)> {
    std::env::var("BENCH_HANDLER_VARIANTS")
        .unwrap_or_default()
        .split(',')
        .filter_map(|pair| {
            let (name, path) = pair.split_once('=')?;
            let path = PathBuf::from(path.trim());
            assert!(
                path.exists(),
                "BENCH_HANDLER_VARIANTS: {} not found",
                path.display()
            );
            Some((name.trim().to_owned(), path))
        })
        .collect()
}

/// Where a child's output goes: /dev/null, or a file in `BENCH_LOG_DIR`
/// when set (to see why a request failed).
pub fn log_file(what: &str, port: u16) -> Stdio {
    let Some(dir) = std::env::var_os("BENCH_LOG_DIR") else {
        return Stdio::null();
    };
    let path = PathBuf::from(dir).join(format!("{what}-{port}.log"));
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map(Stdio::from)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where the handler stores leads and sends mail.
#[derive(Clone)]
pub struct Backends {
    pub storage: String,
    pub smtp_url: String,
}

/// Starts `binary` on a free port with its leads in `table`; `extra`
/// settings are added to (or override) the base ones.
pub fn spawn(
    binary: &Path,
    backends: &Backends,
    table: &str,
    extra: &[(&str, String)],
) -> ChildServer {
    let port = free_port();
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .env("LEADS_STORAGE", &backends.storage)
        .env("LEADS_TABLE", table)
        .env("DIGEST_TO", "bench@example.com")
        .env("DIGEST_FROM", "marketplace-leads@example.com")
        .env("SMTP_URL", &backends.smtp_url);
    for (name, value) in extra {
        command.env(name, value);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(log_file("handler", port))
        .stderr(log_file("handler", port))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
    ChildServer::new(child, port)
}
