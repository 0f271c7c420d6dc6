//! Local fakes of the remote services that cannot run here. Each checks
//! what it receives the way the real service documents it and answers with
//! the service's documented statuses and bodies.
//!
//! - [`credential`] — an Azure token credential; [`identity`] — the
//!   platform's managed-identity endpoint.
//! - [`acs`] — the Communication Services email REST API.
//! - [`receiver`] — an HTTP receiver (webhook endpoint, Teams Workflows URL).
//! - [`dataverse`], [`hubspot`], [`salesforce`], [`marketo`] — the CRMs,
//!   sharing [`crm`]'s faults and server.

pub mod acs;
pub mod credential;
pub mod identity;
pub mod receiver;

pub use acs::FakeAcs;
pub use credential::FakeCredential;
pub use identity::ManagedIdentityFake;
pub use receiver::{Answer, Receiver};
pub mod crm;
pub mod dataverse;
pub mod hubspot;
pub mod marketo;
pub mod salesforce;
pub use crm::FaultControls;
pub use dataverse::DataverseFake;
pub use hubspot::HubSpotFake;
pub use marketo::MarketoFake;
pub use salesforce::SalesforceFake;
