//! Queries on the `tokens` table.

use super::sql::{Conn, Optional, Result, Row};
use crate::args;

use crate::domain::tokens::{scopes_from_text, scopes_to_text, Scope, TokenHash};

/// `last_used_at` is written at most this often per token, so reads stay reads.
pub(crate) const LAST_USED_RESOLUTION_MS: i64 = 60_000;

#[derive(Debug, Clone)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// The columns `from_row` reads, in its order; a macro, so statements are built at compile time.
macro_rules! columns {
    () => {
        "id, name, scopes, created_at, expires_at, last_used_at, revoked_at"
    };
}

fn from_row(r: &Row<'_>) -> Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        scopes: scopes_from_text(&r.get::<String>(2)?),
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

pub fn insert(conn: &Conn, t: &TokenRow, hash: &TokenHash) -> Result<()> {
    conn.exec("INSERT INTO tokens (id, name, hash, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        args![t.id, t.name, &hash[..], scopes_to_text(&t.scopes), t.created_at, t.expires_at],
    )?;
    Ok(())
}

pub fn list(conn: &Conn) -> Result<Vec<TokenRow>> {
    conn.rows(
        concat!(
            "SELECT ",
            columns!(),
            " FROM tokens ORDER BY created_at, id"
        ),
        args![],
        from_row,
    )
}

pub fn get(conn: &Conn, id: &str) -> Result<Option<TokenRow>> {
    conn.row(
        concat!("SELECT ", columns!(), " FROM tokens WHERE id = ?1"),
        args![id],
        from_row,
    )
    .optional()
}

/// The token with this hash, and the stored hash so the caller can compare it in constant time.
pub(crate) fn find_by_hash(conn: &Conn, hash: &TokenHash) -> Result<Option<TokenRow>> {
    conn.row(
        concat!("SELECT ", columns!(), " FROM tokens WHERE hash = ?1"),
        args![&hash[..]],
        from_row,
    )
    .optional()
}

/// Sets `revoked_at` unless already set; false when no live token has this id.
pub fn revoke(conn: &Conn, id: &str, now: i64) -> Result<bool> {
    let n = conn.exec(
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        args![id, now],
    )?;
    Ok(n > 0)
}

/// Records a use, unless one was recorded less than a minute ago.
pub(crate) fn touch(conn: &Conn, id: &str, now: i64) -> Result<()> {
    conn.exec("UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
        args![id, now, now - LAST_USED_RESOLUTION_MS],
    )?;
    Ok(())
}
