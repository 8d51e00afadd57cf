//! Queries on the `captions` table: one WebVTT text per video and language.

use rusqlite::{params, Connection, OptionalExtension};

/// A caption track as the Video object lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaptionTrack {
    pub lang: String,
    pub label: String,
}

/// Stores (or replaces) one language's captions and refreshes the video's list.
pub(crate) fn put(
    conn: &Connection,
    video_id: &str,
    track: &CaptionTrack,
    vtt: &str,
    now: i64,
) -> rusqlite::Result<()> {
    super::exec(
        conn,
        "INSERT INTO captions (video_id, lang, label, vtt, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (video_id, lang) DO UPDATE SET label = ?3, vtt = ?4, updated_at = ?5",
        params![video_id, track.lang, track.label, vtt, now],
    )?;
    refresh(conn, video_id, now)
}

/// Removes one language's captions; false when there were none.
pub(crate) fn remove(
    conn: &Connection,
    video_id: &str,
    lang: &str,
    now: i64,
) -> rusqlite::Result<bool> {
    let n = super::exec(
        conn,
        "DELETE FROM captions WHERE video_id = ?1 AND lang = ?2",
        params![video_id, lang],
    )?;
    refresh(conn, video_id, now)?;
    Ok(n > 0)
}

/// The text and its time of one language's captions.
pub(crate) fn get(
    conn: &Connection,
    video_id: &str,
    lang: &str,
) -> rusqlite::Result<Option<(String, i64)>> {
    super::row(
        conn,
        "SELECT vtt, updated_at FROM captions WHERE video_id = ?1 AND lang = ?2",
        params![video_id, lang],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Writes the video's list of tracks (by language) into its row, for the Video object.
fn refresh(conn: &Connection, video_id: &str, now: i64) -> rusqlite::Result<()> {
    let mut stmt =
        conn.prepare_cached("SELECT lang, label FROM captions WHERE video_id = ?1 ORDER BY lang")?;
    let tracks: Vec<CaptionTrack> = stmt
        .query_map([video_id], |r| {
            Ok(CaptionTrack {
                lang: r.get(0)?,
                label: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let list = (!tracks.is_empty()).then(|| serde_json::to_string(&tracks).unwrap_or_default());
    super::exec(
        conn,
        "UPDATE videos SET captions = ?2, updated_at = ?3 WHERE id = ?1",
        params![video_id, list, now],
    )?;
    Ok(())
}
