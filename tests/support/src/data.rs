//! The shared lead payloads, as files under `tests/data/leads`.

use std::path::PathBuf;

/// A payload from `tests/data/leads` (copied from the shared test data).
pub fn testdata(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../data/leads")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
