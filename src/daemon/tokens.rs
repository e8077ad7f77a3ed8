//! Per-attempt API tokens: a worker gets `ORCA_API` and `ORCA_TOKEN`; its
//! token may only read and submit child runs of its attempt, the server
//! derives the child's depth from it (a worker cannot lie about its depth),
//! and it stops working when the attempt ends.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use orca_actors::model::AttemptRef;
use orca_actors::services::TokenIssuer;
use sha2::{Digest, Sha256};

/// What a per-attempt token grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub attempt: AttemptRef,
    /// The spawn depth of the attempt's run.
    pub depth: u32,
}

/// The tokens of live attempts, keyed by their SHA-256 (lookups never
/// compare raw secrets).
#[derive(Debug, Default)]
pub struct AttemptTokens {
    url: RwLock<String>,
    grants: RwLock<HashMap<[u8; 32], Grant>>,
    by_attempt: RwLock<HashMap<AttemptRef, [u8; 32]>>,
}

impl AttemptTokens {
    pub fn new(url: String) -> Arc<Self> {
        Arc::new(Self {
            url: RwLock::new(url),
            ..Default::default()
        })
    }

    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The grant of a presented token, if it is live.
    pub fn lookup(&self, token: &str) -> Option<Grant> {
        self.grants.read().ok()?.get(&Self::key(token)).cloned()
    }
}

impl TokenIssuer for AttemptTokens {
    fn api_url(&self) -> String {
        self.url.read().map(|u| u.clone()).unwrap_or_default()
    }

    fn issue(&self, attempt: &AttemptRef, depth: u32) -> String {
        let token = super::info::random_token();
        let key = Self::key(&token);
        if let (Ok(mut g), Ok(mut b)) = (self.grants.write(), self.by_attempt.write()) {
            if let Some(old) = b.insert(attempt.clone(), key) {
                g.remove(&old);
            }
            g.insert(
                key,
                Grant {
                    attempt: attempt.clone(),
                    depth,
                },
            );
        }
        token
    }

    fn revoke(&self, attempt: &AttemptRef) {
        if let (Ok(mut g), Ok(mut b)) = (self.grants.write(), self.by_attempt.write()) {
            if let Some(key) = b.remove(attempt) {
                g.remove(&key);
            }
        }
    }
}
