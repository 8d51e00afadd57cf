//! Queries on the `uploads` table: one row per signed upload URL.

use rusqlite::{params, Connection, OptionalExtension, Row};

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
            ", session_offset, session_length, session_protocol, session_metadata, session_until"
        )
    };
}

fn from_row(r: &Row) -> rusqlite::Result<UploadRow> {
    Ok(UploadRow {
        id: r.get(0)?,
        video_id: r.get(1)?,
        file_name: r.get(2)?,
        content_type: r.get(3)?,
        byte_limit: r.get::<_, i64>(4)? as u64,
        exact_size: r.get(5)?,
        token_id: r.get(6)?,
        created_at: r.get(7)?,
        expires_at: r.get(8)?,
        completed_at: r.get(9)?,
        session: match r.get::<_, Option<i64>>(10)? {
            None => None,
            Some(offset) => Some(Session {
                offset: offset as u64,
                length: r.get::<_, Option<i64>>(11)?.map(|n| n as u64),
                protocol: r.get::<_, Option<String>>(12)?.unwrap_or_default(),
                metadata: r.get(13)?,
                until: r.get::<_, Option<i64>>(14)?.unwrap_or(0),
            }),
        },
    })
}

pub fn insert(conn: &Connection, u: &UploadRow) -> rusqlite::Result<()> {
    insert_with(conn, INSERT, u)
}

const INSERT: &str = concat!(
    "INSERT INTO uploads (",
    insert_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
);

fn insert_with(conn: &Connection, sql: &str, u: &UploadRow) -> rusqlite::Result<()> {
    super::exec(
        conn,
        sql,
        params![
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

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<UploadRow>> {
    super::row(
        conn,
        concat!("SELECT ", columns!(), " FROM uploads WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// Spends the URL, writing its row when it had none yet; false when it was already spent.
pub fn spend(conn: &Connection, u: &UploadRow, now: i64) -> rusqlite::Result<bool> {
    insert_if_absent(conn, u)?;
    let n = super::exec(
        conn,
        "UPDATE uploads SET completed_at = ?2 WHERE id = ?1 AND completed_at IS NULL",
        params![u.id, now],
    )?;
    Ok(n > 0)
}

/// The row of a URL presigned without a size, written at its first request (`insert` at presign
/// for one with a size). Nothing when it is there already.
pub fn insert_if_absent(conn: &Connection, u: &UploadRow) -> rusqlite::Result<()> {
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
pub fn start_session(conn: &Connection, id: &str, s: &Session) -> rusqlite::Result<bool> {
    let n = super::exec(
        conn,
        "UPDATE uploads SET session_offset = ?2, session_length = ?3, session_protocol = ?4, \
         session_metadata = ?5, session_until = ?6 \
         WHERE id = ?1 AND completed_at IS NULL AND session_offset IS NULL",
        params![
            id,
            s.offset as i64,
            s.length.map(|n| n as i64),
            s.protocol,
            s.metadata,
            s.until
        ],
    )?;
    Ok(n > 0)
}

/// Records bytes made durable (and a length declared late); false when the session is gone.
pub fn advance_session(
    conn: &Connection,
    id: &str,
    from: u64,
    to: u64,
    length: Option<u64>,
) -> rusqlite::Result<bool> {
    let n = super::exec(
        conn,
        "UPDATE uploads SET session_offset = ?3, session_length = COALESCE(?4, session_length) \
         WHERE id = ?1 AND completed_at IS NULL AND session_offset = ?2",
        params![id, from as i64, to as i64, length.map(|n| n as i64)],
    )?;
    Ok(n > 0)
}

/// Ends a session without storing anything (cancelled, expired, or its bytes lost): the URL is
/// unspent and a new session may start while it is still valid.
pub fn end_session(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    super::exec(
        conn,
        "UPDATE uploads SET session_offset = NULL, session_length = NULL, session_protocol = NULL, \
         session_metadata = NULL, session_until = NULL WHERE id = ?1",
        [id],
    )?;
    Ok(())
}

/// Live sessions (unspent), with their rows; `expired_before`: only those whose window ended.
pub fn sessions(
    conn: &Connection,
    expired_before: Option<i64>,
) -> rusqlite::Result<Vec<UploadRow>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM uploads WHERE session_offset IS NOT NULL AND completed_at IS NULL \
          AND session_until < ?1"
    ))?;
    let rows = stmt.query_map([expired_before.unwrap_or(i64::MAX)], from_row)?;
    rows.collect()
}

/// Upload URLs never used and expired before `before` (a resumable session counts as use until
/// its window ends).
pub fn stale(conn: &Connection, before: i64) -> rusqlite::Result<Vec<UploadRow>> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        columns!(),
        " FROM uploads WHERE completed_at IS NULL AND expires_at < ?1 \
          AND (session_offset IS NULL OR session_until < ?1) ORDER BY created_at"
    ))?;
    let rows = stmt.query_map([before], from_row)?;
    rows.collect()
}

pub fn remove(conn: &Connection, id: &str) -> rusqlite::Result<()> {
    super::exec(conn, "DELETE FROM uploads WHERE id = ?1", [id])?;
    Ok(())
}

/// Bytes promised to upload URLs that declared a size and are still open.
const DECLARED_OPEN_BYTES: &str = "SELECT COALESCE(SUM(byte_limit), 0) FROM uploads \
     WHERE exact_size = 1 AND completed_at IS NULL AND expires_at > ?1";

pub(crate) fn declared_open_bytes(conn: &Connection, now: i64) -> rusqlite::Result<u64> {
    super::row(conn, DECLARED_OPEN_BYTES, [now], |r| r.get::<_, i64>(0)).map(|n| n as u64)
}

/// Until when URLs presigned without a size may be open (ms).
pub fn signed_until(conn: &Connection) -> rusqlite::Result<i64> {
    super::row(
        conn,
        "SELECT until_ms FROM signed_until WHERE id = 1",
        [],
        |r| r.get(0),
    )
}

/// Raises `signed_until` to `at` (never lowers it); the value now stored.
pub fn raise_signed_until(conn: &Connection, at: i64) -> rusqlite::Result<i64> {
    super::row(
        conn,
        "UPDATE signed_until SET until_ms = max(until_ms, ?1) WHERE id = 1 RETURNING until_ms",
        [at],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn row(id: &str, size: Option<u64>, expires_at: i64) -> UploadRow {
        UploadRow {
            id: id.into(),
            video_id: "vid_a".into(),
            file_name: "a.mp4".into(),
            content_type: "video/mp4".into(),
            byte_limit: size.unwrap_or(1 << 40),
            exact_size: size.is_some(),
            token_id: "tok_a".into(),
            created_at: 0,
            expires_at,
            completed_at: None,
            session: None,
        }
    }

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
                let plan: Vec<String> = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {DECLARED_OPEN_BYTES}"))?
                    .query_map([1_000], |r| r.get(3))?
                    .collect::<Result<_, _>>()?;
                Ok::<_, rusqlite::Error>((sum, plan.join("; ")))
            })
            .unwrap();
        assert_eq!(sum, 120);
        assert!(
            plan.starts_with("SEARCH uploads USING INDEX uploads_open_declared"),
            "the sum reads the whole table: {plan}"
        );
    }
}
