//! The digest run: email every lead stored since the last successful digest.
//!
//! The window is kept by a checkpoint in Table storage, not by the clock:
//!
//! 1. Read the checkpoint (`reported_through` and its version).
//! 2. The window is `(reported_through, now − SETTLE]`. Writes of leads are
//!    bounded by `WRITE_DEADLINE` (seconds), far below `SETTLE`, so
//!    every lead received inside the window is committed before the run
//!    reads it; a lead still in flight falls in the next window.
//!    (`WRITE_DEADLINE` is in [`crate::store`].)
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

pub mod render;

use crate::configuration::DigestSettings;
use crate::email::{Email, EmailAddress, Mailer, Recipients, SendError};
use crate::store::{Checkpoint, Claim, LeadStore, RunRecord, StoreError, StoredLead, Version};
use futures::TryStreamExt;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// How long before a run starts a lead must have been received to be sure
/// to be in that run.
pub const SETTLE: Duration = Duration::from_secs(30);
/// A claim older than this belongs to a run that died.
pub const CLAIM_LEASE: Duration = Duration::from_secs(10 * 60);

/// How a run ended, when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The digest was accepted by the provider.
    Sent { message_id: String },
    /// Nothing new since the last digest: no email.
    NoNewLeads,
    /// Another run holds the window; it sends the email.
    AnotherRunInProgress,
    /// `--dry-run`: rendered, not sent, checkpoint untouched.
    DryRun { text: String },
}

impl Outcome {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sent { .. } => "sent",
            Self::NoNewLeads => "no-new-leads",
            Self::AnotherRunInProgress => "another-run-in-progress",
            Self::DryRun { .. } => "dry-run",
        }
    }
}

/// The result of a run that did not fail.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub run_id: uuid::Uuid,
    pub window: Option<Window>,
    pub lead_count: usize,
    pub outcome: Outcome,
}

impl RunReport {
    /// One line for the host's invocation log and stdout.
    pub fn summary(&self) -> String {
        let window = self
            .window
            .map(|w| format!(" window {}", w))
            .unwrap_or_default();
        match &self.outcome {
            Outcome::Sent { message_id } => format!(
                "digest sent: {} lead(s){window}, message id {message_id}",
                self.lead_count
            ),
            Outcome::NoNewLeads => format!(
                "digest no-new-leads: 0 lead(s){window}; leads received in the last {} s \
                 are in the next run",
                SETTLE.as_secs()
            ),
            other => format!(
                "digest {}: {} lead(s){window}",
                other.label(),
                self.lead_count
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("the digest is not configured: {0}")]
    NotConfigured(String),
    #[error(transparent)]
    Storage(#[from] StoreError),
    #[error("sending the digest failed; its {lead_count} lead(s) stay pending for the next run: {source}")]
    Send {
        lead_count: usize,
        #[source]
        source: SendError,
    },
    #[error(
        "the digest was sent (message id {message_id}) but the checkpoint could not be moved: \
         {source}; after {lease} minutes the next run resends the same digest with the same id",
        lease = CLAIM_LEASE.as_secs() / 60
    )]
    CheckpointAfterSend {
        message_id: String,
        #[source]
        source: StoreError,
    },
}

/// `(start, end]` in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl std::fmt::Display for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rfc3339 = |at: OffsetDateTime| at.format(&Rfc3339).unwrap_or_default();
        write!(f, "({}, {}]", rfc3339(self.start), rfc3339(self.end))
    }
}

impl Window {
    /// Stable per window (and table): the idempotency key of its email.
    fn idempotency_key(&self, table: &str) -> uuid::Uuid {
        let name = format!(
            "{table}|{}|{}",
            self.start.unix_timestamp_nanos(),
            self.end.unix_timestamp_nanos()
        );
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
    }
}

/// Runs digests. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DigestRunner {
    store: LeadStore,
    settings: DigestSettings,
    leads_table: String,
}

/// What [`DigestRunner::plan`] decided.
enum Plan {
    Skip(Outcome),
    Report {
        window: Window,
        expected: Option<Version>,
        stale_claim: Option<Claim>,
    },
}

impl DigestRunner {
    pub fn new(store: LeadStore, settings: DigestSettings, leads_table: String) -> Self {
        Self {
            store,
            settings,
            leads_table,
        }
    }

