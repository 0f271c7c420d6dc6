//! Keeping leads only as long as the publisher decides
//! (`LEADS_RETENTION_DAYS`): run after each digest, it deletes the day
//! partitions older than the retention — never one where the digest or a
//! delivery may still have pending work (their cursors) — and refused
//! bodies older than it, at most [`ROWS_PER_RUN`] rows a run, so a first
//! run over years of leads spreads over a few hours of digests instead of
//! holding the timer.

use crate::configuration::Settings;
use crate::store::{LeadStore, Progress, StoreError};
use time::OffsetDateTime;

/// Rows one run deletes at most (20 transactions of 100).
pub const ROWS_PER_RUN: usize = 2_000;

/// What one run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deleted: usize,
    /// More is older than the retention: the next run goes on.
    pub more: bool,
}

#[derive(Debug, Clone)]
pub struct Retention {
    store: LeadStore,
    days: u32,
}

impl Retention {
    /// `None` when leads are kept (`LEADS_RETENTION_DAYS` unset).
    pub fn from_settings(store: LeadStore, settings: &Settings) -> Option<Self> {
        Some(Self {
            store,
            days: settings.retention_days?,
        })
    }

    /// One bounded run at `now`.
    pub async fn run(&self, now: OffsetDateTime) -> Result<Pruned, StoreError> {
        self.run_with_budget(now, ROWS_PER_RUN).await
    }

    pub async fn run_with_budget(
        &self,
        now: OffsetDateTime,
        budget: usize,
    ) -> Result<Pruned, StoreError> {
        let keep_from = (now - time::Duration::days(i64::from(self.days))).date();
        // The digest's cursor is the older of its own and the deliveries'.
        let protect_from = self.store.pending_days(Progress::Digest, now).await?.first;
        let (deleted, more) = self
            .store
            .apply_retention(keep_from, protect_from, budget)
            .await?;
        tracing::info!(
            deleted,
            more,
            keep_from = %keep_from,
            "retention run finished"
        );
        Ok(Pruned { deleted, more })
    }
}
