//! Queries on the `uploads` table: one row per signed upload URL.

use super::sql::{Conn, Optional, Result, Row};
use crate::args;

#[derive(Debug, Clone)]
pub struct UploadRow {
    pub id: String,
    pub video_id: String,
    pub file_name: String,
    pub content_type: String,
    pub byte_limit: u64,
    pub exact_size: bool,
    pub token_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    /// Set by the PUT that stored the object; the URL is spent from then on.
    pub completed_at: Option<i64>,
    /// A resumable session, once one has started.
    pub session: Option<Session>,
}

/// A resumable upload's session: what is durable, and what the client declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Bytes durable in the session's part file.
    pub offset: u64,
    /// The whole upload's length, once declared.
    pub length: Option<u64>,
    /// `tus`, `ietf-6` or `ietf-8`: the protocol that started it.
    pub protocol: String,
    /// tus `Upload-Metadata`, as sent (echoed by HEAD).
    pub metadata: Option<String>,
    /// Milliseconds: the session and its part file are swept after this.
    pub until: i64,
    /// With a bucket: where its bytes are (`storage`'s record of its multipart upload).
    pub stored: Option<String>,
}

/// The columns an insert writes (a session starts later, by `start_session`).
macro_rules! insert_columns {
    () => {
        "id, video_id, file_name, content_type, byte_limit, exact_size, token_id, \
         created_at, expires_at, completed_at"
    };
}

/// The columns `from_row` reads, in its order; a macro, so statements are built at compile time.
macro_rules! columns {
    () => {
        concat!(
            insert_columns!(),
            ", session_offset, session_length, session_protocol, session_metadata, session_until, \
             session_store"
        )
    };
}

fn from_row(r: &Row<'_>) -> Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        video_id: r.get(1)?,
        file_name: r.get(2)?,
        content_type: r.get(3)?,
        byte_limit: r.get::<i64>(4)? as u64,
        exact_size: r.get(5)?,
        token_id: r.get(6)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        completed_at: r.get(9)?,
        session: match r.get::<Option<i64>>(10)? {
            None => None,
            Some(offset) => Some(Session {
                offset: offset as u64,
                length: r.get::<Option<i64>>(11)?.map(|n| n as u64),
                protocol: r.get::<Option<String>>(12)?.unwrap_or_default(),
                metadata: r.get(13)?,
                until: r.get::<Option<i64>>(14)?.unwrap_or(0),
                stored: r.get(15)?,
            }),
        },
    })
}

pub fn insert(conn: &Conn, u: &UploadRow) -> Result<()> {
    insert_with(conn, INSERT, u)
}

const INSERT: &str = concat!(
    "INSERT INTO uploads (",
    insert_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
);

fn insert_with(conn: &Conn, sql: &str, u: &UploadRow) -> Result<()> {
    conn.exec(
        sql,
        args![
            u.id,
            u.video_id,
            u.file_name,
            u.content_type,
            u.byte_limit as i64,
            u.exact_size,
            u.token_id,
            u.created_at,
            u.expires_at,
            u.completed_at
        ],
    )?;
    Ok(())
}

pub fn get(conn: &Conn, id: &str) -> Result<Option<UploadRow>> {
    conn.row(
        concat!("SELECT ", columns!(), " FROM uploads WHERE id = ?1"),
        args![id],
        from_row,
    )
    .optional()
}

/// Spends the URL, writing its row when it had none yet; false when it was already spent.
pub fn spend(conn: &Conn, u: &UploadRow, now: i64) -> Result<bool> {
    insert_if_absent(conn, u)?;
    let n = conn.exec(
        "UPDATE uploads SET completed_at = ?2 WHERE id = ?1 AND completed_at IS NULL",
        args![u.id, now],
    )?;
    Ok(n > 0)
}

/// The row of a URL presigned without a size, written at its first request (`insert` at presign
/// for one with a size). Nothing when it is there already.
pub fn insert_if_absent(conn: &Conn, u: &UploadRow) -> Result<()> {
    insert_with(
        conn,
        concat!(
            "INSERT INTO uploads (",
            insert_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING"
        ),
        u,
    )
}

/// Starts a resumable session at offset 0; false when the URL is spent or one already started.
pub fn start_session(conn: &Conn, id: &str, s: &Session) -> Result<bool> {
    let n = conn.exec(
        "UPDATE uploads SET session_offset = ?2, session_length = ?3, session_protocol = ?4, \
         session_metadata = ?5, session_until = ?6, session_store = ?7 \
         WHERE id = ?1 AND completed_at IS NULL AND session_offset IS NULL",
        args![
            id,
            s.offset as i64,
            s.length.map(|n| n as i64),
            s.protocol,
            s.metadata,
            s.until,
            s.stored
        ],
    )?;
    Ok(n > 0)
}

