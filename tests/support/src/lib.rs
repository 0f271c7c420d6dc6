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

pub use app::{spawn_app, spawn_app_with, AppOptions, TestApp};
pub use data::testdata;
pub use services::{
    free_port, shared_azurite, shared_maildev, Azurite, MailDev, DEV_ACCOUNT, DEV_KEY,
};
pub use tables::read_table;

/// Application logs on stdout, when `TEST_LOG` is set.
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        marketplace_leads::telemetry::init();
    }
}
