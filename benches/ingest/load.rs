//! The load generator: distinct leads sent `connections` at a time, each
//! operation's latency, the wall time, and the CPU the processes involved
//! spent meanwhile.

use crate::procfs::{cpu_ms, load_average};
use futures::StreamExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

/// A distinct lead of realistic size (about 380 bytes).
pub fn lead_body(run: &str, i: usize) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"Bench{i}","LastName":"Tester","Email":"bench{i}.{run}@contoso.example",
"Phone":"+1 425 555 {:04}","Country":"United States","Company":"Contoso Bench {i}","Title":"Buyer"}},
"LeadSource":"SPZA-PLT|contoso.bench","ActionCode":"PLT","OfferTitle":"Contoso Bench",
"Description":"Lead {i} of run {run}: please contact me about pricing for 500 seats."}}"#,
        i % 10_000
    )
}

/// Posts leads to a `POST /api/LeadIngest` (the handler's or the peer's)
/// on a pooled client.
#[derive(Clone)]
pub struct Poster {
    client: reqwest::Client,
    url: String,
}

impl Poster {
    pub fn new(client: &reqwest::Client, port: u16) -> Self {
        Self {
            client: client.clone(),
            url: format!("http://127.0.0.1:{port}/api/LeadIngest"),
        }
    }

    /// One lead; `Ok` on 201 Created.
    pub fn post(&self, body: String) -> impl Future<Output = Result<(), String>> + 'static {
        let answer = self.post_for_id(body);
        async move { answer.await.map(|_| ()) }
    }

    /// One lead; on 201 Created, the lead id it was given.
    pub fn post_for_id(
        &self,
        body: String,
    ) -> impl Future<Output = Result<String, String>> + 'static {
        let request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        async move {
            match request.send().await {
                Ok(r) if r.status() == reqwest::StatusCode::CREATED => {
                    let answer: serde_json::Value =
                        r.json().await.map_err(|e| format!("201 unreadable: {e}"))?;
                    Ok(answer["id"].as_str().unwrap_or_default().to_owned())
                }
                Ok(r) => Err(format!(
                    "{} {}",
                    r.status().as_u16(),
                    r.text().await.unwrap_or_default()
                )),
                Err(e) => Err(format!("no answer: {e}")),
            }
        }
    }
}

/// CPU (ms) spent during a run.
#[derive(Clone, Copy, Default)]
pub struct Cpu {
    /// The process under test (the handler, the peer); 0 when none.
    pub measured: f64,
    pub azurite: f64,
    /// This process: the load generator, or the direct client.
    pub this: f64,
}

/// One measured run of one path.
pub struct Sample {
    pub latencies: Vec<Duration>,
    pub failures: Vec<String>,
    pub wall: Duration,
    pub cpu: Cpu,
    pub load_average: String,
}

/// CPU of the measured process, Azurite and this process, now.
pub fn cpu_now(measured_pid: Option<&str>, azurite_pid: &str) -> Cpu {
    Cpu {
        measured: measured_pid.map(cpu_ms).unwrap_or(0.0),
        azurite: cpu_ms(azurite_pid),
        this: cpu_ms("self"),
    }
}

impl std::ops::Sub for Cpu {
    type Output = Cpu;
    fn sub(self, before: Cpu) -> Cpu {
        Cpu {
            measured: self.measured - before.measured,
            azurite: self.azurite - before.azurite,
            this: self.this - before.this,
        }
    }
}

/// Sends `requests` operations, `connections` at a time; each returns why
/// it failed, if it did.
pub async fn drive<F, Fut>(
    requests: usize,
    connections: usize,
    measured_pid: Option<&str>,
    azurite_pid: &str,
    send: F,
) -> Sample
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let load_average = load_average();
    let before = cpu_now(measured_pid, azurite_pid);
    let started = Instant::now();
    let results: Vec<(Duration, Result<(), String>)> = futures::stream::iter(0..requests)
        .map(|i| {
            let operation = send(i);
            async move {
                let at = Instant::now();
                let outcome = operation.await;
                (at.elapsed(), outcome)
            }
        })
        .buffer_unordered(connections)
        .collect()
        .await;
    let wall = started.elapsed();
    let cpu = cpu_now(measured_pid, azurite_pid) - before;
    let mut latencies = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for (latency, outcome) in results {
        latencies.push(latency);
        if let Err(why) = outcome {
            failures.push(why);
        }
    }
    Sample {
        latencies,
        failures,
        wall,
        cpu,
        load_average,
    }
}

