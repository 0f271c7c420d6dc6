//! Logging: `tracing` to stdout, which the Functions host forwards to its
//! logs and Application Insights. `RUST_LOG` sets the level (default `info`).
//! Customer data is never logged at `info`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The host adds its own timestamps and colours are noise in its logs.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// For commands whose stdout is their output (`leads list`, `leads
/// export`): logs go to stderr, warnings and errors only unless `RUST_LOG`
/// says otherwise.
pub fn init_stderr() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
