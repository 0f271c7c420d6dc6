//! The digest run: email every lead stored since the last successful digest.
//!
//! The window is kept by a checkpoint in Table storage, not by the clock:
//!
//! 1. Read the checkpoint (`reported_before` and its version).
//! 2. The window is `[reported_before, now − SETTLE)`. Writes of leads are
//!    bounded by `WRITE_DEADLINE` (seconds), far below `SETTLE`, so
//!    every lead received inside the window is committed before the run
//!    reads it; a lead still in flight falls in the next window.
//! 3. Read only that key range. No leads: move the checkpoint, send nothing.
//! 4. Claim the window by writing the checkpoint with the version read in 1
//!    (optimistic concurrency): of two overlapping runs only one claims it.
//! 5. Send. Only once the provider has accepted the email does the
//!    checkpoint move to the window's end; a failed send releases the claim,
//!    so the next run reports the same leads again.
//!
//! A run that died after claiming leaves its claim behind; once the claim is
//! older than [`CLAIM_LEASE`] the next run sends the *same* window again with
//! the same idempotency key (ACS `Operation-Id`, SMTP `Message-ID`).
//!
//! The timer endpoint, the standalone scheduler, the CLI and the tests all
//! call [`DigestRunner::run`].

pub mod outcome;
pub mod render;

pub use outcome::{DigestError, Outcome, RunReport};

use crate::configuration::{DigestSettings, Settings};
use crate::domain::{EmailAddress, Recipients, TimeRange};
use crate::email::{Email, Mailer};
use crate::store::{
    Checkpoint, Claim, LeadStore, RunRecord, StoreError, StoredLead, Version, WRITE_DEADLINE,
};
use futures::TryStreamExt;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// How long before a run starts a lead must have been received to be sure
/// to be in that run.
pub const SETTLE: Duration = Duration::from_secs(30);
/// A claim older than this belongs to a run that died.
pub const CLAIM_LEASE: Duration = Duration::from_secs(10 * 60);

// The settle margin holds only while a lead's write ends well within it.
const _: () = assert!(
    WRITE_DEADLINE.as_secs() * 3 <= SETTLE.as_secs(),
    "WRITE_DEADLINE must stay well under SETTLE"
);

/// Stable per window (and table): the idempotency key of its email.
fn idempotency_key(window: TimeRange, table: &str) -> uuid::Uuid {
    let name = format!(
        "{table}|{}|{}",
        window.start.unix_timestamp_nanos(),
        window.end.unix_timestamp_nanos()
    );
    uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
}

/// Runs digests. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DigestRunner {
    store: LeadStore,
    settings: DigestSettings,
    /// `Err` says which settings are missing; reported by each run.
    mailer: Result<Mailer, String>,
    from: Option<EmailAddress>,
    leads_table: String,
}

/// What [`DigestRunner::plan`] decided.
enum Plan {
    Skip(Outcome),
    Report {
        window: TimeRange,
        expected: Option<Version>,
        stale_claim: Option<Claim>,
    },
}

/// What a run found out, whether it succeeded or not: the run history
/// records it either way.
#[derive(Debug, Default)]
struct Facts {
    window: Option<TimeRange>,
    lead_count: usize,
}

impl DigestRunner {
    /// The one way to build a runner: the store and the settings say
    /// everything.
    pub fn from_settings(store: LeadStore, settings: &Settings) -> Self {
        let mailer = match &settings.email.transport {
            Some(transport) => Mailer::from_settings(transport),
            None => Err(
                "no email transport is configured: set ACS_ENDPOINT (managed \
                         identity) or ACS_CONNECTION_STRING, or SMTP_URL"
                    .to_owned(),
            ),
        };
        Self {
            store,
            settings: settings.digest.clone(),
            mailer,
            from: settings.email.from.clone(),
            leads_table: settings.storage.leads_table.clone(),
        }
    }

