//! Phase: the handler's CPU per lead with each tokio runtime flavour
//! (`HANDLER_RUNTIME`, read by src/main.rs) and each other build of the
//! handler given in `BENCH_HANDLER_VARIANTS` (allocators), at 1 and 16
//! connections, against tokio's multi-thread runtime with one worker per
//! core ([`BASELINE`], the runtime before the flavour was selectable).
//! Every variant runs at once on its own table, three runs each in the
//! order A B C … C B A A B C …, so drift in the machine's load falls on all
//! alike.
//!
//! The same runs measure the rating: the default handler against itself
//! with `LEAD_RATING=false` ([`RATING_OFF`]), so what rating each lead
//! costs is a ratio of two processes measured side by side.

use crate::handler::{self, Backends};
use crate::load::{drive, lead_body, prime, stats, Poster, RunStats};
use crate::progress;
use serde::Serialize;
use std::path::{Path, PathBuf};

const CONNECTIONS: [usize; 2] = [1, 16];
const REQUESTS: usize = 600;
const WARM_UP: usize = 100;
pub const BASELINE: &str = "multi_thread (one worker per core)";
pub const DEFAULT: &str = "default (HANDLER_RUNTIME unset)";
pub const RATING_OFF: &str = "default, rating off (LEAD_RATING=false)";

/// A handler to compare: a build and a runtime flavour.
struct Variant {
    name: String,
    binary: PathBuf,
    /// `HANDLER_RUNTIME`, `LEAD_RATING`, … (none: the defaults).
    env: Vec<(&'static str, &'static str)>,
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
    /// Rating one lead in this process (`domain::rating::rate`), µs: the
    /// rating's own cost, beside the whole handler's per lead.
    pub rate_us_per_lead: f64,
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
    let variant = |name: &str, env: &[(&'static str, &'static str)]| Variant {
        name: name.to_owned(),
        binary: binary.to_owned(),
        env: env.to_vec(),
    };
    let runtime = |flavour| [("HANDLER_RUNTIME", flavour)];
    // The baseline first: tokio's multi-thread runtime, one worker per
    // core, what `#[tokio::main]` gave before the flavour was selectable.
    let mut variants = vec![
        variant(BASELINE, &runtime("multi_thread")),
        variant(DEFAULT, &[]),
        variant(RATING_OFF, &[("LEAD_RATING", "false")]),
        variant("multi_thread:1", &runtime("multi_thread:1")),
        variant("multi_thread:2", &runtime("multi_thread:2")),
        variant("current_thread", &runtime("current_thread")),
    ];
    for (name, path) in handler::variants() {
        variants.push(Variant {
            name: format!("{name} (HANDLER_RUNTIME unset)"),
            binary: path,
            env: Vec::new(),
        });
    }
    let mut results = Vec::new();
    for connections in CONNECTIONS {
        let mut servers = Vec::new();
        for (i, variant) in variants.iter().enumerate() {
            let extra: Vec<(&str, String)> = variant
                .env
                .iter()
                .map(|(name, value)| (*name, (*value).to_owned()))
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
        rate_us_per_lead: rate_cost(),
        requests_per_run: REQUESTS,
        default_workers: std::thread::available_parallelism().map_or(0, |n| n.get()),
        variants: results,
    }
}

/// Microseconds to rate one lead, over 20,000 of the bench's leads (parsed
/// first) with a mix of company, free-mail and disposable addresses.
fn rate_cost() -> f64 {
    use marketplace_leads::domain::{rating, Lead};
    const LEADS: usize = 20_000;
    let leads: Vec<Lead> = (0..LEADS)
        .map(|i| {
            let body = lead_body("rate", i);
            let body = match i % 3 {
                0 => body,
                1 => body.replace("@contoso.example", "@gmail.com"),
                _ => body.replace("@contoso.example", "@mailinator.com"),
            };
            Lead::parse(body.as_bytes()).expect("a bench lead parses")
        })
        .collect();
    let started = std::time::Instant::now();
    let hot = leads
        .iter()
        .map(rating::rate)
        .filter(|r| r.level == marketplace_leads::domain::Level::Hot)
        .count();
    let elapsed = started.elapsed();
    assert!(hot > 0, "some bench leads are hot");
    elapsed.as_secs_f64() * 1e6 / LEADS as f64
}
