//! The machine and the software the run measured, for the report.

use crate::procfs::load_average;
use serde::Serialize;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[derive(Serialize)]
pub struct Machine {
    pub nproc: usize,
    pub cpu: String,
    pub kernel: String,
    pub load_average_at_start: String,
    pub load_average_at_end: String,
    pub node: String,
    pub azurite: String,
    pub maildev: String,
    pub data_tables_js: String,
    pub commit: String,
    pub handler_binary: String,
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The version of an npm package installed in `root`'s node_modules.
fn package_version(root: &Path, package: &str) -> String {
    let path = root.join("node_modules").join(package).join("package.json");
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

pub fn machine(handler_binary: &Path) -> Machine {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "?".into());
    let dirty = !command_output("git", &["status", "--porcelain"]).is_empty();
    Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu,
        kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned(),
        load_average_at_start: load_average(),
        load_average_at_end: String::new(),
        node: command_output("node", &["--version"]),
        azurite: package_version(root, "azurite"),
        maildev: package_version(root, "maildev"),
        data_tables_js: package_version(root, "@azure/data-tables"),
        commit: format!(
            "{}{}",
            command_output("git", &["rev-parse", "--short", "HEAD"]),
            if dirty {
                " (with uncommitted changes)"
            } else {
                ""
            }
        ),
        handler_binary: handler_binary.display().to_string(),
    }
}
