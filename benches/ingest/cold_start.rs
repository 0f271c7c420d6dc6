//! Phase: cold start — exec → first `GET /` answered 200 — of the handler
//! and of the Node.js peer, many times each; the first spawn of each only
//! warms the page cache.

use crate::child::ChildServer;
use crate::handler::{self, Backends};
use crate::peer;
use crate::procfs::load_average;
use crate::progress;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

const HANDLER_STARTS: usize = 41;
const PEER_STARTS: usize = 11;

#[derive(Serialize)]
pub struct Starts {
    pub runs: usize,
    pub first_ms: f64,
    pub median_ms: f64,
    pub p90_ms: f64,
    pub min_ms: f64,
    pub max_ms: f64,
}

#[derive(Serialize)]
pub struct ColdStart {
    pub handler: Starts,
    pub peer: Starts,
    /// Handler ÷ peer, medians.
    pub median_ratio: f64,
    pub load_average: String,
}

fn measure(times: usize, spawn: impl Fn() -> ChildServer) -> Starts {
    let mut ms = Vec::new();
    for _ in 0..times {
        let exec = Instant::now();
        let mut server = spawn();
        let ready = server
            .wait_ready(Duration::from_secs(15))
            .expect("the server answers GET /");
        ms.push((ready - exec).as_secs_f64() * 1000.0);
    }
    let first_ms = ms[0];
    let mut rest = ms[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    let at = |q: f64| rest[((q * rest.len() as f64).ceil() as usize).clamp(1, rest.len()) - 1];
    Starts {
        runs: rest.len(),
        first_ms,
        median_ms: at(0.5),
        p90_ms: at(0.9),
        min_ms: rest[0],
        max_ms: rest[rest.len() - 1],
    }
}

pub fn run(binary: &Path, backends: &Backends, tag: &str) -> ColdStart {
    let load = load_average();
    let table = format!("BenchCold{tag}");
    let handler = measure(HANDLER_STARTS, || {
        handler::spawn(binary, backends, &table, &[])
    });
    let peer_table = format!("BenchColdPeer{tag}");
    let peer = measure(PEER_STARTS, || peer::spawn(&backends.storage, &peer_table));
    progress!(
        "cold start: handler median {:.1} ms (p90 {:.1}) | peer median {:.1} ms (p90 {:.1})",
        handler.median_ms,
        handler.p90_ms,
        peer.median_ms,
        peer.p90_ms
    );
    ColdStart {
        median_ratio: handler.median_ms / peer.median_ms,
        handler,
        peer,
        load_average: load,
    }
}
