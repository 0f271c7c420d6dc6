//! A fake Azure credential (`azure_core::auth::TokenCredential`): hands out
//! a token per scope, counts what it is asked, and after `clear_cache`
//! hands out a fresh token — so a test can tell a reused token from a new
//! one without any identity endpoint.

use azure_core::auth::{AccessToken, TokenCredential};
use std::sync::Mutex;
use time::OffsetDateTime;

#[derive(Debug, Default)]
pub struct FakeCredential {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    generation: usize,
    scopes: Vec<String>,
    clears: usize,
}

impl FakeCredential {
    pub fn new() -> Self {
        Self::default()
    }

    /// The token it hands out now: `fake-token-<generation>`.
    pub fn current_token(&self) -> String {
        format!("fake-token-{}", self.state.lock().unwrap().generation)
    }

    /// Every scope asked for, in order.
    pub fn scopes(&self) -> Vec<String> {
        self.state.lock().unwrap().scopes.clone()
    }

    pub fn clears(&self) -> usize {
        self.state.lock().unwrap().clears
    }
}

#[async_trait::async_trait]
impl TokenCredential for FakeCredential {
    async fn get_token(&self, scopes: &[&str]) -> azure_core::Result<AccessToken> {
        let mut state = self.state.lock().unwrap();
        state.scopes.extend(scopes.iter().map(|s| s.to_string()));
        Ok(AccessToken::new(
            format!("fake-token-{}", state.generation),
            OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        let mut state = self.state.lock().unwrap();
        state.clears += 1;
        state.generation += 1;
        Ok(())
    }
}
