//! Phase: delivery. The handler with three destinations — a signed webhook
//! and a Teams card to local receivers ([`crate::receivers`]), and an email
//! per lead (`NOTIFY_TO`) through MailDev — against the same handler with
//! none:
//!
//! - stored → delivered latency: from the 201 answer (as the client sees
//!   it) to the lead's arrival at the receiver, for leads posted one at a
//!   time and for leads posted over 16 connections. The sweep is set to
//!   run once a year (`DELIVERY_SCHEDULE`; under the host it never runs by
//!   itself anyway), so this is the immediate path, `Deliverer::deliver_new`.
//! - ingest throughput at 16 connections, three destinations ÷ none, in
//!   the order none, three, three, none, three times, each run by a fresh
//!   handler on a fresh table; each run with destinations waits for its deliveries to
//!   finish before the next run starts.

use crate::handler::{self, Backends};
use crate::load::{drive, lead_body, prime, stats, Poster, RunStats, Sample};
use crate::procfs::cpu_ms;
use crate::progress;
use crate::proxy::CountingProxy;
use crate::receivers::{webhook_secret, Arrivals, Receivers};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::MailDev;

const CONNECTIONS: usize = 16;
const REQUESTS: usize = 400;
/// Throughput runs: this many times none, three, three, none (single runs
/// on this machine vary by ×1.5 either way).
const ROUNDS: usize = 3;
const WARM_UP: usize = 100;
/// Leads posted one at a time for the latency at rest.
const ONE_AT_A_TIME: usize = 100;
/// After a run, arrivals are awaited until every lead arrived, or none
/// arrived for [`QUIET`] (what the immediate attempts left undone waits for
/// the sweep), or this passed.
const DRAIN_BOUND: Duration = Duration::from_secs(60);
const QUIET: Duration = Duration::from_secs(5);
/// Leads posted one at a time through the counting proxy, to count the
/// storage requests a lead costs.
const COUNTED: usize = 20;
/// Once a year: the sweep never interferes.
const RARE_SCHEDULE: &str = "0 0 0 1 1 *";

#[derive(Serialize, Default)]
pub struct Latency {
    /// Leads answered 201.
    pub leads: usize,
    /// Leads not answered 201 (503: storage did not confirm in time).
    pub failed: usize,
    pub connections: usize,
    pub webhook_arrived: usize,
    pub webhook_p50_ms: f64,
    pub webhook_p99_ms: f64,
    pub webhook_max_ms: f64,
    pub teams_arrived: usize,
    pub teams_p50_ms: f64,
    pub teams_p99_ms: f64,
    /// From the end of the posting to the last arrival.
    pub drain_ms: f64,
    /// Leads answered 201 whose webhook had not arrived when arrivals
    /// stopped: left to the sweep (`DELIVERY_SCHEDULE`).
    pub webhook_left_to_sweep: usize,
}

#[derive(Serialize)]
pub struct Delivery {
    pub destinations: Vec<String>,
    pub notify_max_per_hour: String,
    pub one_at_a_time: Latency,
    pub under_load: Latency,
    pub none: RunStats,
    pub three: RunStats,
    /// Three ÷ none.
    pub throughput_ratio: f64,
    pub p50_ratio: f64,
    pub p99_ratio: f64,
    /// CPU of the handler per 1,000 leads while posting.
    pub cpu_ratio: f64,
    /// The handler's CPU per 1,000 leads with destinations, the background
    /// deliveries included (from the first post to the last arrival).
    pub three_cpu_with_deliveries_ms_per_1000: f64,
    pub emails_received: usize,
    /// Storage requests per lead, counted by a proxy in front of Azurite
    /// over leads posted one at a time: without destinations, and with
    /// the three (the ingest transaction and the deliveries).
    pub storage_requests_per_lead_none: f64,
    pub storage_requests_per_lead_three: f64,
    /// With the three, by method.
    pub storage_requests_by_method_three: std::collections::BTreeMap<String, f64>,
    pub counted_leads: usize,
    pub webhook_repeats: usize,
    pub webhook_bad: usize,
    pub teams_repeats: usize,
}

/// Leads answered 201: their ids and when the answer came.
type Answered = Arc<Mutex<Vec<(String, Instant)>>>;

/// Posts `requests` leads, noting each id and answer time.
async fn post_noting(
    poster: &Poster,
    requests: usize,
    connections: usize,
    pid: Option<&str>,
    azurite_pid: &str,
    prefix: &str,
    answered: &Answered,
) -> Sample {
    drive(requests, connections, pid, azurite_pid, |i| {
        let posted = poster.post_for_id(lead_body(prefix, i));
        let answered = answered.clone();
        async move {
            let id = posted.await?;
            answered.lock().expect("answers").push((id, Instant::now()));
            Ok(())
        }
    })
    .await
}

