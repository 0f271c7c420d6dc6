//! Builds the application from settings and runs it until stopped.
//!
//! Under the Functions host (`FUNCTIONS_CUSTOMHANDLER_PORT` set) it binds the
//! host's port and lets the host own keys and the timer. Standalone it binds
//! `127.0.0.1:7071` (same URLs as `func start`), checks the ingest key
//! itself and runs the digest schedule itself.

use crate::clock::Clock;
use crate::configuration::Settings;
use crate::delivery::Deliverer;
use crate::digest::DigestRunner;
use crate::http::{routes, AppState};
use crate::intake::Intake;
use crate::retention::Retention;
use crate::schedule::Schedule;
use crate::store::LeadStore;
use anyhow::Context as _;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long shutdown waits for first attempts in flight.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Application {
    listener: TcpListener,
    state: AppState,
    standalone: bool,
    settings: Settings,
}

impl Application {
    /// Binds the port (so `port()` is known before running: tests ask for
    /// port 0) and creates the tables if missing.
    pub async fn build(settings: Settings, standalone_port: u16) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, standalone_port, Clock::default()).await
    }

    /// As [`Application::build`], with a clock tests can move.
    pub async fn build_with_clock(
        settings: Settings,
        standalone_port: u16,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let standalone = settings.host_port.is_none();
        let port = settings.host_port.unwrap_or(standalone_port);
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
            .await
            .with_context(|| format!("Failed to bind 127.0.0.1:{port}"))?;

        let store = LeadStore::from_settings(&settings.storage)?;
        // In the background: the host waits for readiness, not for storage,
        // and a lead that comes first creates its table itself.
        let tables = store.clone();
        tokio::spawn(async move {
            if let Err(e) = tables.ensure_tables().await {
                tracing::warn!(error = %e, "could not create the tables at start-up; will retry on use");
            }
        });
        let required_key = if standalone {
            if settings.ingest_key.is_none() {
                tracing::warn!(
                    "LEAD_INGEST_KEY is not set: ANYONE who can reach this port can post leads \
                     and run the digest. Fine on a laptop; set it before exposing the port."
                );
            }
            settings.ingest_key.clone().map(Arc::new)
        } else {
            None
        };
        let digest = DigestRunner::from_settings(store.clone(), &settings);
        let deliverer = Deliverer::from_settings(store.clone(), &settings)?;
        let retention = Retention::from_settings(store.clone(), &settings);
        Ok(Self {
            listener,
            state: AppState {
                intake: Intake::new(store, deliverer.clone(), clock.clone())
                    .rating_leads(settings.rate_leads),
                digest,
                deliverer,
                retention,
                required_key,
                clock,
            },
            standalone,
            settings,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn digest(&self) -> DigestRunner {
        self.state.digest.clone()
    }

    /// The delivery engine the app runs (`None` with no destination).
    pub fn deliverer(&self) -> Option<Deliverer> {
        self.state.deliverer.clone()
    }

    /// Serves until `shutdown` resolves; in-flight requests then finish.
    /// Standalone, it also runs the digest and delivery sweeps on their
    /// schedules, as the Functions host's timers would.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut timers = Vec::new();
        if self.standalone {
            let digest = self.state.digest.clone();
            let retention = self.state.retention.clone();
            timers.push(tokio::spawn(run_on_schedule(
                "digest",
                self.settings.digest.schedule.clone(),
                self.state.clock.clone(),
                stop_rx.clone(),
                move |now| {
                    let (digest, retention) = (digest.clone(), retention.clone());
                    async move {
                        // Failures are logged and recorded by the run.
                        let _ = digest.run(now, false).await;
                        if let Some(retention) = retention {
                            if let Err(e) = retention.run(now).await {
                                tracing::error!(error = %e, "retention run failed");
                            }
                        }
                    }
                },
            )));
            if let Some(deliverer) = self.state.deliverer.clone() {
                timers.push(tokio::spawn(run_on_schedule(
                    "delivery",
                    self.settings.delivery.schedule.clone(),
                    self.state.clock.clone(),
                    stop_rx.clone(),
                    move |now| {
                        let deliverer = deliverer.clone();
                        async move {
                            if let Err(e) = deliverer.sweep(now).await {
                                tracing::error!(error = %e, "delivery sweep failed");
                            }
                        }
                    },
                )));
            }
        }
        tracing::info!(
            port = self.port(),
            mode = if self.standalone { "standalone" } else { "functions-host" },
            table = %self.settings.storage.leads_table,
            destinations = %self.state.deliverer.as_ref().map_or_else(
                || "none".to_owned(),
                |d| d.names().iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            ),
            "listening on 127.0.0.1"
        );
        let deliverer = self.state.deliverer.clone();
        crate::http::server::serve(self.listener, routes(self.state), async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
        for timer in timers {
            let _ = timer.await;
        }
        // First attempts still in flight finish (each has its own time
        // limit), so a delivery the receiver accepted is recorded as done
        // rather than left for the sweep to send again; bounded, since the
        // host waits only so long.
        if let Some(deliverer) = deliverer {
            if tokio::time::timeout(SHUTDOWN_GRACE, deliverer.quiesce())
                .await
                .is_err()
            {
                tracing::warn!(
                    grace_s = SHUTDOWN_GRACE.as_secs(),
                    "first attempts still running at shutdown; the sweep finishes them"
                );
            }
        }
        tracing::info!("stopped");
    }

    /// Serves until SIGTERM or Ctrl-C.
    pub async fn run_until_stopped(self) {
        self.run_until(shutdown_signal()).await
    }
}

/// Standalone mode's timer: runs `job` at each occurrence of `schedule`.
/// A run in progress finishes before shutdown.
async fn run_on_schedule<F, Fut>(
    name: &'static str,
    schedule: Schedule,
    clock: Clock,
    mut stop: watch::Receiver<bool>,
    job: F,
) where
    F: Fn(time::OffsetDateTime) -> Fut,
    Fut: Future<Output = ()>,
{
    tracing::info!(name, schedule = schedule.expression(), "schedule started");
    loop {
        let now = clock.now();
        let Some(next) = schedule.next_after(now) else {
            tracing::warn!(name, "the schedule has no future occurrence");
            return;
        };
        let wait = (next - now).try_into().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        job(clock.now()).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received; finishing in-flight requests"),
        _ = terminate => tracing::info!("SIGTERM received; finishing in-flight requests"),
    }
}