    /// One digest run at `now`. Records the run in the run history and logs
    /// one line, whatever the outcome.
    #[tracing::instrument(name = "digest", skip_all, fields(run_id))]
    pub async fn run(&self, now: OffsetDateTime, dry_run: bool) -> Result<RunReport, DigestError> {
        let run_id = uuid::Uuid::new_v4();
        tracing::Span::current().record("run_id", tracing::field::display(run_id));
        let started = Instant::now();
        let (facts, result) = self.run_inner(run_id, now, dry_run).await;
        let duration = started.elapsed();

        let (outcome, message_id, error) = match &result {
            Ok(outcome) => (
                outcome.label().to_owned(),
                match outcome {
                    Outcome::Sent { message_id } => Some(message_id.clone()),
                    _ => None,
                },
                None,
            ),
            Err(e) => ("failed".to_owned(), None, Some(e.to_string())),
        };
        let duration_ms = duration.as_millis() as u64;
        let (lead_count, window) = (facts.lead_count, facts.window.map(|w| w.to_string()));
        match &error {
            None => tracing::info!(
                %run_id, outcome, lead_count, window, duration_ms, message_id,
                "digest run finished"
            ),
            Some(error) => tracing::error!(
                %run_id, outcome, lead_count, window, duration_ms, error,
                "digest run failed"
            ),
        }
        if !dry_run {
            let record = RunRecord {
                run_id,
                started_at: now,
                window_start: facts.window.map(|w| w.start),
                window_end: facts.window.map(|w| w.end),
                lead_count,
                outcome,
                message_id,
                error,
                duration,
            };
            if let Err(e) = self.store.record_run(&record).await {
                tracing::warn!(%run_id, error = %e, "could not record the run in the run history");
            }
        }
        result.map(|outcome| RunReport {
            run_id,
            window: facts.window,
            lead_count: facts.lead_count,
            outcome,
        })
    }

    /// Plans the window, reads its leads, and sends them: returns what it
    /// found out along with how it ended.
    async fn run_inner(
        &self,
        run_id: uuid::Uuid,
        now: OffsetDateTime,
        dry_run: bool,
    ) -> (Facts, Result<Outcome, DigestError>) {
        let nothing = Facts::default();
        // Check configuration before touching any state; a dry run needs none.
        let sender = match (dry_run, self.sender()) {
            (true, _) => None,
            (false, Ok(sender)) => Some(sender),
            (false, Err(e)) => return (nothing, Err(e)),
        };
        // Two cheap requests an hour; the state table may not exist yet. A
        // dry run writes nothing (a missing table reads as no checkpoint).
        if !dry_run {
            if let Err(e) = self.store.ensure_tables().await {
                return (nothing, Err(e.into()));
            }
        }
        let (window, expected, stale_claim) = match self.plan(now).await {
            Ok(Plan::Skip(outcome)) => return (nothing, Ok(outcome)),
            Ok(Plan::Report {
                window,
                expected,
                stale_claim,
            }) => (window, expected, stale_claim),
            Err(e) => return (nothing, Err(e)),
        };
        let leads: Vec<StoredLead> = match self.store.leads_in(window).try_concat().await {
            Ok(leads) => leads,
            Err(e) => {
                let facts = Facts {
                    window: Some(window),
                    lead_count: 0,
                };
                return (facts, Err(e.into()));
            }
        };
        let facts = Facts {
            window: Some(window),
            lead_count: leads.len(),
        };
        let result = match sender {
            None => Ok(self.dry_run(window, &leads)),
            Some((mailer, to, from)) => {
                let claim = Claim {
                    run_id: stale_claim.as_ref().map_or(run_id, |c| c.run_id),
                    window_end: window.end,
                    claimed_at: now,
                };
                let fresh = stale_claim.is_none();
                self.send(window, &leads, claim, expected, fresh, mailer, to, from)
                    .await
            }
        };
        (facts, result)
    }

    fn dry_run(&self, window: TimeRange, leads: &[StoredLead]) -> Outcome {
        if leads.is_empty() {
            return Outcome::NoNewLeads;
        }
        let digest = render::Digest::new(window, leads);
        Outcome::DryRun {
            text: format!("Subject: {}\n\n{}", digest.subject(), digest.text()),
        }
    }

