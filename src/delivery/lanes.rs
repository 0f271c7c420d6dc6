//! The first-attempt lanes: at most [`FAST_LANE`] first attempts per
//! destination in flight at once, one lane per destination so a hanging
//! destination holds up none of the others; and quiescing them.

use super::registry::Destinations;
use crate::domain::DestinationName;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// First attempts in flight at once per destination.
pub const FAST_LANE: usize = 4;

/// One lane per destination, so a hanging destination holds up none of
/// the others.
#[derive(Debug)]
pub struct Lanes(BTreeMap<DestinationName, Arc<Semaphore>>);

impl Lanes {
    pub fn new(destinations: &Destinations) -> Self {
        Self(
            destinations
                .iter()
                .map(|d| (d.name().clone(), Arc::new(Semaphore::new(FAST_LANE))))
                .collect(),
        )
    }
}

/// Holds new leads' first attempts off; see [`Deliverer::quiesce`].
#[derive(Debug)]
pub struct Quiesced(#[allow(dead_code)] Vec<OwnedSemaphorePermit>);

impl Lanes {
    /// A lane of `destination` if one is free now; `None` when none is
    /// (`Some(None)`), or no such destination (`None`).
    pub fn try_acquire(
        &self,
        destination: &DestinationName,
    ) -> Option<Option<OwnedSemaphorePermit>> {
        Some(self.0.get(destination)?.clone().try_acquire_owned().ok())
    }

    /// Waits for the first attempts in flight to end and keeps new ones
    /// off (their leads are left to the sweep) while the guard lives: for
    /// a caller about to move the clock past their claims.
    pub async fn quiesce(&self) -> Quiesced {
        let mut held = Vec::new();
        for lane in self.0.values() {
            if let Ok(permits) = lane.clone().acquire_many_owned(FAST_LANE as u32).await {
                held.push(permits);
            }
        }
        Quiesced(held)
    }
}
