//! Local fakes of the remote services that cannot run here. Each checks
//! what it receives the way the real service documents it and answers with
//! the service's documented statuses and bodies.
//!
//! - [`credential`] — an Azure token credential.
//! - [`receiver`] — an HTTP receiver (webhook endpoint, Teams Workflows URL).

pub mod credential;
pub mod receiver;

pub use credential::FakeCredential;
pub use receiver::{Answer, Receiver};
pub mod crm;
pub mod dataverse;
pub mod hubspot;
pub use crm::FaultControls;
pub use dataverse::DataverseFake;
pub use hubspot::HubSpotFake;
