//! Token rows kept in memory between requests, and when they may no longer be used.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::tokens::TokenRow;
use crate::domain::tokens::TokenHash;

/// Token rows found by hash, kept so that a request does not pay a database read transaction
/// (a sixth of a presign's CPU time, `bench/profile.sh presign`). A row is used only while no
/// revocation has been noted since it was read (`Db::note_tokens_revoked`, which `flare token
/// revoke` calls after its commit; checked with one `fstat` per request) and for at most
/// `MAX_AGE`, which bounds what a change made any other way could go unseen. Only tokens that
/// exist are kept, so unknown ones cannot fill it; expiry is checked on every use.
#[derive(Default)]
pub struct TokenCache(Mutex<HashMap<TokenHash, Cached>>);

struct Cached {
    seen: (u64, u64),
    read_at: Instant,
    row: TokenRow,
}

const MAX_AGE: Duration = Duration::from_secs(1);

impl TokenCache {
    pub(crate) fn get(&self, hash: &TokenHash, seen: (u64, u64)) -> Option<TokenRow> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let found = map
            .get(hash)
            .filter(|hit| hit.seen == seen && hit.read_at.elapsed() < MAX_AGE)
            .map(|hit| hit.row.clone());
        let result = if found.is_some() { "hit" } else { "miss" };
        crate::metrics::METRICS
            .token_cache
            .get_or_create(&crate::metrics::ResultLabel {
                result: result.into(),
            })
            .inc();
        found
    }

    /// Counts a lookup made without the cache (on PostgreSQL, where none is kept).
    pub(crate) fn bypassed(&self) {
        crate::metrics::METRICS
            .token_cache
            .get_or_create(&crate::metrics::ResultLabel {
                result: "off".into(),
            })
            .inc();
    }

    pub(crate) fn put(&self, hash: TokenHash, seen: (u64, u64), row: TokenRow) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // Rows of other tokens read under an older revocation count are dead weight.
        map.retain(|_, c| c.seen == seen);
        map.insert(
            hash,
            Cached {
                seen,
                read_at: Instant::now(),
                row,
            },
        );
    }

    pub(crate) fn forget(&self, hash: &TokenHash) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }
}
