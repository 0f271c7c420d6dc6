//! API tests: the real binary's routes against a real Azurite and a real
//! MailDev, started by the shared harness (`testkit`) on free loopback ports.

mod digest;
mod ingest;
mod protocol;
