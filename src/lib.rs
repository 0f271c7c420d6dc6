//! Marketplace leads: an Azure Functions custom handler that receives
//! Microsoft commercial-marketplace leads from Partner Center, stores them in
//! Azure Table storage, and emails a digest of new leads on a schedule.
//!
//! Layout, one module per concept. Dependencies point one way, down this
//! list's layers: a module uses only modules of lower layers, and its own
//! layer's only where said (`tests/infra/test_layering.py` checks it).
//!
//! 1. [`domain`] — the lead (posted, or a row of Partner Center's own table),
//!    email addresses, `Secret`, `TimeRange`, safe text.
//!    [`clock`] — the time source (tests move it instead of sleeping).
//! 2. [`schedule`] — NCRONTAB schedules. [`retry`] — one retry loop with
//!    backoff and a deadline. [`identity`] — the app's Azure identity
//!    (managed identity, app registration, `az login`). [`telemetry`] —
//!    logging, and redacting credentials from what leaves the process.
//!    [`outbound`] — the HTTP client for the services we call.
//! 3. [`configuration`] — settings from the environment, validated once;
//!    they build the components below.
//! 4. [`store`] — Azure Table storage, the only module that knows
//!    `azure_data_tables` (the leads table, and a table to import from). [`email`] — ACS and SMTP transports.
//!    [`routing`] — which destinations get a lead.
//! 5. [`digest`] — the digest run: pending records, claim, rendering
//!    (cards and subjects, shared with the per-lead email), sending.
//!    [`delivery`] — acting on each lead: destinations behind one trait,
//!    the engine that delivers, retries and settles. [`retention`] —
//!    deleting what is older than the publisher keeps leads.
//! 6. [`functions`] — the custom-handler protocol. [`intake`] — taking in
//!    one lead: parse, quarantine, route, store, first attempts.
//! 7. [`http`] — the endpoints (warp filters and handlers). [`cli`] — the
//!    command line: `leads` (list, export, rejected, import), `deliveries`,
//!    `route`, `digest`.
//! 8. [`startup`] — builds the application and runs it until stopped.

pub mod cli;
pub mod clock;
pub mod configuration;
pub mod delivery;
pub mod digest;
pub mod domain;
pub mod email;
pub mod functions;
pub mod http;
pub mod identity;
pub mod intake;
pub mod outbound;
pub mod retention;
pub mod retry;
pub mod routing;
pub mod schedule;
pub mod startup;
pub mod store;
pub mod telemetry;
