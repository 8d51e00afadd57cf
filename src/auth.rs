//! Who is asking: bearer tokens, looked up by hash. A row read from the database is reused
//! while no revocation has been noted since (`TokenCache`), so `flare token revoke` in another
//! process applies to the very next request.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;

use crate::db;
use crate::db::tokens::TokenRow;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::time::now_ms;
use crate::tokens::{self, Scope, TokenHash};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The token behind `Authorization: Bearer …`, live and holding `scope`.
pub async fn require(
    app: &AppState,
    req: &HttpRequest,
    scope: Scope,
) -> Result<TokenRow, ApiError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or(ApiError::MissingToken)?;
    let value = header.to_str().map_err(|_| ApiError::InvalidToken)?.trim();
    let presented = match value.split_once(' ') {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
        _ => return Err(ApiError::InvalidToken),
    };
    if !tokens::well_formed(presented) {
        return Err(ApiError::InvalidToken);
    }
    let hash = tokens::hash(presented);
    let now = now_ms();
    // Read before the lookup: a revocation noted after it makes the row cached below stale.
    let seen = app.db.revocations_seen();
    let found = match app.tokens.get(&hash, seen) {
        Some(hit) => Some(hit),
        None => {
            let key = hash;
            let found = app
                .db
                .read(move |conn| db::tokens::find_by_hash(conn, &key))
                .await?;
            if let Some(row) = &found {
                app.tokens.put(hash, seen, row.clone());
            }
            found
        }
    };
    // A lookup is a read; the once-a-minute `last_used_at` is the only write, and is skipped
    // while the recorded use is fresh.
    if let Some((row, _)) = &found {
        let stale = row
            .last_used_at
            .is_none_or(|at| now - at >= db::tokens::LAST_USED_RESOLUTION_MS);
        if stale && check_live(row, now).is_ok() {
            let id = row.id.clone();
            app.db
                .write(move |conn| Ok(db::tokens::touch(conn, &id, now)?))
                .await?;
            app.tokens.forget(&hash);
        }
    }
    let (row, stored) = found.ok_or(ApiError::InvalidToken)?;
    // The lookup was by hash; compare the whole digest again in constant time all the same.
    if !tokens::constant_time_eq(&stored, &hash) {
        return Err(ApiError::InvalidToken);
    }
    check_live(&row, now)?;
    if !row.scopes.contains(&scope) {
        return Err(ApiError::MissingScope(scope));
    }
    Ok(row)
}

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
    row: (TokenRow, Vec<u8>),
}

const MAX_AGE: Duration = Duration::from_secs(1);

impl TokenCache {
    fn get(&self, hash: &TokenHash, seen: (u64, u64)) -> Option<(TokenRow, Vec<u8>)> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let hit = map.get(hash)?;
        (hit.seen == seen && hit.read_at.elapsed() < MAX_AGE).then(|| hit.row.clone())
    }

    fn put(&self, hash: TokenHash, seen: (u64, u64), row: (TokenRow, Vec<u8>)) {
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

    fn forget(&self, hash: &TokenHash) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(hash);
    }
}

/// Refuses a revoked or expired token. Also applied to the token that minted an upload URL.
pub fn check_live(row: &TokenRow, now: i64) -> Result<(), ApiError> {
    if row.revoked_at.is_some() {
        return Err(ApiError::TokenRevoked);
    }
    if row.expires_at.is_some_and(|at| now >= at) {
        return Err(ApiError::TokenExpired);
    }
    Ok(())
}
