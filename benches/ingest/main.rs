//! The benchmark: `cargo bench --bench ingest`. Starts its own Azurite and
//! MailDev (the `testkit` harness, on free loopback ports), runs the
//! release `handler` binary as a child process under the Functions-host
//! protocol, and writes `bench-results/latest.md` and `latest.json`.
//!
//! Every figure is a ratio against a baseline measured in the same run:
//!
//! - [`ingest`]: throughput and p50/p99 latency at 1, 16 and 64
//!   connections through the handler, against the same storage work sent
//!   straight to Azurite by a plain client ([`direct`]) and against a
//!   Node.js peer giving the same guarantee ([`peer`]); CPU per 1,000 leads
//!   of each; the memory of the handler and the peer.
//! - [`flavours`]: the handler's CPU per lead on each tokio runtime flavour
//!   (`HANDLER_RUNTIME`) and each other build named in
//!   `BENCH_HANDLER_VARIANTS` (allocators).
//! - [`cold_start`]: exec → first `GET /` answered, handler and peer.
//! - [`delivery`]: stored → delivered latency to a local webhook, and ingest
//!   throughput with three destinations against none.
//! - [`digest`]: the digest run's reads and time at 10,000 and 100,000
//!   older leads, beside the documented flow's `Timestamp gt` query.
//!
//! [`report`] writes the results. `BENCH_HANDLER` measures another handler
//! binary than this package's release build; `BENCH_LOG_DIR` keeps the
//! handler's and the peer's logs there instead of discarding them.
//!
//! Run by `cargo test --all-targets` (no `--bench` argument) it does
//! nothing. Bounded: every phase has a fixed amount of work and the whole
//! run a time limit; all traffic stays on 127.0.0.1.

mod child;
mod cold_start;
mod delivery;
mod digest;
mod direct;
mod flavours;
mod handler;
mod ingest;
mod load;
mod machine;
mod peer;
mod procfs;
mod proxy;
mod receivers;
mod report;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{Azurite, MailDev};

/// The whole run stops by itself within this.
const BOUND: Duration = Duration::from_secs(20 * 60);

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("benches/ingest: nothing to do without --bench; run `cargo bench --bench ingest`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        tokio::time::timeout(BOUND, run())
            .await
            .expect("the benchmark finishes within its bound")
    });
}

/// A line on stderr, with the time since the run started.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => {{
        eprintln!("[{:>6.1}s] {}", $crate::started().elapsed().as_secs_f64(), format!($($arg)*));
    }};
}

pub fn started() -> Instant {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

async fn run() {
    started();
    peer::check_installed();
    let binary = handler::binary();
    let mut machine = machine::machine(&binary);
    progress!(
        "machine: {} cores, load average {}; handler {}",
        machine.nproc,
        machine.load_average_at_start,
        binary.display()
    );
    let azurite = Azurite::start();
    let maildev = MailDev::start();
    let azurite_pid = procfs::azurite_pid(azurite.port);
    let backends = handler::Backends {
        storage: azurite.connection_string(),
        smtp_url: maildev.smtp_url(),
    };
    let tag = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");

    // Cold start first, while Azurite is idle and its tables small.
    let cold_start = cold_start::run(&binary, &backends, &tag);

    let template = ingest::template(&binary, &backends, azurite.port, &client, &tag).await;
    let seed = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or_default(),
    );
    let ingest = ingest::run(
        &binary,
        &backends,
        azurite.port,
        &azurite_pid,
        &client,
        template,
        Arc::new(AtomicU64::new(seed)),
        &tag,
    )
    .await;
    let flavours = flavours::run(&binary, &backends, &azurite_pid, &client, &tag).await;
    let delivery = delivery::run(
        &binary,
        &backends,
        &maildev,
        azurite.port,
        &azurite_pid,
        &client,
        &tag,
    )
    .await;
    drop(azurite);

    // The digest, on an Azurite of its own.
    let digest = digest::run(&maildev, &tag).await;

    machine.load_average_at_end = procfs::load_average();
    report::write(&report::Results {
        date: time::OffsetDateTime::now_utc()
            .format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .unwrap_or_default(),
        machine,
        cold_start,
        ingest,
        flavours,
        delivery,
        digest,
        duration_s: started().elapsed().as_secs_f64(),
    });
}
