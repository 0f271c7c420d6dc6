//! `handler`: the Azure Functions custom handler, and its command line
//! ([`marketplace_leads::cli`]). Reads the settings once; `serve` (the
//! default) builds the application and runs it until stopped, any other
//! command runs and exits.

use clap::Parser;
use marketplace_leads::cli::{self, Cli, Command};
use marketplace_leads::configuration::{self, Settings};
use marketplace_leads::delivery::Destinations;
use marketplace_leads::startup::Application;
use marketplace_leads::store::StoreError;
use marketplace_leads::telemetry;
use std::process::ExitCode;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let runtime = match runtime(std::env::var("HANDLER_RUNTIME").ok().as_deref()) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("handler: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run())
}

/// The tokio runtime: multi-thread with ONE worker by default.
/// `HANDLER_RUNTIME` (undocumented: for `cargo bench --bench ingest`, which
/// compares flavours) picks `current_thread`, `multi_thread` (one worker
/// per core, what `#[tokio::main]` gave) or `multi_thread:N`.
// Why one worker: the handler waits on storage, not on CPU. Measured by the
// benchmark against one worker per core, it spends x0.90 the CPU per lead at
// 1 connection and x0.83 at 16 with the same p99 (bench-results/latest.md),
// and a Flex Consumption instance of 2,048 MB has about one core anyway.
fn runtime(flavour: Option<&str>) -> Result<tokio::runtime::Runtime, String> {
    let multi_thread = |workers: Option<usize>| {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = workers {
            builder.worker_threads(workers);
        }
        builder
    };
    let mut builder = match flavour.map(str::trim) {
        None | Some("") => multi_thread(Some(1)),
        Some("multi_thread") => multi_thread(None),
        Some("current_thread") => tokio::runtime::Builder::new_current_thread(),
        Some(other) => {
            let workers = other
                .strip_prefix("multi_thread:")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| {
                    format!(
                        "HANDLER_RUNTIME must be current_thread, multi_thread or \
                         multi_thread:N (N from 1 to 64), not {other:?}"
                    )
                })?;
            multi_thread(Some(workers))
        }
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the async runtime: {e}"))
}

async fn run() -> ExitCode {
    let command = Cli::parse()
        .command
        .unwrap_or(Command::Serve { port: None });
    match command {
        // The service logs to stdout, which the Functions host collects;
        // commands whose stdout is their output log to stderr.
        Command::Serve { .. } => telemetry::init(),
        _ => telemetry::init_stderr(),
    }
    if let Command::Settings(options) = &command {
        if options.list {
            // Lists what is read: needs nothing set.
            print!("{}", cli::settings::list(options.json));
            return ExitCode::SUCCESS;
        }
    }
    // Every setting is checked before any command runs, each destination's
    // own included (reading them does no I/O); what is only doubtful is
    // logged, naming the setting.
    let read = if matches!(command, Command::Route(_)) {
        Settings::from_env_without_storage()
    } else {
        Settings::from_env()
    };
    let settings = match read.and_then(|settings| {
        for warning in Destinations::from_settings(&settings)?.warnings() {
            tracing::warn!("{warning}");
        }
        Ok(settings)
    }) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("handler: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Serve { port } => serve(settings, port).await,
        other => cli::run(other, settings).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("handler: {error:#}");
            let hint = error
                .chain()
                .find_map(|e| e.downcast_ref::<StoreError>())
                .and_then(StoreError::hint);
            if let Some(hint) = hint {
                eprintln!("handler: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, port: Option<u16>) -> anyhow::Result<()> {
    let port = match port {
        Some(port) => port,
        None => configuration::standalone_port(|name| std::env::var(name).ok())?,
    };
    Application::build(settings, port)
        .await?
        .run_until_stopped()
        .await;
    Ok(())
}