/// Before a measured run: one operation per connection, unmeasured, so
/// that every path starts with its connections to Azurite open. (Azurite
/// closes a connection idle for 5 s; a burst that must reopen them all has
/// a tail of seconds on Azurite, for the handler and the Node.js peer
/// alike, which would fall on whichever path waited longest.)
pub async fn prime<F, Fut>(connections: usize, azurite_pid: &str, send: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let sample = drive(connections, connections, None, azurite_pid, send).await;
    if !sample.failures.is_empty() {
        crate::progress!("priming: {:?}", sample.failures);
    }
}

/// Runs of one path, summed up.
#[derive(Serialize, Clone)]
pub struct RunStats {
    pub requests: usize,
    pub ok: usize,
    /// Why the others failed (status or error), with counts.
    pub failures: BTreeMap<String, usize>,
    pub wall_s: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// CPU of the process under test (handler, peer) or, for the direct
    /// path, of the client (this process).
    pub cpu_ms_per_1000: f64,
    /// CPU of Azurite for these runs.
    pub azurite_cpu_ms_per_1000: f64,
    /// CPU of this process (the load generator, or the direct client).
    pub client_cpu_ms_per_1000: f64,
    /// 1-minute load average at the start of each run.
    pub load_average: String,
}

/// Throughput over the runs' summed wall time, quantiles over all their
/// latencies, CPU per 1,000 operations. `measured_is_client`: the path
/// under test is this process (the direct client).
pub fn stats(samples: &[Sample], measured_is_client: bool) -> RunStats {
    let requests: usize = samples.iter().map(|s| s.latencies.len()).sum();
    let wall: f64 = samples.iter().map(|s| s.wall.as_secs_f64()).sum();
    let mut latencies: Vec<Duration> = samples
        .iter()
        .flat_map(|s| s.latencies.iter().copied())
        .collect();
    latencies.sort();
    let mut failures = BTreeMap::new();
    for why in samples.iter().flat_map(|s| &s.failures) {
        *failures.entry(why.clone()).or_insert(0) += 1;
    }
    let per_1000 = |pick: fn(&Cpu) -> f64| {
        samples.iter().map(|s| pick(&s.cpu)).sum::<f64>() / requests.max(1) as f64 * 1000.0
    };
    let client = per_1000(|c| c.this);
    RunStats {
        requests,
        ok: requests - failures.values().sum::<usize>(),
        failures,
        wall_s: wall,
        per_second: requests as f64 / wall,
        p50_ms: quantile(&latencies, 0.50),
        p99_ms: quantile(&latencies, 0.99),
        max_ms: quantile(&latencies, 1.0),
        cpu_ms_per_1000: if measured_is_client {
            client
        } else {
            per_1000(|c| c.measured)
        },
        azurite_cpu_ms_per_1000: per_1000(|c| c.azurite),
        client_cpu_ms_per_1000: client,
        load_average: samples
            .iter()
            .map(|s| s.load_average.split(' ').next().unwrap_or("?"))
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The `q` quantile of sorted durations, in ms (nearest rank).
pub fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Handler ÷ baseline, for the figures that matter.
#[derive(Serialize, Clone, Copy)]
pub struct Ratios {
    /// Throughput (above 1: the handler is faster).
    pub throughput: f64,
    /// Latency (below 1: the handler answers sooner).
    pub p50: f64,
    pub p99: f64,
    /// CPU per lead of the handler process ÷ the baseline's (below 1: the
    /// handler spends less).
    pub cpu: f64,
}

impl Ratios {
    pub fn of(handler: &RunStats, baseline: &RunStats) -> Self {
        Self {
            throughput: handler.per_second / baseline.per_second,
            p50: handler.p50_ms / baseline.p50_ms,
            p99: handler.p99_ms / baseline.p99_ms,
            cpu: handler.cpu_ms_per_1000 / baseline.cpu_ms_per_1000,
        }
    }
}
