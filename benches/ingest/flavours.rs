//! Phase: the handler's CPU per lead with each tokio runtime flavour
//! (`HANDLER_RUNTIME`, read by src/main.rs) and each other build of the
//! handler given in `BENCH_HANDLER_VARIANTS` (allocators), at 1 and 16
//! connections, against tokio's multi-thread runtime with one worker per
//! core ([`BASELINE`], the runtime before the flavour was selectable).
//! Every variant runs at once on its own table, three runs each in the
//! order A B C … C B A A B C …, so drift in the machine's load falls on all
//! alike.

use crate::handler::{self, Backends};
use crate::load::{drive, lead_body, prime, stats, Poster, RunStats};
use crate::progress;
use serde::Serialize;
use std::path::{Path, PathBuf};

const CONNECTIONS: [usize; 2] = [1, 16];
const REQUESTS: usize = 600;
const WARM_UP: usize = 100;
pub const BASELINE: &str = "multi_thread (one worker per core)";

/// A handler to compare: a build and a runtime flavour.
struct Variant {
    name: String,
    binary: PathBuf,
    /// `HANDLER_RUNTIME`; `None` for the default.
    runtime: Option<&'static str>,
}

#[derive(Serialize)]
pub struct VariantStats {
    pub name: String,
    pub connections: usize,
    pub stats: RunStats,
    /// CPU per lead ÷ the baseline's ([`BASELINE`]) at the same connections.
    pub cpu_ratio: f64,
    /// CPU per lead ÷ that of the default (`HANDLER_RUNTIME` unset).
    pub cpu_vs_default: f64,
    pub throughput_ratio: f64,
    pub p99_ratio: f64,
    pub idle_rss_kib: u64,
}

#[derive(Serialize)]
pub struct Flavours {
    pub requests_per_run: usize,
    pub default_workers: usize,
    pub variants: Vec<VariantStats>,
}

pub async fn run(
    binary: &Path,
    backends: &Backends,
    azurite_pid: &str,
    client: &reqwest::Client,
    tag: &str,
) -> Flavours {
    let variant = |name: &str, runtime: Option<&'static str>| Variant {
        name: name.to_owned(),
        binary: binary.to_owned(),
        runtime,
    };
    // The baseline first: tokio's multi-thread runtime, one worker per
    // core, what `#[tokio::main]` gave before the flavour was selectable.
    let mut variants = vec![
        variant(BASELINE, Some("multi_thread")),
        variant("default (HANDLER_RUNTIME unset)", None),
        variant("multi_thread:1", Some("multi_thread:1")),
        variant("multi_thread:2", Some("multi_thread:2")),
        variant("current_thread", Some("current_thread")),
    ];
    for (name, path) in handler::variants() {
        variants.push(Variant {
            name: format!("{name} (HANDLER_RUNTIME unset)"),
            binary: path,
            runtime: None,
        });
    }
    let mut results = Vec::new();
    for connections in CONNECTIONS {
        let mut servers = Vec::new();
        for (i, variant) in variants.iter().enumerate() {
            let extra: Vec<(&str, String)> = variant
                .runtime
                .map(|r| ("HANDLER_RUNTIME", r.to_owned()))
                .into_iter()
                .collect();
            let mut server = handler::spawn(
                &variant.binary,
                backends,
                &format!("BenchFlavour{tag}c{connections}v{i}"),
                &extra,
            );
            server.ready_or_panic(&variant.name);
            servers.push(server);
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let idle: Vec<u64> = servers
            .iter()
            .map(|s| crate::procfs::status_kib(&s.pid(), "VmRSS:"))
            .collect();
        let posters: Vec<Poster> = servers
            .iter()
            .map(|s| Poster::new(client, s.port))
            .collect();
        for (i, poster) in posters.iter().enumerate() {
            let prefix = format!("{tag}f{connections}v{i}warm");
            let warm = drive(WARM_UP, connections, None, azurite_pid, |n| {
                poster.post(lead_body(&prefix, n))
            })
            .await;
            assert!(warm.failures.is_empty(), "warm-up: {:?}", warm.failures);
        }
        let n = variants.len();
        let order: Vec<usize> = (0..n).chain((0..n).rev()).chain(0..n).collect();
        let mut samples: Vec<Vec<crate::load::Sample>> =
            (0..variants.len()).map(|_| Vec::new()).collect();
        for (round, &i) in order.iter().enumerate() {
            let prefix = format!("{tag}f{connections}r{round}");
            let pid = servers[i].pid();
            let poster = &posters[i];
            let primer = format!("{prefix}p");
            prime(connections, azurite_pid, |n| {
                poster.post(lead_body(&primer, n))
            })
            .await;
            samples[i].push(
                drive(REQUESTS, connections, Some(&pid), azurite_pid, |n| {
                    poster.post(lead_body(&prefix, n))
                })
                .await,
            );
        }
        let all: Vec<RunStats> = samples.iter().map(|s| stats(s, false)).collect();
        let base = all[0].clone();
        // The binary as shipped: its own default runtime.
        let shipped = all[1].clone();
        for ((variant, stats), idle_rss_kib) in variants.iter().zip(all).zip(idle) {
            progress!(
                "runtime {:<28} {connections:>2} connections: cpu {:.0} ms/1000 (×{:.2}), \
                 {:.0}/s, p99 {:.2} ms",
                variant.name,
                stats.cpu_ms_per_1000,
                stats.cpu_ms_per_1000 / base.cpu_ms_per_1000,
                stats.per_second,
                stats.p99_ms
            );
            results.push(VariantStats {
                name: variant.name.clone(),
                connections,
                cpu_ratio: stats.cpu_ms_per_1000 / base.cpu_ms_per_1000,
                cpu_vs_default: stats.cpu_ms_per_1000 / shipped.cpu_ms_per_1000,
                throughput_ratio: stats.per_second / base.per_second,
                p99_ratio: stats.p99_ms / base.p99_ms,
                stats,
                idle_rss_kib,
            });
        }
    }
    Flavours {
        requests_per_run: REQUESTS,
        default_workers: std::thread::available_parallelism().map_or(0, |n| n.get()),
        variants: results,
    }
}
