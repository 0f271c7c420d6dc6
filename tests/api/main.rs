//! API tests: the real binary's routes against a real Azurite and a real
//! MailDev, started by the harness in `helpers` on free loopback ports.

mod digest;
mod helpers;
mod ingest;
mod protocol;
