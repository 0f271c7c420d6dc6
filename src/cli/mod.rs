//! The `handler` command line: serve (the default), run the digest once, or
//! read stored leads. A clap `Subcommand` whose `///` docs are the help;
//! `main` starts the server, [`run`] runs every other command.

pub mod deliveries;
pub mod leads;
pub mod route;
pub mod settings;
pub mod status;
pub mod table;

use crate::configuration::Settings;
use crate::digest::{DigestRunner, Outcome};
use crate::store::LeadStore;
use clap::{Parser, Subcommand};
use time::OffsetDateTime;

/// The command line; its help names the destinations the registry has.
#[derive(Parser)]
#[command(name = "handler", version, about = about())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

fn about() -> String {
    format!(
        "Receives Microsoft commercial-marketplace leads, stores them in Azure Table \
         storage, emails a digest of new leads and acts on each one ({}). Configured by \
         the same environment variables (app settings) as the deployed function app.",
        crate::delivery::registry::titles()
    )
}

#[derive(Subcommand)]
pub enum Command {
    /// Serve LeadIngest, LeadDigest and LeadDeliver (the default). Under the
    /// Functions host it binds FUNCTIONS_CUSTOMHANDLER_PORT; standalone,
    /// 127.0.0.1:7071.
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
    /// Per-lead deliveries: list, show, retry, backfill.
    #[command(about = format!(
        "Per-lead deliveries ({}): list, show, retry, backfill",
        crate::delivery::registry::titles()
    ))]
    Deliveries {
        #[command(subcommand)]
        command: deliveries::DeliveriesCommand,
    },
    /// Show which destinations a lead would go to, and why, under the
    /// routing settings here (TEAMS_OFFERS__analytics, HUBSPOT_ACTIONS, …).
    /// Stores and sends nothing.
    Route(route::RouteOptions),
    /// Is it doing its job? The last digest and delivery sweep, deliveries
    /// pending and dead, leads today — read from storage alone. Exits 1
    /// when the digest or the sweep is overdue (a timer that stopped).
    Status(status::StatusOptions),
    /// Check the settings set here (the app settings, or the environment):
    /// what a deployment with them starts with, each warning named; exits
    /// 2 on an error. --list prints every setting the handler reads.
    Settings(settings::SettingsOptions),
}

#[derive(Subcommand)]
pub enum LeadsCommand {
    /// Show the leads received in a time range as a table, newest last.
    ///
    /// Partner Center's test leads (MSFT_TEST...) are counted but hidden
    /// unless --include-tests. Long cells are cut short with "…".
    #[command(after_help = LeadsCommand::TIMES)]
    List(leads::Selection),
    /// Export the leads received in a time range, oldest first, as CSV or
    /// JSON Lines.
    ///
    /// CSV (RFC 4180, UTF-8, CRLF): a header row, then per lead the
    /// customer's split columns, description, offer, action, lead source,
    /// receive time (UTC) and lead id, ready for the Dynamics 365,
    /// Salesforce and HubSpot import wizards. A cell that begins with =, +,
    /// -, @, tab or carriage return gets a leading ' so that spreadsheets do
    /// not run it as a formula (CSV injection); phone numbers such as
    /// +81 3-1234-5678 therefore appear as '+81 3-1234-5678 — for a CRM
    /// import that keeps values as text, --no-formula-guard leaves them
    /// as they are (and the file must then not be opened in a spreadsheet).
    /// JSON Lines: one object per lead with every stored column, the raw
    /// payload as received in RawBody; nothing is neutralised.
    ///
    /// Streams page by page in bounded memory; progress shows on stderr
    /// when it is a terminal. Partner Center's test leads are left out
    /// unless --include-tests. A file given with --output is created
    /// readable by you only, and only a new path or a regular file is
    /// replaced.
    #[command(after_help = LeadsCommand::TIMES)]
    Export(leads::ExportOptions),
    /// Show the request bodies LeadIngest refused (invalid JSON, too
    /// large, …), kept so no lead is lost; --show ID prints one as received.
    #[command(after_help = LeadsCommand::TIMES)]
    Rejected(leads::RejectedOptions),
    /// Bring in leads stored elsewhere, as if they had arrived when they
    /// were created: from the table Partner Center's "Azure Table"
    /// destination writes (--from-table), or from `leads export --format
    /// jsonl` (--jsonl).
    ///
    /// A lead already here (imported before, or also posted to LeadIngest)
    /// is stored once. Imported leads are in no digest and go to no
    /// destination unless --deliver names some; then each gets them once,
    /// as its route allows. Rows that are not leads are counted and kept
    /// with the refused bodies (leads rejected).
    #[command(after_help = LeadsCommand::TIMES)]
    Import(leads::ImportOptions),
    /// Erase a person on request: every row kept about their leads (lead
    /// rows with their raw bodies, de-duplication markers, digest and
    /// delivery records — a pending delivery is cancelled —, dead letters,
    /// and refused bodies naming their email). Prints what it removed, and
    /// the destinations the leads were already delivered to, which it
    /// cannot erase. --dry-run first.
    Forget(leads::ForgetOptions),
    /// What the current rating rules would say of leads already stored:
    /// each lead whose rating would change, was and now, and why. A lead
    /// keeps the rating it got when it arrived; --apply writes the new
    /// ones (routes already taken are not taken again).
    #[command(after_help = LeadsCommand::TIMES)]
    Rate(leads::RateOptions),
}

impl LeadsCommand {
    const TIMES: &'static str = "Times: RFC 3339 (2026-11-22T10:00:00Z), a date (2026-11-22, \
        midnight UTC), or a span before now (30m, 24h, 7d, 2w). The range includes \
        --since and excludes --until; only its key range of the table is read.";
}

/// Runs a command other than `serve` (which `main` hands to
/// [`Application`](crate::startup::Application)).
pub async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { .. } => {
            anyhow::bail!("serve is started by main, not by cli::run")
        }
        Command::Digest { dry_run } => digest(settings, dry_run).await,
        Command::Leads {
            command: LeadsCommand::List(selection),
        } => leads::list(&settings.storage, selection).await,
        Command::Leads {
            command: LeadsCommand::Export(options),
        } => leads::export(&settings.storage, options).await,
        Command::Leads {
            command: LeadsCommand::Rejected(options),
        } => leads::rejected(&settings.storage, options).await,
        Command::Leads {
            command: LeadsCommand::Import(options),
        } => leads::import(&settings, options).await,
        Command::Leads {
            command: LeadsCommand::Forget(options),
        } => leads::forget(&settings.storage, options).await,
        Command::Leads {
            command: LeadsCommand::Rate(options),
        } => leads::rate(&settings.storage, options).await,
        Command::Deliveries { command } => deliveries::run(&settings, command).await,
        Command::Route(options) => route::run(&settings, options),
        Command::Status(options) => status::run(&settings, options).await,
        // `--list` needs no settings: `main` answers it before reading them.
        Command::Settings(_) => {
            print!("{}", settings::check(&settings)?);
            Ok(())
        }
    }
}

async fn digest(settings: Settings, dry_run: bool) -> anyhow::Result<()> {
    let store = LeadStore::from_settings(&settings.storage)?;
    let runner = DigestRunner::from_settings(store, &settings);
    let report = runner.run(OffsetDateTime::now_utc(), dry_run).await?;
    match &report.outcome {
        Outcome::DryRun { text } => println!("{text}"),
        _ => println!("{}", report.summary()),
    }
    Ok(())
}