/// Waits until every answered lead arrived at both receivers, or nothing
/// arrived for [`QUIET`], or [`DRAIN_BOUND`] passed; how long until the
/// last arrival.
async fn drain(receivers: &Receivers, answered: &Answered) -> Duration {
    let started = Instant::now();
    let ids: Vec<String> = answered
        .lock()
        .expect("answers")
        .iter()
        .map(|(id, _)| id.clone())
        .collect();
    let arrived = |arrivals: &Mutex<Arrivals>| {
        let arrivals = arrivals.lock().expect("arrivals");
        ids.iter()
            .filter(|id| arrivals.first.contains_key(*id))
            .count()
    };
    let (mut seen, mut last_change) = (0, Instant::now());
    loop {
        let now_in = arrived(&receivers.webhook) + arrived(&receivers.teams);
        if now_in != seen {
            (seen, last_change) = (now_in, Instant::now());
        }
        if now_in == 2 * ids.len()
            || last_change.elapsed() >= QUIET
            || started.elapsed() >= DRAIN_BOUND
        {
            return last_change.saturating_duration_since(started);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Answer → arrival, ms, for the answered leads that arrived: sorted.
fn delays(answered: &Answered, arrivals: &Mutex<Arrivals>) -> Vec<f64> {
    let arrivals = arrivals.lock().expect("arrivals");
    let mut ms: Vec<f64> = answered
        .lock()
        .expect("answers")
        .iter()
        .filter_map(|(id, at)| {
            let arrived = arrivals.first.get(id)?;
            // An arrival can precede the client's reading of the answer.
            Some(match arrived.checked_duration_since(*at) {
                Some(d) => d.as_secs_f64() * 1000.0,
                None => -(at.duration_since(*arrived).as_secs_f64() * 1000.0),
            })
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms
}

fn rank(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn latency(
    answered: &Answered,
    receivers: &Receivers,
    connections: usize,
    drained: Duration,
) -> Latency {
    let webhook = delays(answered, &receivers.webhook);
    let teams = delays(answered, &receivers.teams);
    let leads = answered.lock().expect("answers").len();
    Latency {
        leads,
        failed: 0,
        connections,
        webhook_arrived: webhook.len(),
        webhook_p50_ms: rank(&webhook, 0.5),
        webhook_p99_ms: rank(&webhook, 0.99),
        webhook_max_ms: rank(&webhook, 1.0),
        teams_arrived: teams.len(),
        teams_p50_ms: rank(&teams, 0.5),
        teams_p99_ms: rank(&teams, 0.99),
        drain_ms: drained.as_secs_f64() * 1000.0,
        webhook_left_to_sweep: leads - webhook.len(),
    }
}

/// What the leads cost in storage requests, posted one at a time to a
/// handler whose storage goes through a counting proxy: requests per lead
/// (the ingest transaction and, with destinations, every delivery's
/// reads and writes), in all and by method.
#[allow(clippy::too_many_arguments)]
async fn storage_requests(
    binary: &Path,
    backends: &Backends,
    azurite_port: u16,
    azurite_pid: &str,
    client: &reqwest::Client,
    receivers: &Receivers,
    destinations: &[(&str, String)],
    label: &str,
) -> (f64, BTreeMap<String, f64>) {
    let proxy = CountingProxy::start(azurite_port).await;
    let counted = Backends {
        storage: proxy.connection_string(),
        smtp_url: backends.smtp_url.clone(),
    };
    let mut server = handler::spawn(
        binary,
        &counted,
        &format!("BenchCount{label}"),
        destinations,
    );
    server.ready_or_panic("the counted handler");
    let poster = Poster::new(client, server.port);
    // Until every request a run of leads caused has gone through.
    let settle = || async {
        let mut last = (proxy.count(), Instant::now());
        while last.1.elapsed() < Duration::from_millis(1_000) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if proxy.count() != last.0 {
                last = (proxy.count(), Instant::now());
            }
        }
    };
    let run = |prefix: String, leads: usize| {
        let answered: Answered = Arc::default();
        let poster = &poster;
        async move {
            let sample = post_noting(poster, leads, 1, None, azurite_pid, &prefix, &answered).await;
            if !sample.failures.is_empty() {
                progress!("counting run {prefix}: {:?}", sample.failures);
            }
            if !destinations.is_empty() {
                drain(receivers, &answered).await;
            }
        }
    };
    // The first lead creates the tables and the rate row: not counted.
    run(format!("{label}first"), 1).await;
    settle().await;
    proxy.take();
    run(format!("{label}counted"), COUNTED).await;
    settle().await;
    let exchanges = proxy.take();
    let mut by_method: BTreeMap<String, f64> = BTreeMap::new();
    for e in &exchanges {
        *by_method.entry(e.method.clone()).or_default() += 1.0 / COUNTED as f64;
    }
    (exchanges.len() as f64 / COUNTED as f64, by_method)
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    binary: &Path,
    backends: &Backends,
    maildev: &MailDev,
    azurite_port: u16,
    azurite_pid: &str,
    client: &reqwest::Client,
    tag: &str,
) -> Delivery {
    let secret = webhook_secret();
    let receivers = Receivers::start(&secret).await;
    let notify_to = format!("bench-notify-{tag}@example.com");
    let destinations = [
        ("WEBHOOK_URL", receivers.webhook_url()),
        ("WEBHOOK_SECRET", secret.clone()),
        ("TEAMS_WEBHOOK_URL", receivers.teams_url()),
        ("NOTIFY_TO", notify_to.clone()),
        ("DELIVERY_SCHEDULE", RARE_SCHEDULE.to_owned()),
    ];
    let mut three = handler::spawn(
        binary,
        backends,
        &format!("BenchDeliver{tag}"),
        &destinations,
    );
    let mut none = handler::spawn(binary, backends, &format!("BenchNoDeliver{tag}"), &[]);
    three.ready_or_panic("the handler with destinations");
    none.ready_or_panic("the handler without destinations");
    let (to_three, to_none) = (
        Poster::new(client, three.port),
        Poster::new(client, none.port),
    );

    // Warm-up: connections, tables, and the destinations' connections.
    let answered: Answered = Arc::default();
    let warm = post_noting(
        &to_three,
        WARM_UP,
        CONNECTIONS,
        None,
        azurite_pid,
        &format!("{tag}dwarm"),
        &answered,
    )
    .await;
    if !warm.failures.is_empty() {
        progress!("delivery warm-up: {} failed", warm.failures.len());
    }
    drain(&receivers, &answered).await;
    let warm = drive(WARM_UP, CONNECTIONS, None, azurite_pid, |i| {
        to_none.post(lead_body(&format!("{tag}nwarm"), i))
    })
    .await;
    if !warm.failures.is_empty() {
        progress!("delivery warm-up: {} failed", warm.failures.len());
    }

    // One at a time.
    let answered: Answered = Arc::default();
    let sample = post_noting(
        &to_three,
        ONE_AT_A_TIME,
        1,
        None,
        azurite_pid,
        &format!("{tag}d1"),
        &answered,
    )
    .await;
    let one_at_a_time_failures = sample.failures.len();
    let drained = drain(&receivers, &answered).await;
    let mut one_at_a_time = latency(&answered, &receivers, 1, drained);
    one_at_a_time.failed = one_at_a_time_failures;
    progress!(
        "delivery, one at a time: webhook p50 {:.1} ms p99 {:.1} ms ({}/{}), teams p50 {:.1} \
         ms p99 {:.1} ms",
        one_at_a_time.webhook_p50_ms,
        one_at_a_time.webhook_p99_ms,
        one_at_a_time.webhook_arrived,
        one_at_a_time.leads,
        one_at_a_time.teams_p50_ms,
        one_at_a_time.teams_p99_ms
    );

    // Throughput: none, three, three, none (three times) — each run by a fresh handler
    // on a fresh table: Azurite's cost per insert grows with the entities
    // already in the table, and the tables above hold different numbers.
    drop((three, none));
    let mut none_runs = Vec::new();
    let mut three_runs = Vec::new();
    let loaded: Answered = Arc::default();
    let mut drains = Duration::ZERO;
    let mut three_cpu_all = 0.0;
    let order = [false, true, true, false].repeat(ROUNDS);
    for (round, with_destinations) in order.into_iter().enumerate() {
        let prefix = format!("{tag}d16r{round}");
        let primer = format!("{prefix}p");
        let (table, settings) = if with_destinations {
            (format!("BenchDeliver{tag}r{round}"), &destinations[..])
        } else {
            (format!("BenchNoDeliver{tag}r{round}"), &[][..])
        };
        let mut handler = handler::spawn(binary, backends, &table, settings);
        handler.ready_or_panic("a handler for a throughput run");
        let (poster, pid) = (Poster::new(client, handler.port), handler.pid());
        if with_destinations {
            let answered: Answered = Arc::default();
            post_noting(
                &poster,
                CONNECTIONS,
                CONNECTIONS,
                None,
                azurite_pid,
                &primer,
                &answered,
            )
            .await;
            drain(&receivers, &answered).await;
            let answered: Answered = Arc::default();
            let before = cpu_ms(&pid);
            let sample = post_noting(
                &poster,
                REQUESTS,
                CONNECTIONS,
                Some(&pid),
                azurite_pid,
                &prefix,
                &answered,
            )
            .await;
            drains = drains.max(drain(&receivers, &answered).await);
            three_cpu_all += cpu_ms(&pid) - before;
            loaded
                .lock()
                .expect("answers")
                .extend(answered.lock().expect("answers").drain(..));
            three_runs.push(sample);
        } else {
            prime(CONNECTIONS, azurite_pid, |i| {
                poster.post(lead_body(&primer, i))
            })
            .await;
            none_runs.push(
                drive(REQUESTS, CONNECTIONS, Some(&pid), azurite_pid, |i| {
                    poster.post(lead_body(&prefix, i))
                })
                .await,
            );
        }
        drop(handler);
    }
    let mut under_load = latency(&loaded, &receivers, CONNECTIONS, drains);
    let (none_stats, three_stats) = (stats(&none_runs, false), stats(&three_runs, false));
    under_load.failed = three_stats.requests - three_stats.ok;
    let emails_received = maildev.emails_to(&notify_to).await.len();
    let (none_requests, _) = storage_requests(
        binary,
        backends,
        azurite_port,
        azurite_pid,
        client,
        &receivers,
        &[],
        &format!("{tag}n"),
    )
    .await;
    let counted_destinations: Vec<(&str, String)> = destinations
        .iter()
        .map(|(name, value)| match *name {
            "NOTIFY_TO" => (*name, format!("bench-counted-{tag}@example.com")),
            _ => (*name, value.clone()),
        })
        .collect();
    let (three_requests, three_by_method) = storage_requests(
        binary,
        backends,
        azurite_port,
        azurite_pid,
        client,
        &receivers,
        &counted_destinations,
        &format!("{tag}t"),
    )
    .await;
    progress!(
        "storage requests per lead, one at a time: {none_requests:.2} without destinations, \
         {three_requests:.2} with three {three_by_method:?}"
    );
    let (webhook_repeats, webhook_bad) = {
        let w = receivers.webhook.lock().expect("arrivals");
        (w.repeats, w.bad)
    };
    let teams_repeats = receivers.teams.lock().expect("arrivals").repeats;
    let result = Delivery {
        destinations: vec![
            "webhook (Standard Webhooks, signed)".into(),
            "Teams card".into(),
            "email per lead (NOTIFY_TO, SMTP to MailDev)".into(),
        ],
        notify_max_per_hour: "10 (the default)".into(),
        throughput_ratio: three_stats.per_second / none_stats.per_second,
        p50_ratio: three_stats.p50_ms / none_stats.p50_ms,
        p99_ratio: three_stats.p99_ms / none_stats.p99_ms,
        cpu_ratio: three_stats.cpu_ms_per_1000 / none_stats.cpu_ms_per_1000,
        three_cpu_with_deliveries_ms_per_1000: three_cpu_all / three_stats.requests.max(1) as f64
            * 1000.0,
        one_at_a_time,
        under_load,
        none: none_stats,
        three: three_stats,
        emails_received,
        storage_requests_per_lead_none: none_requests,
        storage_requests_per_lead_three: three_requests,
        storage_requests_by_method_three: three_by_method,
        counted_leads: COUNTED,
        webhook_repeats,
        webhook_bad,
        teams_repeats,
    };
    progress!(
        "delivery at {CONNECTIONS} connections: webhook p50 {:.1} ms p99 {:.1} ms ({}/{}, drained \
         in {:.0} ms) | throughput three ÷ none ×{:.2} ({:.0} vs {:.0}/s), p99 ×{:.2}, cpu while \
         posting ×{:.2}, with deliveries {:.0} vs {:.0} ms/1000 | {} emails",
        result.under_load.webhook_p50_ms,
        result.under_load.webhook_p99_ms,
        result.under_load.webhook_arrived,
        result.under_load.leads,
        result.under_load.drain_ms,
        result.throughput_ratio,
        result.three.per_second,
        result.none.per_second,
        result.p99_ratio,
        result.cpu_ratio,
        result.three_cpu_with_deliveries_ms_per_1000,
        result.none.cpu_ms_per_1000,
        result.emails_received
    );
    result
}
