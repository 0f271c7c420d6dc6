//! Writes the results: `bench-results/latest.json` (every figure) and
//! `bench-results/latest.md` (the same, to read).

use crate::cold_start::ColdStart;
use crate::delivery::Delivery;
use crate::digest::DigestCost;
use crate::flavours::Flavours;
use crate::ingest::{Ingest, REQUESTS, WARM_UP};
use crate::machine::Machine;
use crate::progress;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Serialize)]
pub struct Results {
    pub date: String,
    pub machine: Machine,
    pub cold_start: ColdStart,
    pub ingest: Ingest,
    pub flavours: Flavours,
    pub delivery: Delivery,
    pub digest: DigestCost,
    pub duration_s: f64,
}

pub fn write(results: &Results) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench-results");
    std::fs::create_dir_all(&dir).expect("create bench-results/");
    let json = serde_json::to_string_pretty(results).expect("results as JSON");
    std::fs::write(dir.join("latest.json"), json + "\n").expect("write latest.json");
    std::fs::write(dir.join("latest.md"), markdown(results)).expect("write latest.md");
    progress!("results written to {}", dir.join("latest.md").display());
}

/// `1234567` → `1,234,567`.
fn thousands(n: usize) -> String {
    marketplace_leads::cli::leads::progress::thousands(n as u64)
}

