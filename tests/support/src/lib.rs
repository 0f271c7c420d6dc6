//! The test harness, shared by every integration test binary and the
//! benchmark: real components started on free loopback ports, an isolated
//! application per test, and readers of what is really stored.
//!
//! - [`services`] — real Azurite and MailDev processes.
//! - [`app`] — `spawn_app()` and the running test application.
//! - [`tables`] — tables read with a plain client.
//! - [`data`] — the shared lead payloads.
//! - [`fakes`] — local fakes of remote services (credentials, ACS, CRMs, receivers).
//! - [`faults`] — a fault-injecting proxy in front of Azurite.
//! - [`process`] — the real binary as a child process.
//!
//! Logs of the application print only when `TEST_LOG` is set.

pub mod app;
pub mod data;
pub mod fakes;
pub mod faults;
pub mod process;
pub mod services;
pub mod tables;

pub use app::{run_cli, said, spawn_app, spawn_app_with, AppOptions, TestApp};
pub use data::testdata;
pub use services::{
    free_port, shared_azurite, shared_maildev, Azurite, MailDev, DEV_ACCOUNT, DEV_KEY,
};
pub use tables::read_table;

/// Prints past the test harness's capture: in these tests the counts are
/// the point.
#[macro_export]
macro_rules! report {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Serves `route` on 127.0.0.1:`port` (0: any free port) until the
/// returned sender is dropped or sent to: the loop of every local fake.
pub async fn serve_locally<F>(
    route: F,
    port: u16,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>)
where
    F: warp::Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind a local server");
    let addr = listener.local_addr().expect("the local server's address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        warp::serve(route)
            .incoming(listener)
            .graceful(async {
                let _ = stopped.await;
            })
            .run(),
    );
    (addr, stop)
}

/// Application logs on stdout, when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        marketplace_leads::telemetry::init();
    }
}
