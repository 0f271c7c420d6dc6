//! `handler`: the Azure Functions custom handler, and its command line.

use clap::{Parser, Subcommand};
use marketplace_leads::configuration::{self, Settings};
use marketplace_leads::digest::{DigestRunner, Outcome};
use marketplace_leads::startup::Application;
use marketplace_leads::store::LeadStore;
use marketplace_leads::telemetry;
use std::process::ExitCode;
use time::OffsetDateTime;

/// Receives Microsoft commercial-marketplace leads, stores them in Azure
/// Table storage and emails a digest of new leads. Configured by the same
/// environment variables (app settings) as the deployed function app.
#[derive(Parser)]
#[command(name = "handler", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve LeadIngest and LeadDigest (the default). Under the Functions
    /// host it binds FUNCTIONS_CUSTOMHANDLER_PORT; standalone, 127.0.0.1:7071.
    Serve {
        /// Standalone port [env: HANDLER_PORT] [default: 7071]
        #[arg(long)]
        port: Option<u16>,
    },
    /// Run the digest once now.
    Digest {
        /// Print the digest that would be sent; send nothing, move nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    telemetry::init();
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("handler: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve { port: None }) {
        Command::Serve { port } => serve(settings, port).await,
        Command::Digest { dry_run } => digest(settings, dry_run).await,
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("handler: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, port: Option<u16>) -> anyhow::Result<ExitCode> {
    let port = match port {
        Some(port) => port,
        None => configuration::standalone_port(|name| std::env::var(name).ok())?,
    };
    let app = Application::build(settings, port).await?;
    app.run_until_stopped().await;
    Ok(ExitCode::SUCCESS)
}

async fn digest(settings: Settings, dry_run: bool) -> anyhow::Result<ExitCode> {
    let store = LeadStore::new(&settings.storage)?;
    store.ensure_tables().await?;
    let runner = DigestRunner::new(store, settings.digest, settings.storage.leads_table);
    let report = runner.run(OffsetDateTime::now_utc(), dry_run).await?;
    match &report.outcome {
        Outcome::DryRun { text } => println!("{text}"),
        _ => println!("{}", report.summary()),
    }
    Ok(ExitCode::SUCCESS)
}
