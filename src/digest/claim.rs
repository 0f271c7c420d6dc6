//! The digest's claim on its pending records, as a state machine: what a
//! run does about the checkpoint it finds, and the checkpoint each of its
//! steps writes next. Pure — the run ([`super::DigestRunner::run`]) does
//! the reading and writing, each write conditional on the version it read,
//! so of two runs only one moves the claim on.
//!
//! ```text
//! no claim ─claim─▶ Sending ─accepted─▶ Sent ─records removed─▶ no claim
//!                    │   └─refused, nothing handed over─▶ no claim
//!                    └─outcome unknown─▶ Ambiguous
//! Ambiguous, or Sending older than RUN_LEASE (its run died)
//!          ─take over─▶ Sending: same run id, so the same email again
//! ```

use super::RUN_LEASE;
use crate::store::{Checkpoint, Claim, ClaimState};
use time::OffsetDateTime;

/// What a run does about the checkpoint it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// No run holds records: report what is pending.
    Free,
    /// A sent digest's records are still there: remove them, then report.
    FinishSent(Claim),
    /// Another run is sending: this one ends.
    Busy,
    /// An earlier send's outcome is unknown, or its run died: send the
    /// same email again.
    Resend(Claim),
}

/// How a send ended, for the claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Send {
    Accepted {
        message_id: String,
    },
    /// Refused before anything was handed over: nothing went out.
    Refused,
    /// The connection broke after the message was handed over.
    Unknown,
}

/// What a run at `now` does about `checkpoint`.
pub fn arrive(checkpoint: &Checkpoint, now: OffsetDateTime) -> Arrival {
    let Some(claim) = &checkpoint.claim else {
        return Arrival::Free;
    };
    match &claim.state {
        ClaimState::Sent { .. } => Arrival::FinishSent(claim.clone()),
        ClaimState::Sending if now - claim.claimed_at < RUN_LEASE => Arrival::Busy,
        ClaimState::Sending | ClaimState::Ambiguous => Arrival::Resend(claim.clone()),
    }
}

/// The checkpoint holding what `run_id` reports: refused bodies counted
/// up to `now`.
pub fn claim(checkpoint: &Checkpoint, run_id: uuid::Uuid, now: OffsetDateTime) -> Checkpoint {
    Checkpoint {
        claim: Some(Claim {
            run_id,
            claimed_at: now,
            counted_until: now,
            state: ClaimState::Sending,
        }),
        ..checkpoint.clone()
    }
}

/// `claim` taken over at `now` (a fresh lease, so no other run resends
/// too): the same run id and the same count, hence the same email.
pub fn take_over(checkpoint: &Checkpoint, claim: &Claim, now: OffsetDateTime) -> Checkpoint {
    Checkpoint {
        claim: Some(Claim {
            claimed_at: now,
            state: ClaimState::Sending,
            ..claim.clone()
        }),
        ..checkpoint.clone()
    }
}

/// Nothing was sent: the next run takes every record again.
pub fn release(checkpoint: &Checkpoint) -> Checkpoint {
    Checkpoint {
        claim: None,
        ..checkpoint.clone()
    }
}

/// What the claim of `claimed` becomes once its send ended.
pub fn after_send(claimed: &Checkpoint, send: Send) -> Checkpoint {
    let with_state = |state| Checkpoint {
        claim: claimed.claim.clone().map(|claim| Claim { state, ..claim }),
        ..claimed.clone()
    };
    match send {
        Send::Accepted { message_id } => with_state(ClaimState::Sent { message_id }),
        Send::Unknown => with_state(ClaimState::Ambiguous),
        Send::Refused => release(claimed),
    }
}

/// A sent claim's records removed: no claim, and the refused bodies it
/// counted are not counted again.
pub fn cleared(checkpoint: &Checkpoint, claim: &Claim) -> Checkpoint {
    Checkpoint {
        claim: None,
        rejected_counted_before: Some(claim.counted_until),
        ..checkpoint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;
    use time::Duration;

    const T0: OffsetDateTime = datetime!(2026-12-06 10:00 UTC);
    const RUN: uuid::Uuid = uuid::Uuid::from_u128(1);

    fn start() -> Checkpoint {
        Checkpoint {
            outbox: true,
            rejected_counted_before: Some(T0 - Duration::hours(1)),
            ..Checkpoint::default()
        }
    }

    fn held(checkpoint: &Checkpoint) -> &Claim {
        checkpoint.claim.as_ref().expect("a claim")
    }

    #[test]
    fn a_free_checkpoint_is_claimed_sending_and_counts_up_to_now() {
        assert_eq!(arrive(&start(), T0), Arrival::Free);
        let claimed = claim(&start(), RUN, T0);
        let c = held(&claimed);
        assert_eq!((c.run_id, c.claimed_at, c.counted_until), (RUN, T0, T0));
        assert_eq!(c.state, ClaimState::Sending);
        assert_eq!(
            claimed.rejected_counted_before,
            start().rejected_counted_before
        );
    }

    #[test]
    fn a_claim_being_sent_is_left_alone_until_its_lease_ends() {
        let claimed = claim(&start(), RUN, T0);
        let lease = Duration::try_from(RUN_LEASE).expect("a lease");
        let within = T0 + lease - Duration::seconds(1);
        assert_eq!(arrive(&claimed, within), Arrival::Busy);
        // Its run died: the next one sends the same email again.
        assert_eq!(
            arrive(&claimed, T0 + lease),
            Arrival::Resend(held(&claimed).clone())
        );
    }

    #[test]
    fn an_accepted_send_is_finished_by_removing_its_records() {
        let claimed = claim(&start(), RUN, T0);
        let sent = after_send(
            &claimed,
            Send::Accepted {
                message_id: "m-1".into(),
            },
        );
        let claim = held(&sent).clone();
        assert_eq!(
            claim.state,
            ClaimState::Sent {
                message_id: "m-1".into()
            }
        );
        // However late, a sent claim is never sent again: only finished.
        assert_eq!(
            arrive(&sent, T0 + Duration::days(3)),
            Arrival::FinishSent(claim.clone())
        );
        let done = cleared(&sent, &claim);
        assert_eq!(done.claim, None);
        assert_eq!(done.rejected_counted_before, Some(T0));
        assert_eq!(arrive(&done, T0), Arrival::Free);
    }

    #[test]
    fn a_refused_send_releases_and_an_unknown_one_is_sent_again_the_same() {
        let claimed = claim(&start(), RUN, T0);
        assert_eq!(after_send(&claimed, Send::Refused), release(&claimed));
        assert_eq!(release(&claimed).claim, None);
        assert_eq!(
            release(&claimed).rejected_counted_before,
            start().rejected_counted_before,
            "a released claim's refused bodies are counted by the next"
        );

        let unknown = after_send(&claimed, Send::Unknown);
        assert_eq!(held(&unknown).state, ClaimState::Ambiguous);
        let Arrival::Resend(old) = arrive(&unknown, T0 + Duration::seconds(5)) else {
            panic!("an ambiguous claim is sent again at once");
        };
        let later = T0 + Duration::minutes(1);
        let taken = take_over(&unknown, &old, later);
        let c = held(&taken);
        assert_eq!((c.run_id, c.counted_until), (RUN, T0), "the same email");
        assert_eq!((c.claimed_at, &c.state), (later, &ClaimState::Sending));
        assert_eq!(arrive(&taken, later), Arrival::Busy);
    }
}