/// `min–max` of a few values, with `decimals` decimals.
fn span(values: impl IntoIterator<Item = f64>, decimals: usize) -> String {
    let values: Vec<f64> = values.into_iter().collect();
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if format!("{min:.decimals$}") == format!("{max:.decimals$}") {
        format!("{min:.decimals$}")
    } else {
        format!("{min:.decimals$}–{max:.decimals$}")
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Lines of markdown.
#[derive(Default)]
struct Doc(String);

impl Doc {
    fn line(&mut self, text: impl AsRef<str>) {
        self.0.push_str(text.as_ref());
        self.0.push('\n');
    }
}

fn markdown(r: &Results) -> String {
    let mut d = Doc::default();
    d.line("# Benchmark results\n");
    d.line(format!(
        "Written by `cargo bench --bench ingest` on {} (the run took {:.0} s). Every number \
         and every ratio below comes from this one run; `latest.json` beside this file has \
         them all.\n",
        r.date, r.duration_s
    ));
    summary(&mut d, r);
    machine(&mut d, r);
    ingest(&mut d, r);
    flavours(&mut d, r);
    delivery(&mut d, r);
    cold_start_and_memory(&mut d, r);
    digest(&mut d, r);
    d.0
}

fn summary(d: &mut Doc, r: &Results) {
    let levels = &r.ingest.levels;
    let c = &r.cold_start;
    let m = &r.ingest.memory;
    let del = &r.delivery;
    let dg = &r.digest;
    let (small, large) = (&dg.sizes[0], &dg.sizes[dg.sizes.len() - 1]);
    d.line("## Summary\n");
    d.line(format!(
        "- **CPU per lead against the Node.js peer** (the same guarantee with \
         `@azure/data-tables`, same Azurite, same leads; 1/16/64 connections): the handler \
         spends **×{}** the peer's CPU per lead ({} ms vs {} ms per 1,000 leads), i.e. \
         **{}× less**; throughput ×{}, p50 latency ×{}, p99 latency ×{} (handler ÷ peer).",
        span(levels.iter().map(|l| l.vs_peer.cpu), 2),
        span(levels.iter().map(|l| l.handler.cpu_ms_per_1000), 0),
        span(levels.iter().map(|l| l.peer.cpu_ms_per_1000), 0),
        span(levels.iter().map(|l| 1.0 / l.vs_peer.cpu), 1),
        span(levels.iter().map(|l| l.vs_peer.throughput), 2),
        span(levels.iter().map(|l| l.vs_peer.p50), 2),
        span(levels.iter().map(|l| l.vs_peer.p99), 2),
    ));
    d.line(format!(
        "- **Against the bare storage client** (the same three entities in the same \
         entity-group transaction, sent by a plain `azure_data_tables` client): CPU per lead \
         ×{} (the whole handler process ÷ the client alone), throughput ×{}, p50 ×{}, p99 ×{}.",
        span(levels.iter().map(|l| l.vs_direct.cpu), 2),
        span(levels.iter().map(|l| l.vs_direct.throughput), 2),
        span(levels.iter().map(|l| l.vs_direct.p50), 2),
        span(levels.iter().map(|l| l.vs_direct.p99), 2),
    ));
    let flavour = |name: &str, connections: usize| {
        r.flavours
            .variants
            .iter()
            .find(|v| v.name == name && v.connections == connections)
    };
    let mut runtimes = Vec::new();
    for v in r.flavours.variants.iter().filter(|v| v.connections == 16) {
        if v.name == crate::flavours::BASELINE {
            continue;
        }
        let one = flavour(&v.name, 1).map_or(f64::NAN, |o| o.cpu_ratio);
        runtimes.push(format!("{} ×{:.2} / ×{:.2}", v.name, one, v.cpu_ratio));
    }
    d.line(format!(
        "- **Runtime flavours and allocators** (the handler's CPU per lead ÷ that of tokio's \
         multi-thread runtime with one worker per core, at 1 / 16 connections): {}.",
        runtimes.join("; ")
    ));
    // The rating's cost: the default handler ÷ itself with LEAD_RATING=false.
    let rating: Vec<String> = [1, 16]
        .iter()
        .filter_map(|&c| {
            let on = flavour(crate::flavours::DEFAULT, c)?;
            let off = flavour(crate::flavours::RATING_OFF, c)?;
            Some(format!(
                "**×{:.3}** at {c} ({:.0} vs {:.0} ms per 1,000 leads)",
                on.stats.cpu_ms_per_1000 / off.stats.cpu_ms_per_1000,
                on.stats.cpu_ms_per_1000,
                off.stats.cpu_ms_per_1000
            ))
        })
        .collect();
    let whole = flavour(crate::flavours::DEFAULT, 16).map_or(f64::NAN, |v| v.stats.cpu_ms_per_1000);
    d.line(format!(
        "- **Rating each lead** (CPU per lead with the rating ÷ without, `LEAD_RATING=false`, \
         the same binary side by side): {}. Rating alone, in process: {:.2} µs per lead, \
         {:.2} % of the handler's {:.0} µs per lead at 16 connections.",
        rating.join(", "),
        r.flavours.rate_us_per_lead,
        100.0 * r.flavours.rate_us_per_lead / whole,
        whole
    ));
    d.line(format!(
        "- **Delivery**: stored → delivered (201 answer → arrival at a local webhook) p50 \
         **{:.1} ms**, p99 **{:.1} ms** posting one lead at a time; p50 {:.1} ms, p99 {:.1} ms \
         at {} connections. Ingest with three destinations (webhook, Teams, email) ÷ none at \
         {} connections: throughput **×{:.2}**, p99 ×{:.2}; storage requests per lead {:.1} \
         against {:.1}.",
        del.one_at_a_time.webhook_p50_ms,
        del.one_at_a_time.webhook_p99_ms,
        del.under_load.webhook_p50_ms,
        del.under_load.webhook_p99_ms,
        del.under_load.connections,
        del.under_load.connections,
        del.throughput_ratio,
        del.p99_ratio,
        del.storage_requests_per_lead_three,
        del.storage_requests_per_lead_none,
    ));
    d.line(format!(
        "- **Digest as the table grows**: with {} and {} older leads already reported, a \
         run over {} new leads got {} and {} entities from storage (×{:.2}); the partitions \
         its queries touch hold {} and {} (×{:.2}). The documented flow's `Timestamp gt` \
         filter makes Azure read the whole table: {} and {} (×{:.1}). Run time on Azurite \
         (which scans its whole table for any query) {:.0} ms and {:.0} ms (×{:.2}).",
        thousands(small.older_leads),
        thousands(large.older_leads),
        small.leads_per_run,
        small.entities_returned_per_run,
        large.entities_returned_per_run,
        dg.entities_returned_ratio,
        thousands(small.entities_in_partitions_touched),
        thousands(large.entities_in_partitions_touched),
        dg.partition_entities_ratio,
        thousands(small.timestamp_filter.entities_read_on_azure),
        thousands(large.timestamp_filter.entities_read_on_azure),
        dg.timestamp_read_ratio,
        small.run_median_ms,
        large.run_median_ms,
        dg.run_time_ratio,
    ));
    d.line(format!(
        "- **Cold start** (exec → first `GET /` answered): handler median {:.1} ms, peer {:.1} \
         ms (×{:.3}). **Memory** (RSS): handler {:.1} MiB idle, {:.1} MiB at 64 connections; \
         peer {:.1} MiB and {:.1} MiB.\n",
        c.handler.median_ms,
        c.peer.median_ms,
        c.median_ratio,
        mib(m.handler_idle_rss_kib),
        mib(m.handler_peak_rss_64_kib.max(m.handler_hwm_kib)),
        mib(m.peer_idle_rss_kib),
        mib(m.peer_peak_rss_64_kib.max(m.peer_hwm_kib)),
    ));
}

fn machine(d: &mut Doc, r: &Results) {
    let m = &r.machine;
    d.line("## Machine\n");
    d.line("| | |\n|---|---|");
    d.line(format!("| cores (nproc) | {} |", m.nproc));
    d.line(format!("| CPU | {} |", m.cpu));
    d.line(format!("| kernel | {} |", m.kernel));
    d.line(format!(
        "| load average (1/5/15 min) | at start {}, at end {} |",
        m.load_average_at_start, m.load_average_at_end
    ));
    d.line(format!(
        "| Azurite / MailDev / Node / @azure/data-tables | {} (in memory) / {} / {} / {} |",
        m.azurite, m.maildev, m.node, m.data_tables_js
    ));
    d.line(format!("| commit | {} |", m.commit));
    d.line(
        "| handler | release profile (`opt-level = \"s\"`, LTO), a child process run as under \
         the Functions host (`FUNCTIONS_CUSTOMHANDLER_PORT`), logs to /dev/null |",
    );
    d.line(
        "| peer | `node benches/ingest/peer/server.js`, logs (one line per lead, as the \
         handler) to /dev/null |\n",
    );
    d.line(
        "The machine has 2 cores shared by the handler, the peer, Azurite, the load generator \
         and whatever else runs (other builds may): the load average is shown beside each \
         phase. The ratios compare runs made back to back and are steadier than the absolute \
         numbers, which are Azurite's more than the handler's.\n",
    );
}

fn ingest(d: &mut Doc, r: &Results) {
    let i = &r.ingest;
    d.line(
        "## Ingest: the handler, the same work sent straight to Azurite, and the Node.js peer\n",
    );
    d.line(format!(
        "{} distinct leads ({} B bodies) per run. Each connection count gets fresh tables \
         and fresh processes (Azurite's cost per insert grows with the table), a warm-up of \
         {} leads per path, then two runs per path in the order handler, direct, peer, peer, \
         direct, handler, each after one unmeasured lead per connection (so that every path \
         starts with its connections to Azurite open: Azurite closes a connection idle for \
         5 s, and a burst that must reopen them all has a tail of seconds on Azurite, for the \
         handler and the peer alike): throughput over both runs, quantiles over all their \
         requests.\n",
        thousands(REQUESTS),
        i.lead_body_bytes,
        WARM_UP
    ));
    d.line(
        "- *Handler*: `POST /api/LeadIngest` to the release binary, which answers 201 once \
         the lead is stored: marker, lead row and the digest's pending record in one \
         entity-group transaction.",
    );
    d.line(
        "- *Direct*: those same three entities (the handler's columns and sizes, copied from \
         entities it wrote) in one entity-group transaction, sent by a plain \
         `azure_data_tables` client in the benchmark process, on a pooled HTTP client like \
         the handler's store.",
    );
    d.line(
        "- *Peer*: `POST /api/LeadIngest` to `benches/ingest/peer/server.js`, Node.js with \
         the official `@azure/data-tables` SDK: parses the lead (keys in any casing, values \
         trimmed), fingerprints its canonical JSON (SHA-256), rates it by the handler's \
         rules, writes marker + lead row + pending record (the same columns and sizes) \
         with `TableClient.submitTransaction`, answers 201, or 200 for a duplicate, only \
         once committed.\n",
    );
    d.line(
        "*On the wire*, the handler and the peer send the same transaction: three creates, \
         each with `Prefer: return-no-content`, answered with 204s (the handler writes its \
         `$batch` itself, `src/store/batch.rs`, as the REST reference documents it). The \
         direct client does not: `azure_data_tables` 0.21 sends its batch inserts with no \
         `Prefer` (and `odata=fullmetadata`), so Azurite echoes each entity back to it; \
         the crate cannot set a header on a batch operation.\n",
    );
    d.line(
        "| connections | leads/s handler / direct / peer | p50 ms handler / direct / peer | p99 ms handler / direct / peer | load |",
    );
    d.line("|---:|---:|---:|---:|---|");
    for l in &i.levels {
        d.line(format!(
            "| {} | {:.0} / {:.0} / {:.0} | {:.2} / {:.2} / {:.2} | {:.2} / {:.2} / {:.2} | {} |",
            l.connections,
            l.handler.per_second,
            l.direct.per_second,
            l.peer.per_second,
            l.handler.p50_ms,
            l.direct.p50_ms,
            l.peer.p50_ms,
            l.handler.p99_ms,
            l.direct.p99_ms,
            l.peer.p99_ms,
            l.handler.load_average
        ));
    }
    d.line("\nRatios, handler ÷ baseline (throughput above 1, latency and CPU below 1 favour the handler):\n");
    d.line("| connections | vs direct: throughput | p50 | p99 | CPU | vs peer: throughput | p50 | p99 | CPU |");
    d.line("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in &i.levels {
        d.line(format!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | **{:.3}** |",
            l.connections,
            l.vs_direct.throughput,
            l.vs_direct.p50,
            l.vs_direct.p99,
            l.vs_direct.cpu,
            l.vs_peer.throughput,
            l.vs_peer.p50,
            l.vs_peer.p99,
            l.vs_peer.cpu
        ));
    }
    for l in &i.levels {
        for (path, run) in [
            ("handler", &l.handler),
            ("direct", &l.direct),
            ("peer", &l.peer),
        ] {
            if !run.failures.is_empty() {
                d.line(format!(
                    "\n**{path} at {} connections: {} of {} failed**: {:?}",
                    l.connections,
                    run.requests - run.ok,
                    run.requests,
                    run.failures
                ));
            }
        }
    }
    d.line("\n### CPU time per 1,000 leads (user + system, ms)\n");
    d.line("| connections | handler | peer | direct client | handler ÷ peer | handler ÷ direct | Azurite (handler runs / direct / peer) | load generator (handler runs / peer runs) |");
    d.line("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for l in &i.levels {
        d.line(format!(
            "| {} | {:.0} | {:.0} | {:.0} | **{:.3}** (×{:.1} less) | {:.2} | {:.0} / {:.0} / {:.0} | {:.0} / {:.0} |",
            l.connections,
            l.handler.cpu_ms_per_1000,
            l.peer.cpu_ms_per_1000,
            l.direct.cpu_ms_per_1000,
            l.vs_peer.cpu,
            1.0 / l.vs_peer.cpu,
            l.vs_direct.cpu,
            l.handler.azurite_cpu_ms_per_1000,
            l.direct.azurite_cpu_ms_per_1000,
            l.peer.azurite_cpu_ms_per_1000,
            l.handler.client_cpu_ms_per_1000,
            l.peer.client_cpu_ms_per_1000,
        ));
    }
    d.line(
        "\nFrom `/proc/<pid>/stat` (utime + stime, all threads) before and after each run. \
         The handler's and the peer's figures are their whole processes (HTTP, parsing, \
         fingerprint, logging, storage client). The direct client's is the whole benchmark \
         process during the direct runs, so it also holds the benchmark's own bookkeeping.",
    );
}

fn flavours(d: &mut Doc, r: &Results) {
    let f = &r.flavours;
    d.line("\n## Runtime flavour and allocator\n");
    d.line(format!(
        "The same handler binary with `HANDLER_RUNTIME` set (read by `src/main.rs`) or \
         `LEAD_RATING=false` (no rating computed), and any other build named in `BENCH_HANDLER_VARIANTS` (run with `HANDLER_RUNTIME` unset). \
         All variants run at once on their own tables, each with a warm-up, then three \
         runs of {1} leads in the order A B C … C B A A B C …, each run after one unmeasured lead per \
         connection; ratios are against tokio's multi-thread runtime with one worker per core \
         ({0} workers here) at the same connection count.\n",
        f.default_workers,
        thousands(f.requests_per_run)
    ));
    d.line("| variant | connections | CPU ms / 1,000 leads | CPU ratio | CPU ÷ default | leads/s | throughput ratio | p99 ms | p99 ratio | idle RSS MiB |");
    d.line("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for v in &f.variants {
        d.line(format!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} |",
            v.name,
            v.connections,
            v.stats.cpu_ms_per_1000,
            v.cpu_ratio,
            v.cpu_vs_default,
            v.stats.per_second,
            v.throughput_ratio,
            v.stats.p99_ms,
            v.p99_ratio,
            mib(v.idle_rss_kib)
        ));
    }
}

