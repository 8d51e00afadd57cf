//! Who is asking: bearer tokens checked against the database on every request (a point read on
//! the calling thread, see `Db::read`), so a revocation
//! made by `flare token revoke` in another process applies to the very next request.

use actix_web::http::header::AUTHORIZATION;
use actix_web::HttpRequest;

use crate::db;
use crate::db::tokens::TokenRow;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::time::now_ms;
use crate::tokens::{self, Scope};

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
    // A lookup is a read; the once-a-minute `last_used_at` is the only write, and is skipped
    // while the recorded use is fresh.
    let found = app
        .db
        .read(move |conn| db::tokens::find_by_hash(conn, &hash))
        .await?;
    if let Some((row, _)) = &found {
        let stale = row
            .last_used_at
            .is_none_or(|at| now - at >= db::tokens::LAST_USED_RESOLUTION_MS);
        if stale && check_live(row, now).is_ok() {
            let id = row.id.clone();
            app.db
                .write(move |conn| Ok(db::tokens::touch(conn, &id, now)?))
                .await?;
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
