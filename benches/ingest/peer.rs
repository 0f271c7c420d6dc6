//! The Node.js peer (`peer/server.js`): the same guarantee as LeadIngest
//! written with the official `@azure/data-tables` SDK, run as a child
//! process with `node`, logging to /dev/null.

use crate::child::ChildServer;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use testkit::free_port;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn script() -> PathBuf {
    root().join("benches/ingest/peer/server.js")
}

/// Panics with what to do when the SDK is not installed.
pub fn check_installed() {
    let sdk = root().join("node_modules/@azure/data-tables/package.json");
    assert!(
        sdk.exists(),
        "{} not found: run scripts/setup-dev (npm ci) first",
        sdk.display()
    );
}

/// Starts the peer on a free port with its leads in `table`.
pub fn spawn(storage: &str, table: &str) -> ChildServer {
    let port = free_port();
    let child = Command::new("node")
        .arg(script())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PEER_PORT", port.to_string())
        .env("LEADS_STORAGE", storage)
        .env("LEADS_TABLE", table)
        .stdin(Stdio::null())
        .stdout(crate::handler::log_file("peer", port))
        .stderr(crate::handler::log_file("peer", port))
        .spawn()
        .expect("spawn node (the Node.js peer)");
    ChildServer::new(child, port)
}
