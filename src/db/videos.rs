//! Queries on the `videos` table.

use super::sql::{Conn, Optional, Result, Row};
use crate::args;

/// Where a video is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoStatus {
    /// No object yet.
    Pending,
    /// Its object is stored and public.
    Ready,
    /// Being deleted: invisible to the API, finished at start-up if a crash interrupted it.
    Deleting,
}

impl VideoStatus {
    /// The word stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoStatus::Pending => "pending",
            VideoStatus::Ready => "ready",
            VideoStatus::Deleting => "deleting",
        }
    }
}

impl super::sql::Arg for VideoStatus {
    fn value(&self) -> super::sql::Value<'_> {
        super::sql::Value::Text(self.as_str())
    }
}

impl super::sql::Column for VideoStatus {
    fn from_cell(cell: super::sql::Value<'_>) -> std::result::Result<Self, String> {
        match <String as super::sql::Column>::from_cell(cell)?.as_str() {
            "pending" => Ok(VideoStatus::Pending),
            "ready" => Ok(VideoStatus::Ready),
            "deleting" => Ok(VideoStatus::Deleting),
            other => Err(format!("unknown video status {other:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct VideoRow {
    pub id: String,
    pub title: Option<String>,
    pub file_name: String,
    pub source: String,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub duration: Option<f64>,
    pub status: VideoStatus,
    /// The name of the stored object under `objects/ID/composite/`, once uploaded.
    pub object_name: Option<String>,
    pub size: Option<i64>,
    pub content_type: Option<String>,
    pub sha256: Option<String>,
    /// `passwords::hash` output; `None` when the video is public.
    pub password_hash: Option<String>,
    /// The stored embed settings as JSON (only the keys ever set); `None` for all defaults.
    pub embed_settings: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Position in creation order: the paging cursor.
    pub seq: i64,
    /// What the probe learnt of the object, as JSON; `None` before an upload.
    pub media: Option<String>,
    /// The caption tracks (`[{lang, label}]`) as JSON; `None` when there are none.
    pub captions: Option<String>,
    /// Posters, renditions and their jobs (`db::jobs::Derived`) as JSON; `None` when none.
    pub derived: Option<String>,
    /// With `[s3]`: the object's key in the bucket (`storage::Bucket::object_key`).
    pub object_key: Option<String>,
}

/// The columns `from_row` reads, in its order; a macro, so statements are built at compile time.
macro_rules! columns {
    () => {
        "id, title, file_name, source, width, height, duration, status, object_name, \
         size, content_type, sha256, password_hash, embed_settings, created_at, updated_at, seq, \
         media, captions, derived, object_key"
    };
}

fn from_row(r: &Row<'_>) -> Result<VideoRow> {
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
        password_hash: r.get(12)?,
        embed_settings: r.get(13)?,
        created_at: r.get(14)?,
        updated_at: r.get(15)?,
        seq: r.get(16)?,
        media: r.get(17)?,
        captions: r.get(18)?,
        derived: r.get(19)?,
        object_key: r.get(20)?,
    })
}

/// Inserts a new video; `None` when the id is taken, else its `seq`.
pub fn insert(conn: &Conn, v: &VideoRow) -> Result<Option<i64>> {
    conn.row(
        "INSERT INTO videos (id, title, file_name, source, width, height, duration, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT (id) DO NOTHING RETURNING seq",
        args![
            v.id, v.title, v.file_name, v.source, v.width, v.height, v.duration, v.status,
            v.created_at, v.updated_at
        ],
        |r| r.get(0),
    )
    .optional()
}

/// A visible video (not one being deleted).
pub fn get(conn: &Conn, id: &str) -> Result<Option<VideoRow>> {
    conn.row(
        concat!(
            "SELECT ",
            columns!(),
            " FROM videos WHERE id = ?1 AND status <> 'deleting'"
        ),
        args![id],
        from_row,
    )
    .optional()
}

/// When a visible video was created; `None` when there is none.
pub fn created_at(conn: &Conn, id: &str) -> Result<Option<i64>> {
    conn.row(
        "SELECT created_at FROM videos WHERE id = ?1 AND status <> 'deleting'",
        args![id],
        |r| r.get(0),
    )
    .optional()
}

pub fn exists(conn: &Conn, id: &str) -> Result<bool> {
    conn.row(
        "SELECT EXISTS (SELECT 1 FROM videos WHERE id = ?1 AND status <> 'deleting')",
        args![id],
        |r| r.get(0),
    )
}

/// Up to `limit` visible videos, newest first, created before the one at `before` (a `seq`).
pub fn page(conn: &Conn, before: Option<i64>, limit: u32) -> Result<Vec<VideoRow>> {
    conn.rows(
        concat!(
            "SELECT ",
            columns!(),
            " FROM videos WHERE status <> 'deleting' AND seq < ?1 ORDER BY seq DESC LIMIT ?2"
        ),
        args![before.unwrap_or(i64::MAX), limit],
        from_row,
    )
}

pub(crate) fn set_title(conn: &Conn, id: &str, title: &str, now: i64) -> Result<()> {
    conn.exec(
        "UPDATE videos SET title = ?2, updated_at = ?3 WHERE id = ?1",
        args![id, title, now],
    )?;
    Ok(())
}

pub(crate) fn set_password_hash(conn: &Conn, id: &str, hash: Option<&str>, now: i64) -> Result<()> {
    conn.exec(
        "UPDATE videos SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        args![id, hash, now],
    )?;
    Ok(())
}

pub(crate) fn set_embed_settings(conn: &Conn, id: &str, json: &str, now: i64) -> Result<()> {
    conn.exec(
        "UPDATE videos SET embed_settings = ?2, updated_at = ?3 WHERE id = ?1",
        args![id, json, now],
    )?;
    Ok(())
}

/// First step of a deletion: the video disappears from the API and its upload URLs die. The
/// caller makes it atomic (`Db::write`). False when there was no such visible video.
pub fn begin_delete(conn: &Conn, id: &str, now: i64) -> Result<bool> {
    let n = conn.exec("UPDATE videos SET status = 'deleting', updated_at = ?2 WHERE id = ?1 AND status <> 'deleting'",
        args![id, now],
    )?;
    conn.exec("DELETE FROM uploads WHERE video_id = ?1", args![id])?;
    // A job running for it sees its row gone at its next progress report, and stops.
    conn.exec("DELETE FROM media_jobs WHERE video_id = ?1", args![id])?;
    conn.exec("DELETE FROM assets WHERE video_id = ?1", args![id])?;
    Ok(n > 0)
}

/// Last step of a deletion, once the files are gone.
pub(crate) fn finish_delete(conn: &Conn, id: &str) -> Result<()> {
    conn.exec(
        "DELETE FROM videos WHERE id = ?1 AND status = 'deleting'",
        args![id],
    )?;
    conn.exec("DELETE FROM captions WHERE video_id = ?1", args![id])?;
    Ok(())
}

/// Deletions that a crash interrupted.
pub(crate) fn unfinished_deletes(conn: &Conn) -> Result<Vec<String>> {
    conn.rows(
        "SELECT id FROM videos WHERE status = 'deleting'",
        args![],
        |r| r.get(0),
    )
}

/// Records a stored object: the video becomes `ready` with its size, type and digest, and its
/// `fileName` is the object's name (one video, one object).
/// What publication records of a stored object.
pub(crate) struct Stored<'a> {
    pub object_name: &'a str,
    pub size: u64,
    pub content_type: &'a str,
    pub sha256: &'a str,
    /// The probe's answer as JSON, and the duration and size it found: they fill the API's
    /// `duration`, `width` and `height` where the client gave none.
    pub media: &'a str,
    pub duration: Option<f64>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    /// With `[s3]`: where the object is in the bucket.
    pub object_key: Option<&'a str>,
}

pub(crate) fn mark_ready(conn: &Conn, id: &str, s: &Stored, now: i64) -> Result<()> {
    conn.exec(
        "UPDATE videos SET status = 'ready', object_name = ?2, file_name = ?2, size = ?3,
         content_type = ?4, sha256 = ?5, updated_at = ?6, media = ?7,
         duration = COALESCE(duration, ?8), width = COALESCE(width, ?9),
         height = COALESCE(height, ?10), object_key = ?11 WHERE id = ?1",
        args![
            id,
            s.object_name,
            s.size as i64,
            s.content_type,
            s.sha256,
            now,
            s.media,
            s.duration,
            s.width,
            s.height,
            s.object_key
        ],
    )?;
    Ok(())
}

/// Names where a video's object is in the bucket (`flare migrate-store`), if it is still
/// the object recorded with this digest.
pub(crate) fn set_object_key(conn: &Conn, id: &str, sha256: &str, key: &str) -> Result<bool> {
    let n = conn.exec(
        "UPDATE videos SET object_key = ?3 WHERE id = ?1 AND status = 'ready' AND sha256 = ?2",
        args![id, sha256, key],
    )?;
    Ok(n > 0)
}

/// Ready videos whose record names no bucket key: their objects are on this disk.
pub(crate) fn count_not_in_bucket(conn: &Conn) -> Result<u64> {
    conn.row(
        "SELECT COUNT(*) FROM videos WHERE status = 'ready' AND object_key IS NULL",
        args![],
        |r| r.get(0),
    )
}

/// Every video row, deleting ones included, for `fsck`.
pub fn all(conn: &Conn) -> Result<Vec<VideoRow>> {
    conn.rows(
        concat!("SELECT ", columns!(), " FROM videos ORDER BY seq"),
        args![],
        from_row,
    )
}

/// Back to `pending`: the record of an object that is gone.
pub(crate) fn mark_pending(conn: &Conn, id: &str, now: i64) -> Result<()> {
    conn.exec("UPDATE videos SET status = 'pending', object_name = NULL, size = NULL, content_type = NULL,
         sha256 = NULL, media = NULL, object_key = NULL, updated_at = ?2 WHERE id = ?1",
        args![id, now],
    )?;
    Ok(())
}

/// Makes the record describe the file as it is on disk.
pub(crate) fn set_size_and_digest(
    conn: &Conn,
    id: &str,
    size: u64,
    sha256: &str,
    now: i64,
) -> Result<()> {
    conn.exec(
        "UPDATE videos SET size = ?2, sha256 = ?3, updated_at = ?4 WHERE id = ?1",
        args![id, size as i64, sha256, now],
    )?;
    Ok(())
}

/// Every video that is not being deleted, in creation order (for `flare export`).
pub(crate) fn all_for_export(conn: &Conn) -> Result<Vec<VideoRow>> {
    conn.rows(
        concat!(
            "SELECT ",
            columns!(),
            " FROM videos WHERE status <> 'deleting' ORDER BY seq"
        ),
        args![],
        from_row,
    )
}

/// Inserts a whole record from another node (`flare import`): every column as given.
pub(crate) fn insert_whole(conn: &Conn, v: &VideoRow) -> Result<()> {
    conn.exec(
        "INSERT INTO videos (id, title, file_name, source, width, height, duration, status,
           object_name, size, content_type, sha256, password_hash, embed_settings, created_at,
           updated_at, media)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        args![
            v.id,
            v.title,
            v.file_name,
            v.source,
            v.width,
            v.height,
            v.duration,
            v.status,
            v.object_name,
            v.size,
            v.content_type,
            v.sha256,
            v.password_hash,
            v.embed_settings,
            v.created_at,
            v.updated_at,
            v.media
        ],
    )?;
    Ok(())
}