    /// One digest run at `now`. Records the run in the run history and logs
    /// one line, whatever the outcome.
    #[tracing::instrument(name = "digest", skip_all, fields(run_id))]
    pub async fn run(&self, now: OffsetDateTime, dry_run: bool) -> Result<RunReport, DigestError> {
        let run_id = uuid::Uuid::new_v4();
        tracing::Span::current().record("run_id", tracing::field::display(run_id));
        let started = Instant::now();
        let mut window = None;
        let mut lead_count = 0;
        let result = self
            .run_inner(run_id, now, dry_run, &mut window, &mut lead_count)
            .await;
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
            Err(e) => ("failed".to_owned(), None, Some(format!("{e:#}"))),
        };
        let duration_ms = duration.as_millis() as u64;
        match &error {
            None => tracing::info!(
                %run_id, outcome, lead_count, window = ?window.map(|w: Window| w.to_string()),
                duration_ms, message_id, "digest run finished"
            ),
            Some(error) => tracing::error!(
                %run_id, outcome, lead_count, window = ?window.map(|w: Window| w.to_string()),
                duration_ms, error, "digest run failed"
            ),
        }
        if !dry_run {
            let record = RunRecord {
                run_id,
                started_at: now,
                window_start: window.map(|w| w.start),
                window_end: window.map(|w| w.end),
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
            window,
            lead_count,
            outcome,
        })
    }

    async fn run_inner(
        &self,
        run_id: uuid::Uuid,
        now: OffsetDateTime,
        dry_run: bool,
        window_out: &mut Option<Window>,
        lead_count: &mut usize,
    ) -> Result<Outcome, DigestError> {
        // Check configuration before touching any state; a dry run needs none.
        let sender = if dry_run { None } else { Some(self.sender()?) };

        // Two cheap requests an hour; the state table may not exist yet. A
        // dry run writes nothing (a missing table reads as no checkpoint).
        if !dry_run {
            self.store.ensure_tables().await?;
        }
        let (window, expected, stale_claim) = match self.plan(now).await? {
            Plan::Skip(outcome) => return Ok(outcome),
            Plan::Report {
                window,
                expected,
                stale_claim,
            } => (window, expected, stale_claim),
        };
        *window_out = Some(window);

        let leads: Vec<StoredLead> = self
            .store
            .leads_between(window.start, window.end)
            .try_concat()
            .await?;
        *lead_count = leads.len();

        if leads.is_empty() && stale_claim.is_none() {
            if sender.is_none() {
                return Ok(Outcome::NoNewLeads); // dry run: touch nothing
            }
            // Nothing to report: move on so the next run reads less. A
            // conflict means another run moved it; either way nothing is lost.
            let checkpoint = Checkpoint {
                reported_through: window.end,
                claim: None,
            };
            match self
                .store
                .write_checkpoint(&checkpoint, expected.as_ref())
                .await
            {
                Ok(_) | Err(StoreError::Conflict) => return Ok(Outcome::NoNewLeads),
                Err(e) => return Err(e.into()),
            }
        }

        let digest = render::Digest::new(window, &leads);
        let Some((mailer, to, from)) = sender else {
            return Ok(Outcome::DryRun {
                text: format!("Subject: {}\n\n{}", digest.subject(), digest.text()),
            });
        };

        // Claim the window; losing the race means another run sends it.
        let claim = Checkpoint {
            reported_through: window.start,
            claim: Some(Claim {
                run_id: stale_claim.as_ref().map_or(run_id, |c| c.run_id),
                window_end: window.end,
                claimed_at: now,
            }),
        };
        let claimed = match self.store.write_checkpoint(&claim, expected.as_ref()).await {
            Ok(version) => version,
            Err(StoreError::Conflict) => return Ok(Outcome::AnotherRunInProgress),
            Err(e) => return Err(e.into()),
        };

        let email = Email {
            from,
            to,
            subject: digest.subject(),
            text: digest.text(),
            html: digest.html(),
            idempotency_key: window.idempotency_key(&self.leads_table),
        };
        match mailer.send(&email).await {
            Ok(receipt) => {
                let done = Checkpoint {
                    reported_through: window.end,
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
                    reported_through: window.start,
                    claim: None,
                };
                if let Err(e) = self.store.write_checkpoint(&release, Some(&claimed)).await {
                    tracing::warn!(error = %e, "could not release the claim; it expires by itself");
                }
                Err(DigestError::Send {
                    lead_count: *lead_count,
                    source,
                })
            }
        }
    }

    fn sender(&self) -> Result<(Mailer, Recipients, EmailAddress), DigestError> {
        let mailer = Mailer::from_settings(&self.settings).map_err(DigestError::NotConfigured)?;
        let to = self.settings.to.clone().ok_or_else(|| {
            DigestError::NotConfigured("DIGEST_TO (the recipients) is not set".to_owned())
        })?;
        let from = self.settings.from.clone().ok_or_else(|| {
            DigestError::NotConfigured("DIGEST_FROM (the sender address) is not set".to_owned())
        })?;
        Ok((mailer, to, from))
    }

    /// Decides the window from the checkpoint.
    async fn plan(&self, now: OffsetDateTime) -> Result<Plan, DigestError> {
        let settled = now - SETTLE;
        let Some((checkpoint, version)) = self.store.checkpoint().await? else {
            return Ok(Plan::Report {
                window: Window {
                    start: now - self.settings.first_run_lookback,
                    end: settled,
                },
                expected: None,
                stale_claim: None,
            });
        };
        if let Some(claim) = checkpoint.claim {
            if now - claim.claimed_at < CLAIM_LEASE {
                return Ok(Plan::Skip(Outcome::AnotherRunInProgress));
            }
            tracing::warn!(
                claimed_by = %claim.run_id,
                "a previous run claimed this window and did not finish; sending it again"
            );
            return Ok(Plan::Report {
                window: Window {
                    start: checkpoint.reported_through,
                    end: claim.window_end,
                },
                expected: Some(version),
                stale_claim: Some(claim),
            });
        }
        if settled <= checkpoint.reported_through {
            return Ok(Plan::Skip(Outcome::NoNewLeads));
        }
        Ok(Plan::Report {
            window: Window {
                start: checkpoint.reported_through,
                end: settled,
            },
            expected: Some(version),
            stale_claim: None,
        })
    }
}
