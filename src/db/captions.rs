//! Queries on the `captions` table: one WebVTT text per video and language.

use super::sql::{Conn, Optional, Result};
use crate::args;

/// A caption track as the Video object lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaptionTrack {
    pub lang: String,
    pub label: String,
}

/// Stores (or replaces) one language's captions and refreshes the video's list.
pub(crate) fn put(
    conn: &Conn,
    video_id: &str,
    track: &CaptionTrack,
    vtt: &str,
    now: i64,
) -> Result<()> {
    conn.exec(
        "INSERT INTO captions (video_id, lang, label, vtt, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (video_id, lang) DO UPDATE SET label = ?3, vtt = ?4, updated_at = ?5",
        args![video_id, track.lang, track.label, vtt, now],
    )?;
    refresh(conn, video_id, now)
}

/// Removes one language's captions; false when there were none.
pub(crate) fn remove(conn: &Conn, video_id: &str, lang: &str, now: i64) -> Result<bool> {
    let n = conn.exec(
        "DELETE FROM captions WHERE video_id = ?1 AND lang = ?2",
        args![video_id, lang],
    )?;
    refresh(conn, video_id, now)?;
    Ok(n > 0)
}

/// The text and its time of one language's captions.
pub(crate) fn get(conn: &Conn, video_id: &str, lang: &str) -> Result<Option<(String, i64)>> {
    conn.row(
        "SELECT vtt, updated_at FROM captions WHERE video_id = ?1 AND lang = ?2",
        args![video_id, lang],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
}

/// Writes the video's list of tracks (by language) into its row, for the Video object.
fn refresh(conn: &Conn, video_id: &str, now: i64) -> Result<()> {
    let tracks: Vec<CaptionTrack> = conn.rows(
        "SELECT lang, label FROM captions WHERE video_id = ?1 ORDER BY lang",
        args![video_id],
        |r| {
            Ok(CaptionTrack {
                lang: r.get(0)?,
                label: r.get(1)?,
            })
        },
    )?;
    let list = (!tracks.is_empty()).then(|| serde_json::to_string(&tracks).unwrap_or_default());
    conn.exec(
        "UPDATE videos SET captions = ?2, updated_at = ?3 WHERE id = ?1",
        args![video_id, list, now],
    )?;
    Ok(())
}
