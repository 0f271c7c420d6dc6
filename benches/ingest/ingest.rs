//! Phase: ingest at 1, 16 and 64 connections through three paths, on fresh
//! tables each level:
//!
//! - *handler*: `POST /api/LeadIngest` to the release binary;
//! - *direct*: the same storage work sent straight to Azurite by a plain
//!   `azure_data_tables` client ([`crate::direct`]);
//! - *peer*: `POST /api/LeadIngest` to the Node.js peer ([`crate::peer`]).
//!
//! Also the memory of the handler and the peer: idle, and at their peak
//! under 64 connections.

use crate::direct::{self, EntityTemplate};
use crate::handler::{self, Backends};
use crate::load::{drive, lead_body, prime, stats, Poster, Ratios, RunStats, Sample};
use crate::peer;
use crate::procfs::{status_kib, RssSampler};
use crate::progress;
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

/// Leads per measured run (each distinct).
pub const REQUESTS: usize = 600;
pub const WARM_UP: usize = 200;
const CONCURRENCY: [usize; 3] = [1, 16, 64];
/// The order of the measured runs: drift in the machine's load falls on
/// every path alike.
const ROUNDS: [Path3; 6] = [
    Path3::Handler,
    Path3::Direct,
    Path3::Peer,
    Path3::Peer,
    Path3::Direct,
    Path3::Handler,
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path3 {
    Handler,
    Direct,
    Peer,
}

#[derive(Serialize)]
pub struct Level {
    pub connections: usize,
    pub handler: RunStats,
    pub direct: RunStats,
    pub peer: RunStats,
    /// Handler ÷ direct.
    pub vs_direct: Ratios,
    /// Handler ÷ peer.
    pub vs_peer: Ratios,
}

#[derive(Serialize, Default)]
pub struct Memory {
    pub handler_idle_rss_kib: u64,
    pub handler_peak_rss_64_kib: u64,
    pub handler_hwm_kib: u64,
    pub handler_after_load_rss_kib: u64,
    pub peer_idle_rss_kib: u64,
    pub peer_peak_rss_64_kib: u64,
    pub peer_hwm_kib: u64,
}

#[derive(Serialize)]
pub struct Ingest {
    pub requests_per_run: usize,
    pub lead_body_bytes: usize,
    pub levels: Vec<Level>,
    pub memory: Memory,
}

/// The template of the direct path's entities: a lead the handler stored.
pub async fn template(
    binary: &Path,
    backends: &Backends,
    azurite_port: u16,
    client: &reqwest::Client,
    tag: &str,
) -> Arc<EntityTemplate> {
    let table = format!("BenchTemplate{tag}");
    let mut handler = handler::spawn(binary, backends, &table, &[]);
    handler.ready_or_panic("the handler");
    let stored = Poster::new(client, handler.port)
        .post(lead_body(tag, 0))
        .await;
    assert_eq!(stored, Ok(()), "the template lead is stored");
    let service = direct::table_service(azurite_port);
    let (rows, _) = direct::query_all(&service.table_client(&table), None, None).await;
    Arc::new(EntityTemplate::from_stored(&rows))
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    binary: &Path,
    backends: &Backends,
    azurite_port: u16,
    azurite_pid: &str,
    client: &reqwest::Client,
    template: Arc<EntityTemplate>,
    tags: Arc<AtomicU64>,
    tag: &str,
) -> Ingest {
    let service = direct::table_service(azurite_port);
    let mut memory = Memory::default();
    let mut levels = Vec::new();
    for connections in CONCURRENCY {
        // Fresh tables and processes per level: Azurite's cost per insert
        // grows with the table, so levels sharing one would measure growth.
        let mut handler = handler::spawn(
            binary,
            backends,
            &format!("BenchLeads{tag}c{connections}"),
            &[],
        );
        let mut peer = peer::spawn(&backends.storage, &format!("BenchPeer{tag}c{connections}"));
        handler.ready_or_panic("the handler");
        peer.ready_or_panic("the Node.js peer");
        if memory.handler_idle_rss_kib == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            memory.handler_idle_rss_kib = status_kib(&handler.pid(), "VmRSS:");
            memory.peer_idle_rss_kib = status_kib(&peer.pid(), "VmRSS:");
            progress!(
                "idle RSS: handler {} KiB, peer {} KiB",
                memory.handler_idle_rss_kib,
                memory.peer_idle_rss_kib
            );
        }
        let to_handler = Poster::new(client, handler.port);
        let to_peer = Poster::new(client, peer.port);
        let table = service.table_client(format!("BenchDirect{tag}c{connections}"));
        table.create().await.expect("create the direct table");
        let direct_insert = |i: usize, prefix: &str| {
            let (table, template) = (table.clone(), template.clone());
            let tag = tags.fetch_add(1, Ordering::Relaxed);
            let lead = template.build(OffsetDateTime::now_utc(), tag, &lead_body(prefix, i));
            async move { direct::insert_lead(&table, lead).await }
        };
        let prefix = format!("{tag}c{connections}");

        // Warm every path up: connections, Azurite's JIT, the tables,
        // the peer's JIT.
        let warm = format!("{prefix}warm");
        for (name, sample) in [
            (
                "handler",
                drive(WARM_UP, connections, None, azurite_pid, |i| {
                    to_handler.post(lead_body(&warm, i))
                })
                .await,
            ),
            (
                "direct",
                drive(WARM_UP, connections, None, azurite_pid, |i| {
                    direct_insert(i, &warm)
                })
                .await,
            ),
            (
                "peer",
                drive(WARM_UP, connections, None, azurite_pid, |i| {
                    to_peer.post(lead_body(&warm, i))
                })
                .await,
            ),
        ] {
            assert!(
                sample.failures.is_empty(),
                "{name} warm-up: {:?}",
                sample.failures
            );
        }

        let samplers = (
            RssSampler::start(handler.pid()),
            RssSampler::start(peer.pid()),
        );
        let (handler_pid, peer_pid) = (handler.pid(), peer.pid());
        let mut runs: [Vec<Sample>; 3] = Default::default();
        for (round, path) in ROUNDS.iter().enumerate() {
            let prefix = format!("{prefix}r{round}");
            let primer = format!("{prefix}p");
            let sample = match path {
                Path3::Handler => {
                    prime(connections, azurite_pid, |i| {
                        to_handler.post(lead_body(&primer, i))
                    })
                    .await;
                    drive(
                        REQUESTS,
                        connections,
                        Some(&handler_pid),
                        azurite_pid,
                        |i| to_handler.post(lead_body(&prefix, i)),
                    )
                    .await
                }
                Path3::Direct => {
                    prime(connections, azurite_pid, |i| direct_insert(i, &primer)).await;
                    drive(REQUESTS, connections, None, azurite_pid, |i| {
                        direct_insert(i, &prefix)
                    })
                    .await
                }
                Path3::Peer => {
                    prime(connections, azurite_pid, |i| {
                        to_peer.post(lead_body(&primer, i))
                    })
                    .await;
                    drive(REQUESTS, connections, Some(&peer_pid), azurite_pid, |i| {
                        to_peer.post(lead_body(&prefix, i))
                    })
                    .await
                }
            };
            runs[*path as usize].push(sample);
        }
        let peaks = (samplers.0.stop(), samplers.1.stop());
        if connections == 64 {
            memory.handler_peak_rss_64_kib = peaks.0;
            memory.handler_hwm_kib = status_kib(&handler_pid, "VmHWM:");
            memory.handler_after_load_rss_kib = status_kib(&handler_pid, "VmRSS:");
            memory.peer_peak_rss_64_kib = peaks.1;
            memory.peer_hwm_kib = status_kib(&peer_pid, "VmHWM:");
        }
        let [handler_runs, direct_runs, peer_runs] = runs;
        let (h, d, p) = (
            stats(&handler_runs, false),
            stats(&direct_runs, true),
            stats(&peer_runs, false),
        );
        for (name, s) in [("handler", &h), ("direct", &d), ("peer", &p)] {
            if !s.failures.is_empty() {
                progress!(
                    "{connections:>2} connections: {name} FAILED {:?}",
                    s.failures
                );
            }
        }
        progress!(
            "{connections:>2} connections: handler {:.0}/s p50 {:.2} p99 {:.2} ms cpu {:.0} | \
             direct {:.0}/s p99 {:.2} cpu {:.0} | peer {:.0}/s p50 {:.2} p99 {:.2} ms cpu {:.0}",
            h.per_second,
            h.p50_ms,
            h.p99_ms,
            h.cpu_ms_per_1000,
            d.per_second,
            d.p99_ms,
            d.cpu_ms_per_1000,
            p.per_second,
            p.p50_ms,
            p.p99_ms,
            p.cpu_ms_per_1000
        );
        levels.push(Level {
            connections,
            vs_direct: Ratios::of(&h, &d),
            vs_peer: Ratios::of(&h, &p),
            handler: h,
            direct: d,
            peer: p,
        });
    }
    progress!(
        "memory: handler idle {} KiB, peak {} KiB | peer idle {} KiB, peak {} KiB",
        memory.handler_idle_rss_kib,
        memory.handler_peak_rss_64_kib,
        memory.peer_idle_rss_kib,
        memory.peer_peak_rss_64_kib
    );
    Ingest {
        requests_per_run: REQUESTS,
        lead_body_bytes: lead_body(tag, 1234).len(),
        levels,
        memory,
    }
}
