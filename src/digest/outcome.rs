//! What a digest run tells its callers: how it ended ([`Outcome`]), the
//! report of a run that did not fail ([`RunReport`]), and why a run failed
//! ([`DigestError`]).

use super::RUN_LEASE;
use crate::domain::TimeRange;
use crate::email::SendError;
use crate::store::StoreError;
use std::time::Duration;

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
    pub window: Option<TimeRange>,
    pub lead_count: usize,
    pub outcome: Outcome,
}

impl RunReport {
    /// One line for the host's invocation log and stdout.
    pub fn summary(&self) -> String {
        let window = self
            .window
            .map(|w| format!(" received {w}"))
            .unwrap_or_default();
        match &self.outcome {
            Outcome::Sent { message_id } => format!(
                "digest sent: {} lead(s){window}, message id {message_id}",
                self.lead_count
            ),
            Outcome::NoNewLeads => "digest no-new-leads: 0 lead(s)".to_owned(),
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
        source: SendError,
    },
    #[error(
        "the digest was sent (message id {message_id}) but that could not be recorded: \
         {source}; after {lease} minutes the next run resends the same digest with the same id",
        lease = RUN_LEASE.as_secs() / 60
    )]
    CheckpointAfterSend {
        message_id: String,
        source: StoreError,
    },
    #[error("the run did not finish within {} s; the next run takes over", .0.as_secs())]
    TimedOut(Duration),
    #[error("internal error: {0}")]
    Internal(&'static str),
}
