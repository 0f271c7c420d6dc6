//! `handler status`: is the service doing its job, read from storage alone
//! — the digest's last runs and whether one is overdue, the delivery
//! sweep's heartbeat, deliveries pending and dead, leads today. It exits
//! non-zero when a timer is overdue (timer triggers on Flex Consumption
//! have stopped after deployments), so a person or a script can check.
//!
//! The judgement ([`judge`]) is a pure function of the facts read, unit
//! tested with a moved clock.

use crate::configuration::Settings;
use crate::delivery::Destinations;
use crate::domain::TimeRange;
use crate::schedule::Schedule;
use crate::store::status::{RunSummary, SweepBeat};
use crate::store::{LeadStore, PendingDays, RecordState};
use futures::TryStreamExt;
use serde_json::json;
use std::time::Duration;
use time::OffsetDateTime;

/// The sweep is overdue after this long without one, however often it is
/// scheduled (the Bicep's alert uses the same 10 minutes).
const SWEEP_GRACE: Duration = Duration::from_secs(10 * 60);
/// Dead deliveries are counted over this many days.
const DEAD_DAYS: i64 = 7;

#[derive(clap::Args)]
pub struct StatusOptions {
    /// Print the facts and the verdict as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// What storage says, at `now`.
#[derive(Debug, Clone)]
pub struct Facts {
    pub now: OffsetDateTime,
    pub digest_schedule: Schedule,
    /// `DIGEST_TO` is set: a digest is expected.
    pub digest_configured: bool,
    /// Newest first.
    pub runs: Vec<RunSummary>,
    pub delivery_schedule: Schedule,
    /// The configured destinations (none: no sweep is expected).
    pub destinations: Vec<String>,
    pub sweep: Option<SweepBeat>,
    pub pending: usize,
    pub oldest_pending: Option<OffsetDateTime>,
    pub dead: usize,
    pub leads_today: usize,
}

/// What needs a person: each overdue timer, in words.
pub fn judge(facts: &Facts) -> Vec<String> {
    let mut overdue = Vec::new();
    let twice_missed = |schedule: &Schedule, since: OffsetDateTime| -> Option<OffsetDateTime> {
        let first = schedule.next_after(since)?;
        let second = schedule.next_after(first)?;
        (second <= facts.now).then_some(first)
    };
    if facts.digest_configured {
        let last_success = facts.runs.iter().find(|r| r.succeeded());
        if let Some(run) = last_success {
            if let Some(missed) = twice_missed(&facts.digest_schedule, run.started_at) {
                overdue.push(format!(
                    "the digest has not succeeded since {} ({} due at {} and the one after were \
                     missed or failed)",
                    at(run.started_at),
                    facts.digest_schedule.expression(),
                    at(missed)
                ));
            }
        } else if let Some(run) = facts.runs.first() {
            overdue.push(format!(
                "no digest run has succeeded (the last, at {}, {})",
                at(run.started_at),
                run.outcome
            ));
        }
    }
    if !facts.destinations.is_empty() {
        let grace = time::Duration::try_from(SWEEP_GRACE).unwrap_or_default();
        match &facts.sweep {
            Some(beat) => {
                if facts.now - beat.at > grace
                    && twice_missed(&facts.delivery_schedule, beat.at).is_some()
                {
                    overdue.push(format!(
                        "no delivery sweep since {} ({} should run it)",
                        at(beat.at),
                        facts.delivery_schedule.expression()
                    ));
                }
            }
            None => {
                if facts.oldest_pending.is_some_and(|t| facts.now - t > grace) {
                    overdue.push(
                        "deliveries are waiting and no delivery sweep has ever run".to_owned(),
                    );
                }
            }
        }
    }
    overdue
}

/// Reads the facts, prints them and the verdict; `Err` when overdue.
pub async fn run(settings: &Settings, options: StatusOptions) -> anyhow::Result<()> {
    let store = LeadStore::from_settings(&settings.storage)?;
    let now = OffsetDateTime::now_utc();
    let facts = read(&store, settings, now).await?;
    let overdue = judge(&facts);
    if options.json {
        println!("{}", as_json(&facts, &overdue));
    } else {
        print!(
            "{}",
            as_text(&facts, &overdue, &settings.storage.leads_table)
        );
    }
    if overdue.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("overdue: {}", overdue.join("; "))
    }
}

