//! Queries on the `videos` table.

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, Clone)]
pub struct VideoRow {
    pub id: String,
    pub title: Option<String>,
    pub file_name: String,
    pub source: String,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub duration: Option<f64>,
    /// `pending` or `ready`.
    pub status: String,
    /// The name of the stored object under `objects/ID/composite/`, once uploaded.
    pub object_name: Option<String>,
    pub size: Option<i64>,
    pub content_type: Option<String>,
    pub sha256: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str =
    "id, title, file_name, source, width, height, duration, status, object_name, \
                       size, content_type, sha256, created_at, updated_at";

fn from_row(r: &Row) -> rusqlite::Result<VideoRow> {
    Ok(VideoRow {
        id: r.get(0)?,
        title: r.get(1)?,
        file_name: r.get(2)?,
        source: r.get(3)?,
        width: r.get(4)?,
        height: r.get(5)?,
        duration: r.get(6)?,
        status: r.get(7)?,
        object_name: r.get(8)?,
        size: r.get(9)?,
        content_type: r.get(10)?,
        sha256: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

/// Inserts a new video; false when the id is taken.
pub fn insert(conn: &Connection, v: &VideoRow) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT INTO videos (id, title, file_name, source, width, height, duration, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING",
        params![
            v.id, v.title, v.file_name, v.source, v.width, v.height, v.duration, v.status,
            v.created_at, v.updated_at
        ],
    )?;
    Ok(n > 0)
}

pub fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<VideoRow>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM videos WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

pub fn exists(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM videos WHERE id = ?1)",
        [id],
        |r| r.get(0),
    )
}

/// Records a stored object: the video becomes `ready` with its size, type and digest.
pub fn mark_ready(
    conn: &Connection,
    id: &str,
    object_name: &str,
    size: u64,
    content_type: &str,
    sha256: &str,
    now: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE videos SET status = 'ready', object_name = ?2, size = ?3, content_type = ?4, sha256 = ?5,
         updated_at = ?6 WHERE id = ?1",
        params![id, object_name, size as i64, content_type, sha256, now],
    )?;
    Ok(())
}
