//! Marketplace leads: an Azure Functions custom handler that receives
//! Microsoft commercial-marketplace leads from Partner Center, stores them in
//! Azure Table storage, and emails a digest of new leads on a schedule.
//!
//! Layout, one module per concept:
//!
//! - [`lead`] — the lead payload, parsed and normalised.
//! - [`store`] — Azure Table storage — the only module that knows `azure_data_tables`.
//! - [`digest`] — the digest run: window by checkpoint, rendering, sending.
//! - [`email`] — email transports (Azure Communication Services, SMTP).
//! - [`export`] — `leads list` and `leads export`: stored leads as a table, CSV or JSON Lines.
//! - [`functions`] — the Azure Functions custom-handler protocol.
//! - [`routes`] — the HTTP endpoints (warp filters and handlers).
//! - [`startup`] — builds the application and runs it until stopped.
//! - [`schedule`] — NCRONTAB schedules, for standalone mode.
//! - [`clock`] — the time source (tests move it instead of sleeping).
//! - [`configuration`] — settings from the environment, validated once.
//! - [`telemetry`] — logging.

pub mod clock;
pub mod configuration;
pub mod digest;
pub mod email;
pub mod export;
pub mod functions;
pub mod lead;
pub mod routes;
pub mod schedule;
pub mod startup;
pub mod store;
pub mod telemetry;