async fn read(
    store: &LeadStore,
    settings: &Settings,
    now: OffsetDateTime,
) -> anyhow::Result<Facts> {
    let destinations = Destinations::from_settings(settings)?;
    let today = now.replace_time(time::Time::MIDNIGHT);
    let max_age = time::Duration::try_from(settings.delivery.max_age).unwrap_or_default();
    let (mut pending, mut oldest_pending) = (0, None::<OffsetDateTime>);
    let pending_days = PendingDays::new((now - max_age - time::Duration::DAY).date(), now.date());
    let mut pages =
        std::pin::pin!(store.delivery_records(RecordState::Pending, None, pending_days));
    while let Some(page) = pages.try_next().await? {
        pending += page.len();
        for record in page {
            oldest_pending =
                Some(oldest_pending.map_or(record.enqueued_at, |o| o.min(record.enqueued_at)));
        }
    }
    let dead_days = PendingDays::new((now - time::Duration::days(DEAD_DAYS)).date(), now.date());
    let dead = store
        .delivery_records(RecordState::Dead, None, dead_days)
        .try_fold(0, |n, page| async move { Ok(n + page.len()) })
        .await?;
    let leads_today = store
        .count_leads(
            TimeRange::new(today, now + time::Duration::MICROSECOND)
                .ok_or_else(|| anyhow::anyhow!("today is an empty range"))?,
        )
        .await?;
    Ok(Facts {
        now,
        digest_schedule: settings.digest.schedule.clone(),
        digest_configured: settings.digest.to.is_some(),
        runs: store.recent_runs(24).await?,
        delivery_schedule: settings.delivery.schedule.clone(),
        destinations: destinations
            .names()
            .iter()
            .map(ToString::to_string)
            .collect(),
        sweep: store.last_sweep().await?,
        pending,
        oldest_pending,
        dead,
        leads_today,
    })
}

const TIME: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");

fn at(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(TIME)
        .unwrap_or_default()
}

/// How long ago `then` was, in words a person reads at a glance.
fn ago(now: OffsetDateTime, then: OffsetDateTime) -> String {
    let seconds = (now - then).whole_seconds().max(0);
    match seconds {
        s if s < 120 => format!("{s} s ago"),
        s if s < 2 * 3600 => format!("{} min ago", s / 60),
        s if s < 2 * 86_400 => format!("{} h ago", s / 3600),
        s => format!("{} days ago", s / 86_400),
    }
}

fn as_text(facts: &Facts, overdue: &[String], table: &str) -> String {
    let now = facts.now;
    let mut out = format!("Status of {table} at {}\n\n", at(now));
    let line = |out: &mut String, what: &str, text: String| {
        out.push_str(&format!("{what:<16}{text}\n"));
    };
    line(&mut out, "Leads today", facts.leads_today.to_string());
    let digest = if !facts.digest_configured {
        "not configured (DIGEST_TO is not set)".to_owned()
    } else {
        match facts.runs.first() {
            None => format!(
                "no run yet ({}; next at {})",
                facts.digest_schedule.expression(),
                facts
                    .digest_schedule
                    .next_after(now)
                    .map(at)
                    .unwrap_or_default()
            ),
            Some(last) => {
                let mut text = format!(
                    "last run {} ({}): {}, {} lead(s)",
                    at(last.started_at),
                    ago(now, last.started_at),
                    last.outcome,
                    last.lead_count
                );
                if let Some(error) = &last.error {
                    text.push_str(&format!(" — {error}"));
                }
                match facts.runs.iter().find(|r| r.succeeded()) {
                    Some(ok) if ok != last => text.push_str(&format!(
                        "; last success {} ({})",
                        at(ok.started_at),
                        ago(now, ok.started_at)
                    )),
                    _ => {}
                }
                text
            }
        }
    };
    line(&mut out, "Digest", digest);
    if facts.destinations.is_empty() {
        line(
            &mut out,
            "Deliveries",
            "no destination configured".to_owned(),
        );
    } else {
        line(&mut out, "Destinations", facts.destinations.join(", "));
        let oldest = facts
            .oldest_pending
            .map(|t| format!(" (oldest enqueued {})", ago(now, t)))
            .unwrap_or_default();
        line(
            &mut out,
            "Deliveries",
            format!(
                "{} pending{oldest}, {} dead in the last {DEAD_DAYS} days{}",
                facts.pending,
                facts.dead,
                if facts.dead > 0 {
                    " (handler deliveries list --status dead)"
                } else {
                    ""
                }
            ),
        );
        let sweep = match &facts.sweep {
            None => "no sweep has run yet".to_owned(),
            Some(beat) => format!(
                "last {} ({}): {}",
                at(beat.at),
                ago(now, beat.at),
                match &beat.error {
                    Some(error) => format!("failed — {error}"),
                    None => beat.summary.clone(),
                }
            ),
        };
        line(&mut out, "Delivery sweep", sweep);
    }
    out.push('\n');
    if overdue.is_empty() {
        out.push_str("OK\n");
    } else {
        for what in overdue {
            out.push_str(&format!("OVERDUE: {what}\n"));
        }
    }
    out
}

