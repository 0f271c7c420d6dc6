//! `handler deliveries list|retry|backfill`: what was delivered where,
//! what is waiting or dead (with the last answer), putting dead deliveries
//! back in the queue once their destination is fixed, and delivering
//! older leads to a destination added later.

use super::leads::progress::count;
use super::leads::time_arg::{resolve_range, TimeArg};
use super::table::{self, Column};
use crate::configuration::Settings;
use crate::delivery::Deliverer;
use crate::domain::TimeRange;
use crate::store::outbox::RecordState;
use crate::store::{keys, DeliveryRecord, LeadStore, PendingDays};
use anyhow::Context as _;
use futures::TryStreamExt;
use std::io::{self, BufWriter, Write};
use time::format_description::FormatItem;
use time::macros::format_description;
use time::{Duration, OffsetDateTime};

const DEFAULT_SINCE: TimeArg = TimeArg::Ago(Duration::days(7));
const TIME: &[FormatItem<'static>] = format_description!("[year]-[month]-[day] [hour]:[minute]");

#[derive(Debug, clap::Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries queued since --since: pending, delivered or dead,
    /// with their attempts and the destination's last answer.
    List {
        /// Which deliveries [default: pending]
        #[arg(long, value_enum)]
        status: Option<RecordState>,
        /// Queued at or after this [default: 7d]
        #[arg(long, value_parser = TimeArg::parse)]
        since: Option<TimeArg>,
        /// Only this destination (email, teams, webhook, dataverse, hubspot)
        #[arg(long)]
        destination: Option<String>,
    },
    /// Put dead deliveries back in the queue: one lead's, or all since
    /// --since (with --dead). Run it once the destination is fixed.
    Retry {
        /// The lead id (as in the digest, the log or `deliveries list`)
        #[arg(conflicts_with = "dead", required_unless_present = "dead")]
        lead_id: Option<String>,
        /// Every dead delivery queued since --since
        #[arg(long)]
        dead: bool,
        /// With --dead: queued at or after this [default: 7d]
        #[arg(long, value_parser = TimeArg::parse)]
        since: Option<TimeArg>,
    },
    /// Deliver the leads received since --since to a destination configured
    /// later. A lead the destination already has (delivered, pending or
    /// dead) is not queued again, so running it twice changes nothing.
    Backfill {
        /// The destination (email, teams, webhook, dataverse, hubspot)
        #[arg(long)]
        destination: String,
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
            let range = resolve_range(since, None, DEFAULT_SINCE, now)?;
            list(
                &store,
                status.unwrap_or(RecordState::Pending),
                range,
                destination.as_deref(),
            )
            .await
        }
        DeliveriesCommand::Retry {
            lead_id,
            dead: _,
            since,
        } => {
            let (range, lead) = match &lead_id {
                Some(id) => (lead_range(id, now)?, Some(id.as_str())),
                None => (resolve_range(since, None, DEFAULT_SINCE, now)?, None),
            };
            let requeued = retry(&store, range, lead, now).await?;
            println!(
                "{} put back in the queue",
                count(requeued as u64, "delivery")
            );
            if requeued > 0 {
                println!("they go out with the next sweep (within a minute), or run the service");
            }
            Ok(())
        }
        DeliveriesCommand::Backfill { destination, since } => {
            let deliverer =
                Deliverer::from_settings(store.clone(), settings).map_err(anyhow::Error::msg)?;
            let configured = deliverer
                .as_ref()
                .map(|d| d.destinations())
                .unwrap_or_default();
            anyhow::ensure!(
                configured.contains(&destination.as_str()),
                "destination {destination:?} is not configured here (configured: {})",
                if configured.is_empty() {
                    "none".to_owned()
                } else {
                    configured.join(", ")
                }
            );
            let range = resolve_range(Some(since), None, DEFAULT_SINCE, now)?;
            let deliverer = deliverer.context("no destination is configured")?;
            let queued = store
                .backfill(&destination, range, now, |lead| {
                    deliverer.accepts(&destination, lead.lead.is_test)
                })
                .await?;
            println!(
                "{} queued for {destination}; leads it already has were left alone",
                count(queued as u64, "lead")
            );
            Ok(())
        }
    }
}

/// A lead id (`20261122-<hex>`) names its receive day: its records are in
/// that day's partition or a later one.
fn lead_range(lead_id: &str, now: OffsetDateTime) -> anyhow::Result<TimeRange> {
    let day = lead_id
        .get(..8)
        .and_then(|d| keys::parse_day_key(&format!("{}-{}-{}", &d[..4], &d[4..6], &d[6..8])))
        .with_context(|| {
            format!("{lead_id:?} is not a lead id (like 20261122-0123456789abcdef)")
        })?;
    TimeRange::new(day.midnight().assume_utc(), now + Duration::SECOND)
        .context("that lead id is in the future")
}

fn days(range: TimeRange) -> PendingDays {
    PendingDays {
        first: range.start.date(),
        last: range.end.date(),
    }
}

async fn list(
    store: &LeadStore,
    state: RecordState,
    range: TimeRange,
    destination: Option<&str>,
) -> anyhow::Result<()> {
    const COLUMNS: [Column; 7] = [
        Column {
            heading: "LEAD",
            max_width: 25,
        },
        Column {
            heading: "DESTINATION",
            max_width: 12,
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
    let summary = format!("{} {}", count(rows.len() as u64, "delivery"), state.label());
    let mut out = BufWriter::new(io::stdout());
    let written = table::write_table(&mut out, &COLUMNS, &rows)
        .and_then(|()| writeln!(out, "{summary}"))
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("Failed to write the list"),
    }
}

fn cells(columns: &[Column], record: &DeliveryRecord) -> Vec<String> {
    let time =
        |at: Option<OffsetDateTime>| at.and_then(|at| at.format(TIME).ok()).unwrap_or_default();
    let answer = match (&record.last_status, &record.last_error) {
        (Some(status), Some(error)) if !error.is_empty() => format!("{status}: {error}"),
        (Some(status), _) => status.clone(),
        (None, _) => String::new(),
    };
    let lead = if record.lead.is_test {
        format!("{} (test)", record.lead.id)
    } else {
        record.lead.id.clone()
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
            &answer,
        ],
    )
}

async fn retry(
    store: &LeadStore,
    range: TimeRange,
    lead_id: Option<&str>,
    now: OffsetDateTime,
) -> anyhow::Result<usize> {
    let mut dead = Vec::new();
    let mut pages = std::pin::pin!(store.delivery_records(RecordState::Dead, None, days(range)));
    while let Some(page) = pages.try_next().await? {
        dead.extend(page.into_iter().filter(|record| match lead_id {
            Some(id) => record.lead.id == id,
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
        let range = lead_range("20261120-0011223344556677", now).unwrap();
        assert_eq!(range.start, datetime!(2026-11-20 00:00 UTC));
        assert!(range.contains(now));
        assert!(lead_range("not-a-lead", now).is_err());
        assert!(lead_range("20261340-00", now).is_err());
    }
}
