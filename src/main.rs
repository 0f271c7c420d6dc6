//! `handler`: the Azure Functions custom handler, and its command line.

use clap::{Parser, Subcommand};
use marketplace_leads::configuration::{self, Settings};
use marketplace_leads::digest::{DigestRunner, Outcome};
use marketplace_leads::export;
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
    /// Read stored leads: list them here, or export them for a CRM.
    Leads {
        #[command(subcommand)]
        command: LeadsCommand,
    },
}

#[derive(Subcommand)]
enum LeadsCommand {
    /// Show the leads received in a time window as a table, newest last.
    ///
    /// Partner Center's test leads (MSFT_TEST...) are counted but hidden
    /// unless --include-tests. Long cells are cut short with "…".
    #[command(after_help = LeadsCommand::TIMES)]
    List(export::Selection),
    /// Export the leads received in a time window, oldest first, as CSV or
    /// JSON Lines.
    ///
    /// CSV (RFC 4180, UTF-8, CRLF): a header row, then per lead the
    /// customer's split columns, description, offer, action, lead source,
    /// receive time (UTC) and lead id, ready for the Dynamics 365,
    /// Salesforce and HubSpot import wizards. A cell that begins with =, +,
    /// -, @, tab or carriage return gets a leading ' so that spreadsheets do
    /// not run it as a formula (CSV injection); phone numbers such as
    /// +81 3-1234-5678 therefore appear as '+81 3-1234-5678, an accepted
    /// trade-off. JSON Lines: one object per lead with every stored column,
    /// the raw payload as received in RawBody; nothing is neutralised.
    ///
    /// Streams page by page in bounded memory; progress shows on stderr
    /// when it is a terminal. Partner Center's test leads are left out
    /// unless --include-tests.
    #[command(after_help = LeadsCommand::TIMES)]
    Export(export::ExportOptions),
}

impl LeadsCommand {
    const TIMES: &'static str = "Times: RFC 3339 (2026-11-22T10:00:00Z), a date (2026-11-22, \
        midnight UTC), or a span before now (30m, 24h, 7d, 2w). The window includes \
        --since and excludes --until; only its key range of the table is read.";
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        // Their stdout is their output: logs go to stderr.
        Some(Command::Leads { .. }) => telemetry::init_stderr(),
        _ => telemetry::init(),
    }
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
        Command::Leads { command } => leads(settings, command).await,
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

async fn leads(settings: Settings, command: LeadsCommand) -> anyhow::Result<ExitCode> {
    match command {
        LeadsCommand::List(selection) => export::list(&settings.storage, selection).await?,
        LeadsCommand::Export(options) => export::export(&settings.storage, options).await?,
    }
    Ok(ExitCode::SUCCESS)
}