fn as_json(facts: &Facts, overdue: &[String]) -> serde_json::Value {
    let time = |t: OffsetDateTime| at(t);
    json!({
        "at": time(facts.now),
        "ok": overdue.is_empty(),
        "overdue": overdue,
        "leadsToday": facts.leads_today,
        "digest": {
            "configured": facts.digest_configured,
            "schedule": facts.digest_schedule.expression(),
            "lastRun": facts.runs.first().map(|r| json!({
                "at": time(r.started_at), "outcome": r.outcome, "leads": r.lead_count, "error": r.error,
            })),
            "lastSuccess": facts.runs.iter().find(|r| r.succeeded()).map(|r| time(r.started_at)),
        },
        "deliveries": {
            "destinations": facts.destinations,
            "pending": facts.pending,
            "oldestPendingEnqueuedAt": facts.oldest_pending.map(time),
            "deadLast7Days": facts.dead,
            "lastSweep": facts.sweep.as_ref().map(|b| json!({
                "at": time(b.at), "error": b.error, "summary": b.summary,
            })),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn facts(now: OffsetDateTime) -> Facts {
        Facts {
            now,
            digest_schedule: Schedule::parse("0 0 * * * *").unwrap(),
            digest_configured: true,
            runs: Vec::new(),
            delivery_schedule: Schedule::parse("0 */1 * * * *").unwrap(),
            destinations: vec!["teams".into()],
            sweep: None,
            pending: 0,
            oldest_pending: None,
            dead: 0,
            leads_today: 0,
        }
    }

    fn run(at: OffsetDateTime, outcome: &str) -> RunSummary {
        RunSummary {
            started_at: at,
            outcome: outcome.into(),
            lead_count: 1,
            error: (outcome == "failed").then(|| "email provider unavailable".into()),
        }
    }

    fn beat(at: OffsetDateTime) -> Option<SweepBeat> {
        Some(SweepBeat {
            at,
            error: None,
            summary: "0 delivered".into(),
            destinations: vec!["teams".into()],
        })
    }

    #[test]
    fn a_fresh_deployment_is_ok() {
        assert!(judge(&facts(datetime!(2026-12-06 10:30 UTC))).is_empty());
    }

    #[test]
    fn a_digest_two_intervals_late_is_overdue() {
        let mut f = facts(datetime!(2026-12-06 10:59 UTC));
        f.runs = vec![run(datetime!(2026-12-06 09:00:01 UTC), "sent")];
        f.sweep = beat(datetime!(2026-12-06 10:58 UTC));
        assert!(judge(&f).is_empty(), "one interval late is the next run");
        f.now = datetime!(2026-12-06 11:00:30 UTC);
        let overdue = judge(&f);
        assert_eq!(overdue.len(), 1, "{overdue:?}");
        assert!(overdue[0].contains("2026-12-06 09:00:01"), "{overdue:?}");
        // Failed runs since do not count as success.
        f.runs
            .insert(0, run(datetime!(2026-12-06 11:00 UTC), "failed"));
        assert_eq!(judge(&f).len(), 1);
        f.runs
            .insert(0, run(datetime!(2026-12-06 11:00:20 UTC), "no-new-leads"));
        assert!(judge(&f).is_empty());
    }

    #[test]
    fn a_sweep_that_stopped_is_overdue_only_with_destinations() {
        let mut f = facts(datetime!(2026-12-06 10:30 UTC));
        f.sweep = beat(datetime!(2026-12-06 10:21 UTC));
        assert!(judge(&f).is_empty(), "nine minutes");
        f.now = datetime!(2026-12-06 10:31:30 UTC);
        assert_eq!(judge(&f).len(), 1);
        f.destinations.clear();
        assert!(judge(&f).is_empty());
        let mut f = facts(datetime!(2026-12-06 10:30 UTC));
        f.oldest_pending = Some(datetime!(2026-12-06 10:00 UTC));
        assert_eq!(judge(&f).len(), 1, "waiting and never swept");
    }

    #[test]
    fn the_text_says_what_a_person_needs() {
        let mut f = facts(datetime!(2026-12-06 11:30 UTC));
        f.runs = vec![
            run(datetime!(2026-12-06 11:00 UTC), "failed"),
            run(datetime!(2026-12-06 09:00 UTC), "sent"),
        ];
        f.pending = 2;
        f.oldest_pending = Some(datetime!(2026-12-06 11:10 UTC));
        f.dead = 1;
        f.sweep = beat(datetime!(2026-12-06 11:29 UTC));
        let text = as_text(&f, &judge(&f), "MarketplaceLeads");
        for expected in [
            "failed, 1 lead(s) — email provider unavailable",
            "last success 2026-12-06 09:00",
            "2 pending (oldest enqueued 20 min ago), 1 dead",
            "OVERDUE: the digest has not succeeded since",
        ] {
            assert!(text.contains(expected), "{expected:?} in\n{text}");
        }
    }
}
