//! `handler deliveries list|show|retry|backfill`: what was delivered where,
//! what is waiting or dead (with the last answer), one lead's deliveries
//! in full, putting dead deliveries back in the queue once their
//! destination is fixed, and delivering older leads to a destination
//! added later (as its route says).

use super::leads::progress::count;
use super::leads::time_arg::{resolve_range, TimeArg};
use super::table::{self, Column};
use crate::configuration::Settings;
use crate::delivery::Destinations;
use crate::domain::{text, DestinationName, TimeRange};
use crate::store::{keys::LeadId, Consumer, DeliveryRecord, LeadStore, PendingDays, RecordState};
use anyhow::Context as _;
use futures::TryStreamExt;
use std::io::{self, BufWriter, Write};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

const DEFAULT_SINCE: TimeArg = TimeArg::Ago(Duration::days(7));
const TIME: &[FormatItem<'static>] = format_description!("[year]-[month]-[day] [hour]:[minute]");

/// Which deliveries to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Status {
    Pending,
    Delivered,
    Dead,
}

impl From<Status> for RecordState {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Delivered => Self::Delivered,
            Status::Dead => Self::Dead,
        }
    }
}

/// `what`, then the kinds a destination may be (from the registry).
fn destination_help(what: &str) -> String {
    let kinds: Vec<&str> = crate::delivery::registry::KINDS
        .iter()
        .map(|k| k.name)
        .collect();
    format!(
        "{what} ({}, or a named one such as teams:analytics)",
        kinds.join(", ")
    )
}

#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries queued since --since: pending, delivered or dead,
    /// with their attempts and the destination's last answer (cut short;
    /// `deliveries show <lead-id>` prints it whole).
    List {
        /// Which deliveries [default: pending]
        #[arg(long, value_enum)]
        status: Option<Status>,
        /// Queued at or after this [default: 7d]
        #[arg(long, value_parser = TimeArg::parse)]
        since: Option<TimeArg>,
        #[arg(long, value_parser = DestinationName::parse, help = destination_help("Only this destination"))]
        destination: Option<DestinationName>,
    },
    /// Show every delivery of one lead, each with the destination's whole
    /// last answer (credentials removed).
    Show {
        /// The lead id (as in the digest, the log or `deliveries list`)
        #[arg(value_parser = LeadId::parse)]
        lead_id: LeadId,
    },
    /// Put dead deliveries back in the queue: one lead's, or all since
    /// --since (with --dead). Run it once the destination is fixed.
    Retry {
        /// The lead id (as in the digest, the log or `deliveries list`)
        #[arg(conflicts_with = "dead", required_unless_present = "dead", value_parser = LeadId::parse)]
        lead_id: Option<LeadId>,
        /// Every dead delivery queued since --since
        #[arg(long)]
        dead: bool,
        /// With --dead: queued at or after this [default: 7d]
        #[arg(long, value_parser = TimeArg::parse)]
        since: Option<TimeArg>,
        /// Only this destination's
        #[arg(long, value_parser = DestinationName::parse)]
        destination: Option<DestinationName>,
        /// With a lead id: send it again where it was delivered (or gave
        /// up), on purpose, under a new idempotency key
        #[arg(long, requires = "lead_id")]
        again: bool,
    },
    /// Deliver the leads received since --since to a destination configured
    /// later, as its route says (offers, actions, test leads). A lead the
    /// destination already has (delivered, pending or dead) is not queued
    /// again, so running it twice changes nothing.
    Backfill {
        #[arg(long, value_parser = DestinationName::parse, help = destination_help("The destination"))]
        destination: DestinationName,
        /// Leads received at or after this
        #[arg(long, value_parser = TimeArg::parse)]
        since: TimeArg,
    },
}

