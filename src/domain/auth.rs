//! Who is asking: bearer tokens, looked up by hash. A row read from the database is reused
//! while no revocation has been noted since (`TokenCache`), so `flare token revoke` in another
//! process applies to the very next request.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;

use crate::db;
use crate::db::tokens::TokenRow;
use crate::domain::tokens::{self, Scope};
use crate::error::ApiError;
use crate::state::AppState;
use crate::time::now_ms;

/// The token behind `Authorization: Bearer …`, live and holding `scope`.
pub(crate) async fn require(
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
    if seen.is_none() {
        app.tokens.bypassed();
    }
    let found = match seen.and_then(|seen| app.tokens.get(&hash, seen)) {
        Some(hit) => Some(hit),
        None => {
            let key = hash;
            let found = app
                .db
                .read_on_executor::<_, ApiError, _>(move |conn| {
                    db::tokens::find_by_hash(conn, &key)
                })
                .await?;
            if let (Some(row), Some(seen)) = (&found, seen) {
                app.tokens.put(hash, seen, row.clone());
            }
            found
        }
    };
    // A lookup is a read; the once-a-minute `last_used_at` is the only write, and is skipped
    // while the recorded use is fresh.
    if let Some(row) = &found {
        let stale = row
            .last_used_at
            .is_none_or(|at| now - at >= db::tokens::LAST_USED_RESOLUTION_MS);
        if stale && check_live(row, now).is_ok() {
            let id = row.id.clone();
            app.db
                .write(move |conn| Ok::<_, ApiError>(db::tokens::touch(conn, &id, now)?))
                .await?;
            app.tokens.forget(&hash);
        }
    }
    // Found by its SHA-256: the lookup is the check, and a timing difference in it could only
    // tell a guesser about hashes, which need a preimage to use.
    let row = found.ok_or(ApiError::InvalidToken)?;
    check_live(&row, now)?;
    if !row.scopes.contains(&scope) {
        return Err(ApiError::MissingScope(scope));
    }
    Ok(row)
}

/// Refuses a revoked or expired token. Also applied to the token that minted an upload URL.
pub(crate) fn check_live(row: &TokenRow, now: i64) -> Result<(), ApiError> {
    if row.revoked_at.is_some() {
        return Err(ApiError::TokenRevoked);
    }
    if row.expires_at.is_some_and(|at| now >= at) {
        return Err(ApiError::TokenExpired);
    }
    Ok(())
}
