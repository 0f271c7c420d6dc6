//! The digest run: email every stored lead not yet reported, exactly once,
//! whenever its write committed.
//!
//! Every lead is stored with a pending digest record in its own
//! entity-group transaction (see [`crate::store::outbox`]); a destination
//! that gives up on a lead adds a dead letter the same way. A run:
//!
//! 1. Reads the checkpoint. A claim an earlier run left is finished first:
//!    *sent* — only its records remain to be removed; *ambiguous* (its
//!    send's outcome is unknown) or older than [`RUN_LEASE`] (its run
//!    died) — its records are sent again, the same email with the same
//!    idempotency key (ACS `Operation-Id`, SMTP `Message-ID`); any other
//!    claim — another run is sending, and this one ends.
//! 2. Reads the pending digest records: the outbox's `P.digest.` range from
//!    the cursor's day on, never a scan. None (and no refused bodies to
//!    count): no email.
//! 3. Claims them: writes a claim into the checkpoint with the version read
//!    in 1 (of two runs, one wins), then stamps each record with the run's
//!    id — at most [`MAX_LEADS_PER_DIGEST`]; the rest wait for the next run.
//! 4. Renders: counts every record, reads only the leads shown in detail.
//! 5. Sends, within the mailer's budget. Accepted: the claim is marked sent,
//!    the records removed, the claim cleared. Refused before anything was
//!    handed over: the claim is released and the records stay pending.
//!    Outcome unknown: the claim is kept as ambiguous, so the next run sends
//!    the same email again.
//!
//! A run ends within [`RUN_BUDGET`], well inside the Functions host's
//! `functionTimeout` (10 minutes in host.json). The timer endpoint, the
//! standalone scheduler, the CLI and the tests all call [`DigestRunner::run`].

pub mod card;
pub mod claim;
pub mod outcome;
pub mod render;
pub mod subject;

pub use outcome::{DigestError, Outcome, RunReport};

use crate::configuration::{DigestSettings, Settings};
use crate::domain::{EmailAddress, Recipients, TimeRange};
use crate::email::{Email, Mailer};
use crate::store::rate::{sending_domain_budget, DIGEST_SENDER};
use crate::store::{
    Checkpoint, Claim, Consumer, DigestItem, LeadStore, PendingDays, Progress, RunRecord,
    StoreError, Version,
};
use claim::Arrival;
use futures::TryStreamExt;
use render::Digest;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// A whole run, sending included, ends within this.
pub const RUN_BUDGET: Duration = Duration::from_secs(4 * 60);
/// A claim older than this belongs to a run that died: a run that lives
/// ends within [`RUN_BUDGET`].
pub const RUN_LEASE: Duration = Duration::from_secs(5 * 60);
/// Leads reported by one digest; a backlog beyond it (an outage of days)
/// follows in the next runs, so every run stays within its budget.
pub const MAX_LEADS_PER_DIGEST: usize = 10_000;

const _: () = assert!(RUN_BUDGET.as_secs() < RUN_LEASE.as_secs());

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

/// What a run found out, whether it succeeded or not: the run history
/// records it either way.
#[derive(Debug, Default, Clone, Copy)]
struct Facts {
    window: Option<TimeRange>,
    lead_count: usize,
}

impl Facts {
    /// What `digest` holds, once rendered.
    fn learn(&mut self, digest: &Digest) {
        self.window = digest.span();
        self.lead_count = digest.lead_count();
    }
}

/// What a run found at its start: the checkpoint at its version, and the
/// days that may hold pending records.
struct Found {
    checkpoint: Checkpoint,
    version: Option<Version>,
    days: PendingDays,
    now: OffsetDateTime,
}