pub async fn run(settings: &Settings, command: DeliveriesCommand) -> anyhow::Result<()> {
    let store = LeadStore::from_settings(&settings.storage)?;
    let now = OffsetDateTime::now_utc();
    match command {
        DeliveriesCommand::List {
            status,
            since,
            destination,
        } => {
            if let Some(name) = &destination {
                known_kind(name)?;
            }
            let range = resolve_range(since, None, DEFAULT_SINCE, now)?;
            let state = status.map_or(RecordState::Pending, RecordState::from);
            list(&store, state, range, destination.as_ref()).await
        }
        DeliveriesCommand::Show { lead_id } => show(&store, &lead_id, now).await,
        DeliveriesCommand::Retry {
            lead_id,
            dead: _,
            since,
            destination,
            again,
        } => {
            if let Some(name) = &destination {
                known_kind(name)?;
            }
            if let (true, Some(id)) = (again, &lead_id) {
                let range = lead_range(id, now)?;
                let sent = send_again(&store, id, range, destination.as_ref(), now).await?;
                println!(
                    "{} of {id} queued again under a new idempotency key; they go out with \
                     the next sweep (within a minute)",
                    count(sent as u64, "delivery")
                );
                return Ok(());
            }
            let range = match &lead_id {
                Some(id) => lead_range(id, now)?,
                None => resolve_range(since, None, DEFAULT_SINCE, now)?,
            };
            let requeued =
                retry(&store, range, lead_id.as_ref(), destination.as_ref(), now).await?;
            println!(
                "{} put back in the queue",
                count(requeued as u64, "delivery")
            );
            if let (0, Some(id)) = (requeued, &lead_id) {
                // Say why: what the lead's deliveries are.
                let records = store.delivery_records_of(id, days(range)).await?;
                let states: Vec<String> = records
                    .iter()
                    .filter(|r| {
                        destination
                            .as_ref()
                            .is_none_or(|d| r.destination == d.to_string())
                    })
                    .map(|r| format!("{} {}", r.destination, r.state.label()))
                    .collect();
                if states.is_empty() {
                    println!("{id} has no delivery to put back (none was ever queued)");
                } else {
                    println!(
                        "{id} has no dead delivery: {}. Only dead ones are put back; to send \
                         a delivered lead again on purpose: handler deliveries retry {id} \
                         --again",
                        states.join(", ")
                    );
                }
            }
            if requeued > 0 {
                println!("they go out with the next sweep (within a minute), or run the service");
            }
            Ok(())
        }
        DeliveriesCommand::Backfill { destination, since } => {
            known_kind(&destination)?;
            // The routes only: building destinations reads settings, no I/O.
            let destinations = Destinations::from_settings(settings)?;
            let routes = destinations.routes();
            anyhow::ensure!(
                routes.route(&destination).is_some(),
                "destination {destination} is not configured here (configured: {})",
                if routes.is_empty() {
                    "none".to_owned()
                } else {
                    routes
                        .names()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            );
            // The service that delivers is not this command: its last sweep
            // says which destinations it has.
            if let Some(beat) = store.last_sweep().await? {
                let recent = now - beat.at < Duration::DAY;
                if recent
                    && !beat
                        .destinations
                        .iter()
                        .any(|d| *d == destination.to_string())
                {
                    anyhow::bail!(
                        "the running service does not deliver to {destination} (its last sweep, \
                         at {} UTC, delivers to {}): nothing queued. Configure {destination} in \
                         the app's settings first.",
                        time(Some(beat.at)),
                        if beat.destinations.is_empty() {
                            "nothing".to_owned()
                        } else {
                            beat.destinations.join(", ")
                        }
                    );
                }
            }
            let range = resolve_range(Some(since), None, DEFAULT_SINCE, now)?;
            let queued = store
                .backfill(
                    &Consumer::Destination(destination.clone()),
                    range,
                    now,
                    |lead| routes.accepts(&destination, &lead.lead),
                )
                .await?;
            println!(
                "{} queued for {destination}; leads it already has, and leads its route \
                 excludes, were left alone",
                count(queued as u64, "lead")
            );
            Ok(())
        }
    }
}

/// `name`'s kind is one this handler delivers to (a typo such as
/// `telegram` would otherwise list nothing and say nothing).
fn known_kind(name: &DestinationName) -> anyhow::Result<()> {
    let kinds: Vec<&str> = crate::delivery::registry::KINDS
        .iter()
        .map(|k| k.name)
        .collect();
    anyhow::ensure!(
        kinds.contains(&name.kind()),
        "{name} is not a destination: the kinds are {}, each perhaps named \
         (teams:analytics)",
        kinds.join(", ")
    );
    Ok(())
}

/// Every delivered or dead delivery of `lead_id` queued again, on purpose.
async fn send_again(
    store: &LeadStore,
    lead_id: &LeadId,
    range: TimeRange,
    destination: Option<&DestinationName>,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let records = store.delivery_records_of(lead_id, days(range)).await?;
    let mut sent = 0;
    for record in records.iter().filter(|r| {
        r.state != RecordState::Pending
            && destination.is_none_or(|d| r.destination == d.to_string())
    }) {
        store.send_again(record, now).await?;
        sent += 1;
    }
    Ok(sent)
}

/// A lead's records are in its receive day's partition or a later one.
fn lead_range(lead_id: &LeadId, now: OffsetDateTime) -> anyhow::Result<TimeRange> {
    TimeRange::new(
        lead_id.day().midnight().assume_utc(),
        now + Duration::SECOND,
    )
    .context("that lead id is in the future")
}

fn days(range: TimeRange) -> PendingDays {
    PendingDays::new(range.start.date(), range.end.date())
}

async fn list(
    store: &LeadStore,
    state: RecordState,
    range: TimeRange,
    destination: Option<&DestinationName>,
) -> anyhow::Result<()> {
    const COLUMNS: [Column; 7] = [
        Column {
            // An id (25) and " (test)": never cut, so it can be pasted.
            heading: "LEAD",
            max_width: 32,
        },
        Column {
            heading: "DESTINATION",
            max_width: 20,
        },
        Column {
            heading: "STATUS",
            max_width: 10,
        },
        Column {
            heading: "ATTEMPTS",
            max_width: 8,
        },
        Column {
            heading: "QUEUED (UTC)",
            max_width: 16,
        },
        Column {
            heading: "WHEN (UTC)",
            max_width: 16,
        },
        Column {
            heading: "LAST ANSWER",
            max_width: 60,
        },
    ];
    let mut rows = Vec::new();
    let mut pages = std::pin::pin!(store.delivery_records(state, destination, days(range)));
    while let Some(page) = pages.try_next().await? {
        for record in page.iter().filter(|r| range.contains(r.enqueued_at)) {
            rows.push(cells(&COLUMNS, record));
        }
    }
    let mut summary = format!("{} {}", count(rows.len() as u64, "delivery"), state.label());
    if state != RecordState::Dead {
        // Dead ones are what needs a person: say so even when listing others.
        let mut dead = 0usize;
        let mut pages =
            std::pin::pin!(store.delivery_records(RecordState::Dead, destination, days(range)));
        while let Some(page) = pages.try_next().await? {
            dead += page
                .iter()
                .filter(|r| range.contains(r.enqueued_at))
                .count();
        }
        if dead > 0 {
            summary.push_str(&format!(
                "; {} dead: handler deliveries list --status dead",
                count(dead as u64, "delivery")
            ));
        }
    }
    table::print(&COLUMNS, &rows, &summary)
}

fn answer(record: &DeliveryRecord) -> String {
    match (&record.last_status, &record.last_error) {
        (Some(status), Some(error)) if !error.is_empty() => format!("{status}: {error}"),
        (Some(status), _) => status.clone(),
        (None, _) => String::new(),
    }
}

fn time(at: Option<OffsetDateTime>) -> String {
    at.and_then(|at| at.format(TIME).ok()).unwrap_or_default()
}

fn cells(columns: &[Column], record: &DeliveryRecord) -> Vec<String> {
    let lead = if record.lead.is_test {
        format!("{} (test)", record.lead.id)
    } else {
        record.lead.id.to_string()
    };
    table::row(
        columns,
        &[
            &lead,
            &record.destination,
            record.state.label(),
            &record.attempts.to_string(),
            &time(Some(record.enqueued_at)),
            &time(record.at),
            &answer(record),
        ],
    )
}

async fn show(store: &LeadStore, lead_id: &LeadId, now: OffsetDateTime) -> anyhow::Result<()> {
    let range = lead_range(lead_id, now)?;
    let mut records = store.delivery_records_of(lead_id, days(range)).await?;
    records.sort_by(|a, b| a.destination.cmp(&b.destination));
    let mut out = BufWriter::new(io::stdout());
    let mut text_out = String::new();
    if records.is_empty() {
        text_out.push_str(&format!("no deliveries of lead {lead_id}\n"));
    }
    for record in &records {
        let line =
            |label: &str, value: &str| format!("  {label:<12} {}\n", text::single_line(value));
        text_out.push_str(&format!("{}\n", text::single_line(&record.destination)));
        text_out.push_str(&line("status", record.state.label()));
        text_out.push_str(&line("attempts", &record.attempts.to_string()));
        text_out.push_str(&line(
            "queued",
            &format!("{} UTC", time(Some(record.enqueued_at))),
        ));
        let when = match record.state {
            RecordState::Pending => "next attempt",
            RecordState::Delivered => "delivered",
            RecordState::Dead => "given up",
        };
        if record.at.is_some() {
            text_out.push_str(&line(when, &format!("{} UTC", time(record.at))));
        }
        let said = answer(record);
        if !said.is_empty() {
            text_out.push_str(&line("last answer", &said));
        }
        if record.state == RecordState::Dead {
            text_out.push_str(&format!(
                "  once fixed: handler deliveries retry {lead_id} --destination {}\n",
                record.destination
            ));
        }
    }
    let written = out
        .write_all(text_out.as_bytes())
        .and_then(|()| out.flush());
    table::finished(written, "Failed to write the deliveries")
}

async fn retry(
    store: &LeadStore,
    range: TimeRange,
    lead_id: Option<&LeadId>,
    destination: Option<&DestinationName>,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let mut dead = Vec::new();
    let mut pages =
        std::pin::pin!(store.delivery_records(RecordState::Dead, destination, days(range)));
    while let Some(page) = pages.try_next().await? {
        dead.extend(page.into_iter().filter(|record| match lead_id {
            Some(id) => &record.lead.id == id,
            None => range.contains(record.enqueued_at),
        }));
    }
    for record in &dead {
        store.requeue(record, now).await?;
    }
    Ok(dead.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_lead_id_names_the_day_its_records_start() {
        let now = datetime!(2026-11-23 10:00 UTC);
        let id = LeadId::parse("20261120-0011223344556677").unwrap();
        let range = lead_range(&id, now).unwrap();
        assert_eq!(range.start, datetime!(2026-11-20 00:00 UTC));
        assert!(range.contains(now));
    }

    #[test]
    fn a_malformed_lead_id_is_refused_not_a_panic() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(subcommand)]
            command: DeliveriesCommand,
        }
        for bad in ["202é1122-0011", "not-a-lead", "20261340-0011223344556677"] {
            let parsed = Cli::try_parse_from(["deliveries", "retry", bad]);
            assert!(parsed.is_err(), "{bad}");
        }
        assert!(Cli::try_parse_from(["deliveries", "retry", "20261122-0011223344556677"]).is_ok());
        assert!(
            Cli::try_parse_from(["deliveries", "list", "--destination", "teams:sales"]).is_ok()
        );
    }
}