    /// Claims the window, sends its digest and moves the checkpoint; with
    /// no leads (and no stale claim to finish) only moves the checkpoint.
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        window: TimeRange,
        leads: &[StoredLead],
        claim: Claim,
        expected: Option<Version>,
        fresh: bool,
        mailer: &Mailer,
        to: &Recipients,
        from: &EmailAddress,
    ) -> Result<Outcome, DigestError> {
        if leads.is_empty() && fresh {
            // Nothing to report: move on so the next run reads less. A
            // conflict means another run moved it; either way nothing is lost.
            let checkpoint = Checkpoint {
                reported_before: window.end,
                claim: None,
            };
            return match self
                .store
                .write_checkpoint(&checkpoint, expected.as_ref())
                .await
            {
                Ok(_) | Err(StoreError::Conflict) => Ok(Outcome::NoNewLeads),
                Err(e) => Err(e.into()),
            };
        }

        // Claim the window; losing the race means another run sends it.
        let claimed = Checkpoint {
            reported_before: window.start,
            claim: Some(claim),
        };
        let claimed = match self
            .store
            .write_checkpoint(&claimed, expected.as_ref())
            .await
        {
            Ok(version) => version,
            Err(StoreError::Conflict) => return Ok(Outcome::AnotherRunInProgress),
            Err(e) => return Err(e.into()),
        };

        let digest = render::Digest::new(window, leads);
        let email = Email {
            from: from.clone(),
            to: to.clone(),
            subject: digest.subject(),
            text: digest.text(),
            html: digest.html(),
            idempotency_key: idempotency_key(window, &self.leads_table),
        };
        match mailer.send(&email).await {
            Ok(receipt) => {
                let done = Checkpoint {
                    reported_before: window.end,
                    claim: None,
                };
                match self.store.write_checkpoint(&done, Some(&claimed)).await {
                    Ok(_) => Ok(Outcome::Sent {
                        message_id: receipt.message_id,
                    }),
                    Err(source) => Err(DigestError::CheckpointAfterSend {
                        message_id: receipt.message_id,
                        source,
                    }),
                }
            }
            Err(source) => {
                let release = Checkpoint {
                    reported_before: window.start,
                    claim: None,
                };
                if let Err(e) = self.store.write_checkpoint(&release, Some(&claimed)).await {
                    tracing::warn!(error = %e, "could not release the claim; it expires by itself");
                }
                Err(DigestError::Send {
                    lead_count: leads.len(),
                    source,
                })
            }
        }
    }

    fn sender(&self) -> Result<(&Mailer, &Recipients, &EmailAddress), DigestError> {
        let mailer = self
            .mailer
            .as_ref()
            .map_err(|e| DigestError::NotConfigured(e.clone()))?;
        let to = self.settings.to.as_ref().ok_or_else(|| {
            DigestError::NotConfigured("DIGEST_TO (the recipients) is not set".to_owned())
        })?;
        let from = self.from.as_ref().ok_or_else(|| {
            DigestError::NotConfigured("DIGEST_FROM (the sender address) is not set".to_owned())
        })?;
        Ok((mailer, to, from))
    }

    /// Decides the window from the checkpoint.
    async fn plan(&self, now: OffsetDateTime) -> Result<Plan, DigestError> {
        let settled = now - SETTLE;
        let report = |start, end, expected, stale_claim| match TimeRange::new(start, end) {
            Some(window) => Plan::Report {
                window,
                expected,
                stale_claim,
            },
            None => Plan::Skip(Outcome::NoNewLeads),
        };
        let Some((checkpoint, version)) = self.store.checkpoint().await? else {
            return Ok(report(
                now - self.settings.first_run_lookback,
                settled,
                None,
                None,
            ));
        };
        if let Some(claim) = checkpoint.claim {
            if now - claim.claimed_at < CLAIM_LEASE {
                return Ok(Plan::Skip(Outcome::AnotherRunInProgress));
            }
            tracing::warn!(
                claimed_by = %claim.run_id,
                "a previous run claimed this window and did not finish; sending it again"
            );
            let window_end = claim.window_end;
            return Ok(report(
                checkpoint.reported_before,
                window_end,
                Some(version),
                Some(claim),
            ));
        }
        Ok(report(
            checkpoint.reported_before,
            settled,
            Some(version),
            None,
        ))
    }
}