fn delivery(d: &mut Doc, r: &Results) {
    let del = &r.delivery;
    d.line("\n## Delivery: stored → delivered, and ingest with three destinations\n");
    d.line(format!(
        "The handler with three destinations — {} — against the same handler with none. \
         `NOTIFY_MAX_PER_HOUR` {}: beyond it, emails wait for the hour's budget. \
         `DELIVERY_SCHEDULE` once a year, so every delivery measured is the immediate one \
         started right after the 201 (`Deliverer::deliver_new`), and what it leaves to the \
         sweep never arrives here: the last column counts those (`deliver_new` starts at \
         most a few first attempts per destination at once, none while more than two \
         leads are being stored at once, and leaves the rest of a burst to the sweep, \
         every minute by default). Latency: from the moment the load \
         generator has the 201 to the lead's first arrival at the local receiver (by \
         `data.leadId`, signature verified; Teams by the card's lead id), over the leads \
         that arrived; below zero, the lead reached the receiver before the load generator \
         had read its 201 (the first attempt starts as the answer is sent).\n",
        del.destinations.join(", "),
        del.notify_max_per_hour
    ));
    d.line("| posting | leads answered 201 (503) | webhook arrived | webhook p50 / p99 / max ms | Teams arrived | Teams p50 / p99 ms | last arrival after the run | webhooks left to the sweep |");
    d.line("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, l) in [
        ("one at a time", &del.one_at_a_time),
        ("16 connections (throughput runs)", &del.under_load),
    ] {
        d.line(format!(
            "| {name} | {} ({}) | {} | {:.1} / {:.1} / {:.1} | {} | {:.1} / {:.1} | {:.0} ms | {} |",
            l.leads,
            l.failed,
            l.webhook_arrived,
            l.webhook_p50_ms,
            l.webhook_p99_ms,
            l.webhook_max_ms,
            l.teams_arrived,
            l.teams_p50_ms,
            l.teams_p99_ms,
            l.drain_ms,
            l.webhook_left_to_sweep
        ));
    }
    d.line(format!(
        "\nIngest at {} connections, runs in the order none, three, three, none, three times \
         over, each by a fresh \
         handler on a fresh table after one lead per connection (Azurite's cost per insert \
         grows with the entities already in the table, and the tables of the phases above \
         hold different numbers); each run with destinations waits for its deliveries before \
         the next:\n",
        del.under_load.connections
    ));
    d.line("| destinations | leads/s | p50 ms | p99 ms | handler CPU ms / 1,000 leads while posting | Azurite CPU ms / 1,000 leads | load |");
    d.line("|---|---:|---:|---:|---:|---:|---|");
    for (name, s) in [("none", &del.none), ("three", &del.three)] {
        d.line(format!(
            "| {name} | {:.0} | {:.2} | {:.2} | {:.0} | {:.0} | {} |",
            s.per_second,
            s.p50_ms,
            s.p99_ms,
            s.cpu_ms_per_1000,
            s.azurite_cpu_ms_per_1000,
            s.load_average
        ));
    }
    d.line(format!(
        "\nThree ÷ none: throughput **×{:.2}**, p50 ×{:.2}, p99 ×{:.2}, CPU while posting ×{:.2}. \
         With the background deliveries counted until the last arrival, the handler with \
         destinations spent {:.0} ms of CPU per 1,000 leads. MailDev received {} per-lead \
         emails (the hour's budget is kept in each table, and each run has a table of its \
         own); the webhook receiver saw {} repeats and {} requests it could not verify, \
         Teams {} repeats.",
        del.throughput_ratio,
        del.p50_ratio,
        del.p99_ratio,
        del.cpu_ratio,
        del.three_cpu_with_deliveries_ms_per_1000,
        del.emails_received,
        del.webhook_repeats,
        del.webhook_bad,
        del.teams_repeats
    ));
    d.line(
        "\nWith destinations, a lead's transaction writes four entities whatever their number: \
         marker, lead row, the digest's pending record, and one record holding every \
         destination's delivery (`P.*.<lead>`, `src/store/outbox/bundle.rs`), claimed by the \
         first attempts about to run; their outcomes are written in one transaction that \
         replaces it with each destination's record. A record per destination would make it \
         six, and Azurite (one request at a time, on one core) spends its CPU per entity.",
    );
    d.line(format!(
        "\nStorage requests per lead, counted by a proxy in front of Azurite over {} leads \
         posted one at a time after a first one: **{:.2}** without destinations, **{:.2}** \
         with the three ({}), the ingest transaction included. Every request is a round trip \
         the handler signs and Azure bills.",
        del.counted_leads,
        del.storage_requests_per_lead_none,
        del.storage_requests_per_lead_three,
        del.storage_requests_by_method_three
            .iter()
            .map(|(method, n)| format!("{method} {n:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for (name, s) in [("none", &del.none), ("three", &del.three)] {
        if !s.failures.is_empty() {
            d.line(format!(
                "\n**{name}: {} of {} failed**: {:?}",
                s.requests - s.ok,
                s.requests,
                s.failures
            ));
        }
    }
}

fn cold_start_and_memory(d: &mut Doc, r: &Results) {
    let c = &r.cold_start;
    let m = &r.ingest.memory;
    d.line("\n## Cold start\n");
    d.line(format!(
        "exec → first `GET /` answered 200, after one spawn of each that warms the page cache \
         (load average {}). Neither waits for storage: both create their table in the \
         background.\n",
        c.load_average
    ));
    d.line("| | runs | first | median | p90 | min | max |");
    d.line("|---|---:|---:|---:|---:|---:|---:|");
    for (name, s) in [("handler", &c.handler), ("Node.js peer", &c.peer)] {
        d.line(format!(
            "| {name} | {} | {:.1} ms | **{:.1} ms** | {:.1} ms | {:.1} ms | {:.1} ms |",
            s.runs, s.first_ms, s.median_ms, s.p90_ms, s.min_ms, s.max_ms
        ));
    }
    d.line(format!(
        "\nHandler ÷ peer, medians: ×{:.3}.",
        c.median_ratio
    ));
    d.line("\n## Memory (RSS)\n");
    d.line("| | idle after start | peak under 64 connections (sampled every 10 ms) | `VmHWM` |");
    d.line("|---|---:|---:|---:|");
    d.line(format!(
        "| handler | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        mib(m.handler_idle_rss_kib),
        mib(m.handler_peak_rss_64_kib),
        mib(m.handler_hwm_kib)
    ));
    d.line(format!(
        "| Node.js peer | {:.1} MiB | {:.1} MiB | {:.1} MiB |",
        mib(m.peer_idle_rss_kib),
        mib(m.peer_peak_rss_64_kib),
        mib(m.peer_hwm_kib)
    ));
    d.line(format!(
        "\nThe handler held {:.1} MiB once the load stopped.",
        mib(m.handler_after_load_rss_kib)
    ));
}

fn digest(d: &mut Doc, r: &Results) {
    let dg = &r.digest;
    d.line("\n## Digest cost as the table grows\n");
    d.line(format!(
        "Older leads arrive at 1,000 a day up to an hour ago (a bigger table is a longer \
         history), already reported: marker and lead row, no pending record, seeded in \
         entity-group transactions of 50 leads. A first digest run moved the outbox cursor to \
         yesterday, as in any table where digests have been running. Then, {} times per size: \
         {} new leads saved by `LeadStore::save` with their pending digest record, and one \
         `DigestRunner::run` (claim, read, render, SMTP send to MailDev, remove the records, \
         run record), through a proxy that counts every request and every entity Azurite's \
         answers carry. Load average {}.\n",
        dg.sizes[0].runs, dg.sizes[0].leads_per_run, dg.load_average
    ));
    d.line("| older leads (days) | entities in table | run median ms (min–max) | requests (reads) per run | entities returned per run (leads table) | entities in the partitions touched | `Timestamp gt`: returned / Azure reads / median ms |");
    d.line("|---|---:|---:|---:|---:|---:|---:|");
    for s in &dg.sizes {
        d.line(format!(
            "| {} ({}) | {} | {:.1} ({:.1}–{:.1}) | {} ({}) | {} ({}) | {} | {} / {} / {:.1} |",
            thousands(s.older_leads),
            s.days_of_history,
            thousands(s.table_entities),
            s.run_median_ms,
            s.run_min_ms,
            s.run_max_ms,
            s.requests_per_run,
            s.reads_per_run,
            s.entities_returned_per_run,
            s.leads_table_entities_returned_per_run,
            thousands(s.entities_in_partitions_touched),
            s.timestamp_filter.entities_returned,
            thousands(s.timestamp_filter.entities_read_on_azure),
            s.timestamp_filter.median_ms
        ));
    }
    d.line(format!(
        "\nLargest ÷ smallest table: entities returned ×{:.2}, entities in the partitions \
         touched ×{:.2}, run time ×{:.2}; the `Timestamp gt` filter: entities Azure reads \
         ×{:.1}, time ×{:.2}.\n",
        dg.entities_returned_ratio,
        dg.partition_entities_ratio,
        dg.run_time_ratio,
        dg.timestamp_read_ratio,
        dg.timestamp_time_ratio
    ));
    if let Some(s) = dg.sizes.first() {
        d.line("The leads-table queries of one run:\n");
        for filter in &s.leads_table_filters {
            d.line(format!("- `{filter}`"));
        }
    }
    d.line(
        "\nWhat carries over to Azure is the entity counts: the run reads the outbox's \
         `P.digest.` range of the days from the cursor on, and the lead rows between the \
         first and last pending lead, never the history. Even if Azure scanned the whole \
         partitions those key ranges fall in, that is the last day or two of leads, whatever \
         the table's size. Table storage indexes only `(PartitionKey, RowKey)`; a filter on \
         any other property, `Timestamp` included, is a table scan ([Design for querying]\
         (https://learn.microsoft.com/azure/storage/tables/table-storage-design-for-query)), \
         so the documented flow reads the whole table every run. The times do not carry \
         over: Azurite answers *every* query, key ranges included, by filtering its whole \
         in-memory collection, so on Azurite the digest's time grows with the table too.",
    );
}
