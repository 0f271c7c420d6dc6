//! `handler leads forget`: erase a person on request — every row this
//! service keeps about their leads (lead rows and raw bodies, markers,
//! digest and delivery records, dead letters, refused bodies naming them),
//! `--dry-run` first to see what would go. Safe to run twice; a run that
//! storage stops says what is left, and running it again finishes it. What
//! it cannot erase — the CRMs and inboxes the leads were already delivered
//! to — it names, so the publisher can act there.

use super::progress::count;
use crate::configuration::StorageSettings;
use crate::domain::EmailAddress;
use crate::store::erasure::{Person, Whom};
use crate::store::{LeadId, LeadStore};
use std::fmt::Write as _;
use time::OffsetDateTime;

/// Whom to forget.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("whom").required(true).args(["email", "lead"])))]
pub struct ForgetOptions {
    /// Every lead whose customer email is this (any case)
    #[arg(long, value_parser = EmailAddress::parse)]
    pub email: Option<EmailAddress>,
    /// One lead, by its id
    #[arg(long, value_parser = LeadId::parse)]
    pub lead: Option<LeadId>,
    /// Show what would be removed; remove nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn forget(storage: &StorageSettings, options: ForgetOptions) -> anyhow::Result<()> {
    let store = LeadStore::from_settings(storage)?;
    let (whom, named) = match (&options.email, &options.lead) {
        (Some(email), _) => (Whom::Email(email.clone()), email.to_string()),
        (None, Some(lead)) => (Whom::Lead(lead.clone()), format!("lead {lead}")),
        (None, None) => anyhow::bail!("give --email or --lead"),
    };
    let person = store.find_person(&whom, OffsetDateTime::now_utc()).await?;
    print!("{}", report(&named, &person, options.dry_run));
    if options.dry_run || person.rows.is_empty() {
        return Ok(());
    }
    let erased = store.erase(&person).await;
    let removed: usize = erased.deleted.values().sum();
    println!("removed {}", count(removed as u64, "row"));
    if let Some(error) = erased.error {
        anyhow::bail!(
            "stopped: {error}; {} left — run the same command again to finish",
            count(erased.left as u64, "row")
        );
    }
    Ok(())
}

/// What was found, per kind, and where the leads went that cannot be
/// erased from here.
fn report(named: &str, person: &Person, dry_run: bool) -> String {
    let mut out = String::new();
    if person.rows.is_empty() {
        let _ = writeln!(out, "nothing kept about {named}");
        return out;
    }
    let verb = if dry_run { "would remove" } else { "removing" };
    let _ = writeln!(
        out,
        "{named}: {} ({}); {verb}:",
        count(person.leads.len() as u64, "lead"),
        person
            .leads
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (kind, n) in person.counts() {
        let _ = writeln!(out, "  {:<34}{n}", kind.label());
    }
    if !person.delivered.is_empty() {
        let _ = writeln!(
            out,
            "Not erased by this: the leads were already delivered to these destinations \
             — erase the person there too (the CRM record, the Teams message, the inbox), \
             and in any export you made:"
        );
        for (lead, destinations) in &person.delivered {
            let list: Vec<&str> = destinations.iter().map(String::as_str).collect();
            let _ = writeln!(out, "  {lead}: {}", list.join(", "));
        }
    }
    out
}