/// Who receives a digest, and through what.
struct Sender<'a> {
    mailer: &'a Mailer,
    to: &'a Recipients,
    from: &'a EmailAddress,
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
        let mut facts = Facts::default();
        let run = self.run_inner(run_id, now, dry_run, &mut facts);
        let result = tokio::time::timeout(RUN_BUDGET, run)
            .await
            .unwrap_or(Err(DigestError::TimedOut(RUN_BUDGET)));
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
            if let Err(e) = self.store.digest_state().record(&record).await {
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

    /// Steps 1–5; what the run finds out goes into `facts` as it goes.
    async fn run_inner(
        &self,
        run_id: uuid::Uuid,
        now: OffsetDateTime,
        dry_run: bool,
        facts: &mut Facts,
    ) -> Result<Outcome, DigestError> {
        if dry_run {
            return self.dry_run(now, facts).await;
        }
        // Check configuration before touching any state.
        let sender = self.sender()?;
        self.store.ensure_tables().await?;
        let (checkpoint, version) = self.adopted_checkpoint(now).await?;
        let days = self.store.pending_days(Progress::Digest, now).await?;
        let (checkpoint, version) = match claim::arrive(&checkpoint, now) {
            Arrival::Free => (checkpoint, version),
            Arrival::FinishSent(claim) => {
                self.finish_sent(&claim, &checkpoint, version.as_ref(), days)
                    .await?
            }
            Arrival::Busy => return Ok(Outcome::AnotherRunInProgress),
            Arrival::Resend(claim) => {
                tracing::warn!(
                    claimed_by = %claim.run_id,
                    state = ?claim.state,
                    "an earlier digest's outcome is unknown; sending the same email again"
                );
                let found = Found {
                    checkpoint,
                    version,
                    days,
                    now,
                };
                return self.resend(claim, found, &sender, facts).await;
            }
        };
        let found = Found {
            checkpoint,
            version,
            days,
            now,
        };
        self.report_pending(run_id, found, &sender, facts).await
    }

    /// Steps 2–5 for the records no run holds.
    async fn report_pending(
        &self,
        run_id: uuid::Uuid,
        found: Found,
        sender: &Sender<'_>,
        facts: &mut Facts,
    ) -> Result<Outcome, DigestError> {
        let Found { days, now, .. } = found;
        let (items, waiting) = self.read_pending(days, None).await?;
        let counted_from = self.rejected_counted_from(&found.checkpoint, now);
        let rejected = match TimeRange::new(counted_from, now) {
            Some(range) => self.store.count_rejected(range).await?,
            None => 0,
        };
        if items.is_empty() && rejected == 0 {
            self.raise_cursor(days, now).await;
            return Ok(Outcome::NoNewLeads);
        }

        // Claim, then stamp: of two runs only one gets here with a claim.
        let claimed = claim::claim(&found.checkpoint, run_id, now);
        let Some(version) = self.hold(&claimed, found.version.as_ref()).await? else {
            return Ok(Outcome::AnotherRunInProgress);
        };
        if let Err(e) = self.store.digest_queue().stamp(&items, run_id).await {
            // Nothing was sent: release, so the next run takes them all.
            self.write_best_effort(&claim::release(&claimed), &version, "release the claim")
                .await;
            return Err(e.into());
        }
        let mut digest = self.render(&items).await?;
        digest.set_rejected(rejected);
        digest.set_waiting(waiting);
        facts.learn(&digest);
        self.send(digest, claimed, version, days, now, sender).await
    }

    /// Sends a claim's digest again: its records are those stamped with its
    /// run id, so the email is the one its run may have sent, under the
    /// same idempotency key.
    async fn resend(
        &self,
        claim: Claim,
        found: Found,
        sender: &Sender<'_>,
        facts: &mut Facts,
    ) -> Result<Outcome, DigestError> {
        let Found { days, now, .. } = found;
        let taken = claim::take_over(&found.checkpoint, &claim, now);
        let Some(version) = self.hold(&taken, found.version.as_ref()).await? else {
            return Ok(Outcome::AnotherRunInProgress);
        };
        let (items, _) = self.read_pending(days, Some(claim.run_id)).await?;
        let mut digest = self.render(&items).await?;
        facts.learn(&digest);
        let counted_from = self.rejected_counted_from(&taken, claim.claimed_at);
        if let Some(range) = TimeRange::new(counted_from, claim.counted_until) {
            digest.set_rejected(self.store.count_rejected(range).await?);
        }
        self.send(digest, taken, version, days, now, sender).await
    }

    /// Step 5: sends the claimed digest and records what happened.
    async fn send(
        &self,
        digest: Digest,
        claimed: Checkpoint,
        version: Version,
        days: PendingDays,
        now: OffsetDateTime,
        sender: &Sender<'_>,
    ) -> Result<Outcome, DigestError> {
        let Some(claim) = claimed.claim.clone() else {
            return Err(DigestError::Internal("send without a claim"));
        };
        let email = Email {
            from: sender.from.clone(),
            to: sender.to.clone(),
            subject: digest.subject(),
            text: digest.text(),
            html: digest.html(),
            idempotency_key: self.idempotency_key(claim.run_id),
        };
        let receipt = match sender.mailer.send(&email).await {
            Ok(receipt) => receipt,
            Err(source) => {
                let send = if source.may_have_been_sent() {
                    claim::Send::Unknown
                } else {
                    claim::Send::Refused
                };
                let next = claim::after_send(&claimed, send);
                self.write_best_effort(&next, &version, "update the claim")
                    .await;
                return Err(DigestError::Send {
                    lead_count: digest.lead_count(),
                    source,
                });
            }
        };
        self.count_in_domain_budget(sender.from, now).await;
        let message_id = receipt.message_id;
        let sent = claim::after_send(
            &claimed,
            claim::Send::Accepted {
                message_id: message_id.clone(),
            },
        );
        let version = match self.store.digest_state().write(&sent, Some(&version)).await {
            Ok(version) => version,
            Err(source) => {
                return Err(DigestError::CheckpointAfterSend { message_id, source });
            }
        };
        // Already sent: removing the records may fail now and be finished
        // by the next run, never sent again.
        if let Err(e) = self.finish_sent(&claim, &sent, Some(&version), days).await {
            tracing::warn!(error = %e, "the digest was sent; its records are removed by the next run");
        }
        self.raise_cursor(days, now).await;
        Ok(Outcome::Sent { message_id })
    }

    /// Writes the claim `checkpoint` holds, over the checkpoint at
    /// `version`: its new version, or `None` when another run wrote first
    /// (and holds the records).
    async fn hold(
        &self,
        checkpoint: &Checkpoint,
        version: Option<&Version>,
    ) -> Result<Option<Version>, DigestError> {
        match self.store.digest_state().write(checkpoint, version).await {
            Ok(version) => Ok(Some(version)),
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes `checkpoint` when the run cannot do more about a failure: a
    /// claim left behind expires by itself.
    async fn write_best_effort(&self, checkpoint: &Checkpoint, version: &Version, what: &str) {
        if let Err(e) = self
            .store
            .digest_state()
            .write(checkpoint, Some(version))
            .await
        {
            tracing::warn!(error = %e, "could not {what}; the claim expires by itself");
        }
    }

    /// Moves the digest's outbox cursor past the days it has done.
    async fn raise_cursor(&self, days: PendingDays, now: OffsetDateTime) {
        if let Err(e) = self
            .store
            .raise_cursor(Progress::Digest, days, None, now)
            .await
        {
            tracing::warn!(error = %e, "could not move the outbox cursor");
        }
    }

    /// Removes the records of a sent claim and clears it; returns the
    /// checkpoint and version to go on from.
    async fn finish_sent(
        &self,
        claim: &Claim,
        checkpoint: &Checkpoint,
        version: Option<&Version>,
        days: PendingDays,
    ) -> Result<(Checkpoint, Option<Version>), DigestError> {
        let mut pages = std::pin::pin!(self.store.digest_queue().pending(days, Some(claim.run_id)));
        while let Some(items) = pages.try_next().await? {
            self.store.digest_queue().remove(&items).await?;
        }
        let cleared = claim::cleared(checkpoint, claim);
        let version = self.store.digest_state().write(&cleared, version).await?;
        Ok((cleared, Some(version)))
    }

    /// The pending digest records: those stamped with `run` when given, else
    /// all (records stamped by a released claim are free again), up to
    /// [`MAX_LEADS_PER_DIGEST`] leads; also how many leads are beyond it.
    async fn read_pending(
        &self,
        days: PendingDays,
        run: Option<uuid::Uuid>,
    ) -> Result<(Vec<DigestItem>, usize), DigestError> {
        let mut pages = std::pin::pin!(self.store.digest_queue().pending(days, run));
        let mut items = Vec::new();
        let mut leads = 0;
        let mut waiting = 0;
        while let Some(page) = pages.try_next().await? {
            for item in page {
                let is_lead = item.dead_letter.is_none();
                if is_lead && leads >= MAX_LEADS_PER_DIGEST {
                    waiting += 1;
                    continue;
                }
                leads += usize::from(is_lead);
                items.push(item);
            }
        }
        Ok((items, waiting))
    }

    /// Counts every record, and reads only the leads shown in detail.
    async fn render(&self, items: &[DigestItem]) -> Result<Digest, DigestError> {
        let mut digest = Digest::new();
        let mut shown = Vec::new();
        for item in items {
            match &item.dead_letter {
                Some(dead) => digest.add_dead_letter(item.lead.id.as_str(), dead),
                None => {
                    let received_at = crate::store::keys::received_at_of(&item.lead.row_key)
                        .unwrap_or(item.enqueued_at);
                    if digest.wants_details(item.lead.is_test) {
                        shown.push(&item.lead);
                    }
                    digest.count_lead(&item.lead, received_at);
                }
            }
        }
        let mut leads = self.store.leads_of(&shown).await?;
        leads.sort_by_key(|lead| lead.received_at);
        for lead in &leads {
            digest.show_lead(lead);
        }
        Ok(digest)
    }

    /// `--dry-run`: what the next run would send; reads, writes nothing.
    async fn dry_run(
        &self,
        now: OffsetDateTime,
        facts: &mut Facts,
    ) -> Result<Outcome, DigestError> {
        let days = self.store.pending_days(Progress::Digest, now).await?;
        let (items, waiting) = match self.read_pending(days, None).await {
            Ok(found) => found,
            // A table that does not exist yet holds nothing to send.
            Err(DigestError::Storage(e)) if e.is_status(azure_core::StatusCode::NotFound) => {
                return Ok(Outcome::NoNewLeads)
            }
            Err(e) => return Err(e),
        };
        if items.is_empty() {
            return Ok(Outcome::NoNewLeads);
        }
        let mut digest = self.render(&items).await?;
        digest.set_waiting(waiting);
        facts.learn(&digest);
        let text = format!("Subject: {}\n\n{}", digest.subject(), digest.text());
        Ok(Outcome::DryRun { text })
    }

    /// The checkpoint, once pending records drive the digest. A checkpoint
    /// of the time-window digest (versions before 0.2), or none at all, is
    /// adopted first: the leads it had not reported get pending records.
    async fn adopted_checkpoint(
        &self,
        now: OffsetDateTime,
    ) -> Result<(Checkpoint, Option<Version>), DigestError> {
        let (checkpoint, version) = match self.store.digest_state().checkpoint().await? {
            Some((checkpoint, version)) => (checkpoint, Some(version)),
            None => (Checkpoint::default(), None),
        };
        if checkpoint.outbox {
            return Ok((checkpoint, version));
        }
        let since = checkpoint
            .legacy_reported_before
            .unwrap_or(now - self.settings.first_run_lookback);
        if let Some(range) = TimeRange::new(since, now) {
            let adopted = self
                .store
                .backfill(&Consumer::Digest, range, now, |_| true)
                .await?;
            if adopted > 0 {
                tracing::info!(adopted, "leads not yet in a digest are now pending for it");
            }
        }
        let adopted = Checkpoint {
            outbox: true,
            legacy_reported_before: None,
            rejected_counted_before: Some(since),
            claim: None,
        };
        match self
            .store
            .digest_state()
            .write(&adopted, version.as_ref())
            .await
        {
            Ok(version) => Ok((adopted, Some(version))),
            // Another run adopted it at the same time: read what it wrote.
            Err(StoreError::Conflict) => match self.store.digest_state().checkpoint().await? {
                Some((checkpoint, version)) => Ok((checkpoint, Some(version))),
                None => Err(DigestError::Internal("the checkpoint vanished")),
            },
            Err(e) => Err(e.into()),
        }
    }

    fn rejected_counted_from(
        &self,
        checkpoint: &Checkpoint,
        now: OffsetDateTime,
    ) -> OffsetDateTime {
        checkpoint
            .rejected_counted_before
            .unwrap_or(now - self.settings.first_run_lookback)
    }

    /// Counts the digest's email in its sending domain's hourly budget, so
    /// the per-lead emails of that hour leave room for it (they keep one
    /// send back until it is counted). Best effort: the email is sent.
    async fn count_in_domain_budget(&self, from: &EmailAddress, now: OffsetDateTime) {
        let budget = sending_domain_budget(from.domain());
        let window = Duration::from_secs(3_600);
        if let Err(e) = self
            .store
            .count_send(&budget, DIGEST_SENDER, window, now)
            .await
        {
            tracing::warn!(error = %e, "could not count the digest in the hour's email budget");
        }
    }

    /// Stable per claim (and table): the idempotency key of its email.
    fn idempotency_key(&self, run_id: uuid::Uuid) -> uuid::Uuid {
        let name = format!("{}|digest|{run_id}", self.leads_table);
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, name.as_bytes())
    }

    fn sender(&self) -> Result<Sender<'_>, DigestError> {
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
        Ok(Sender { mailer, to, from })
    }
}
