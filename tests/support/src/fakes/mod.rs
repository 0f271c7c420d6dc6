//! Local fakes of the remote services that cannot run here. Each checks
//! what it receives the way the real service documents it and answers with
//! the service's documented statuses and bodies.
//!
//! - [`credential`] — an Azure token credential.

pub mod credential;

pub use credential::FakeCredential;