/// Records bytes made durable (and a length declared late, and with a bucket where the bytes
/// now are); false when the session is gone or another request moved it first.
pub fn advance_session(
    conn: &Conn,
    id: &str,
    from: u64,
    to: u64,
    length: Option<u64>,
    stored: Option<&str>,
) -> Result<bool> {
    let n = conn.exec(
        "UPDATE uploads SET session_offset = ?3, session_length = COALESCE(?4, session_length), \
         session_store = COALESCE(?5, session_store) \
         WHERE id = ?1 AND completed_at IS NULL AND session_offset = ?2",
        args![id, from as i64, to as i64, length.map(|n| n as i64), stored],
    )?;
    Ok(n > 0)
}

/// Ends a session without storing anything (cancelled, expired, or its bytes lost): the URL is
/// unspent and a new session may start while it is still valid.
pub fn end_session(conn: &Conn, id: &str) -> Result<()> {
    conn.exec("UPDATE uploads SET session_offset = NULL, session_length = NULL, session_protocol = NULL, \
         session_metadata = NULL, session_until = NULL, session_store = NULL WHERE id = ?1",
        args![id],
    )?;
    Ok(())
}

/// Live sessions (unspent), with their rows; `expired_before`: only those whose window ended.
pub fn sessions(conn: &Conn, expired_before: Option<i64>) -> Result<Vec<UploadRow>> {
    conn.rows(
        concat!(
            "SELECT ",
            columns!(),
            " FROM uploads WHERE session_offset IS NOT NULL AND completed_at IS NULL \
          AND session_until < ?1"
        ),
        args![expired_before.unwrap_or(i64::MAX)],
        from_row,
    )
}

/// With a bucket: where the live sessions of one video keep their bytes (to abort their
/// multipart uploads when the video is deleted).
pub fn session_stores_of(conn: &Conn, video_id: &str) -> Result<Vec<(String, String)>> {
    conn.rows(
        "SELECT id, session_store FROM uploads WHERE video_id = ?1 AND completed_at IS NULL \
         AND session_store IS NOT NULL",
        args![video_id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
}

/// Upload URLs never used and expired before `before` (a resumable session counts as use until
/// its window ends).
pub fn stale(conn: &Conn, before: i64) -> Result<Vec<UploadRow>> {
    conn.rows(
        concat!(
            "SELECT ",
            columns!(),
            " FROM uploads WHERE completed_at IS NULL AND expires_at < ?1 \
          AND (session_offset IS NULL OR session_until < ?1) ORDER BY created_at"
        ),
        args![before],
        from_row,
    )
}

pub fn remove(conn: &Conn, id: &str) -> Result<()> {
    conn.exec("DELETE FROM uploads WHERE id = ?1", args![id])?;
    Ok(())
}

/// Bytes promised to upload URLs that declared a size and are still open.
const DECLARED_OPEN_BYTES: &str =
    "SELECT CAST(COALESCE(SUM(byte_limit), 0) AS BIGINT) FROM uploads \
     WHERE exact_size = 1 AND completed_at IS NULL AND expires_at > ?1";

pub(crate) fn declared_open_bytes(conn: &Conn, now: i64) -> Result<u64> {
    conn.row(DECLARED_OPEN_BYTES, args![now], |r| r.get::<i64>(0))
        .map(|n| n as u64)
}

/// Until when URLs presigned without a size may be open (ms).
pub fn signed_until(conn: &Conn) -> Result<i64> {
    conn.row(
        "SELECT until_ms FROM signed_until WHERE id = 1",
        args![],
        |r| r.get(0),
    )
}

/// Raises `signed_until` to `at` (never lowers it); the value now stored.
pub fn raise_signed_until(conn: &Conn, at: i64) -> Result<i64> {
    conn.row(
        "UPDATE signed_until SET until_ms = CASE WHEN until_ms > ?1 THEN until_ms ELSE ?1 END \
         WHERE id = 1 RETURNING until_ms",
        args![at],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    use crate::db::conformance::upload as row;

    #[test]
    fn open_declared_bytes_count_only_open_sized_urls_through_their_index() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("flare.db")).unwrap();
        let (sum, plan) = db
            .blocking(|c| {
                insert(c, &row("up_open", Some(100), 2_000))?;
                insert(c, &row("up_open2", Some(20), 3_000))?;
                insert(c, &row("up_spent", Some(4_000), 2_000))?;
                assert!(spend(c, &row("up_spent", Some(4_000), 2_000), 500)?);
                // A URL without a row yet gets one, spent; a second spend finds it spent.
                assert!(spend(c, &row("up_lazy", None, 2_000), 500)?);
                assert!(!spend(c, &row("up_lazy", None, 2_000), 600)?);
                insert(c, &row("up_expired", Some(50_000), 900))?;
                insert(c, &row("up_unsized", None, 2_000))?;
                let sum = declared_open_bytes(c, 1_000)?;
                let plan: Vec<String> = c.rows(
                    &format!("EXPLAIN QUERY PLAN {DECLARED_OPEN_BYTES}"),
                    args![1_000],
                    |r| r.get(3),
                )?;
                Ok::<_, crate::db::sql::Error>((sum, plan.join("; ")))
            })
            .unwrap();
        assert_eq!(sum, 120);
        assert!(
            plan.starts_with("SEARCH uploads USING INDEX uploads_open_declared"),
            "the sum reads the whole table: {plan}"
        );
    }
}
