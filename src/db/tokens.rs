//! Queries on the `tokens` table.

use rusqlite::{params, Connection, OptionalExtension, Row};

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

fn from_row(r: &Row) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        name: r.get(1)?,
        scopes: scopes_from_text(&r.get::<_, String>(2)?),
        created_at: r.get(3)?,
        expires_at: r.get(4)?,
        last_used_at: r.get(5)?,
        revoked_at: r.get(6)?,
    })
}

pub fn insert(conn: &Connection, t: &TokenRow, hash: &TokenHash) -> rusqlite::Result<()> {
    super::exec(conn,
        "INSERT INTO tokens (id, name, hash, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![t.id, t.name, &hash[..], scopes_to_text(&t.scopes), t.created_at, t.expires_at],
    )?;
    Ok(())
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<TokenRow>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM tokens ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<TokenRow>> {
    super::row(
        conn,
        concat!("SELECT ", columns!(), " FROM tokens WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// The token with this hash, and the stored hash so the caller can compare it in constant time.
pub(crate) fn find_by_hash(
    conn: &Connection,
    hash: &TokenHash,
) -> rusqlite::Result<Option<TokenRow>> {
    super::row(
        conn,
        concat!("SELECT ", columns!(), " FROM tokens WHERE hash = ?1"),
        [&hash[..]],
        from_row,
    )
    .optional()
}

/// Sets `revoked_at` unless already set; false when no live token has this id.
pub fn revoke(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<bool> {
    let n = super::exec(
        conn,
        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now],
    )?;
    Ok(n > 0)
}

/// Records a use, unless one was recorded less than a minute ago.
pub(crate) fn touch(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<()> {
    super::exec(conn,
        "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)",
        params![id, now, now - LAST_USED_RESOLUTION_MS],
    )?;
    Ok(())
}
