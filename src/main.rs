//! `handler`: the Azure Functions custom handler, and its command line
//! ([`marketplace_leads::cli`]). Reads the settings once; `serve` (the
//! default) builds the application and runs it until stopped, any other
//! command runs and exits.

use clap::Parser;
use marketplace_leads::cli::{self, Cli, Command};
use marketplace_leads::configuration::{self, Settings};
use marketplace_leads::startup::Application;
use marketplace_leads::telemetry;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let command = Cli::parse()
        .command
        .unwrap_or(Command::Serve { port: None });
    match command {
        // The service logs to stdout, which the Functions host collects;
        // commands whose stdout is their output log to stderr.
        Command::Serve { .. } => telemetry::init(),
        _ => telemetry::init_stderr(),
    }
    let settings = match Settings::from_env() {
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
