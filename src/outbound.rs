//! The HTTP client for the services we call (destinations, ACS): bounded
//! by the caller's timeouts, naming us, and never following a redirect —
//! a redirect is an answer to fix the URL, and following one would carry
//! a lead, or an `Authorization` header, where nobody configured.

use std::time::Duration;

/// A client whose requests end within `request` (connecting within
/// `connect`).
pub fn client(request: Duration, connect: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(request)
        .connect_timeout(connect)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("marketplace-leads/", env!("CARGO_PKG_VERSION")))
        .build()
}
