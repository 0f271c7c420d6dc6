//! The promises under real faults, each one a regression test of a way
//! they broke: a lead whose write commits after its sender gave up, a send
//! whose outcome is unknown, a stalled mail server, a burst of huge leads,
//! credentials in error text, and the standalone server's connections.
//! Real Azurite and MailDev behind fault-injecting proxies written in the
//! tests (`testkit::faults`). Counts are printed.

mod connections;
mod digest;
mod secrets;

pub(crate) use testkit::report;

/// A lead whose customer says who it is.
pub fn lead(name: &str) -> String {
    format!(
        r#"{{"UserDetails":{{"FirstName":"{name}","Email":"{name}@contoso.example"}},"OfferTitle":"Faults"}}"#
    )
}
