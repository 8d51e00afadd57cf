//! Queries on the `publications` table: uploads whose record is committed and whose staged file
//! is still to be renamed into place. A row lives for the few milliseconds of that rename, or
//! until the next start when a crash came between the two.

use super::sql::{Conn, Result};
use crate::args;

#[derive(Debug, Clone)]
pub struct Publication {
    /// The staged file's name in `tmp/`.
    pub temp_name: String,
    pub video_id: String,
    pub object_name: String,
    /// The video's previous object, removed once the new one is in place.
    pub replaces: Option<String>,
    /// With `[s3]`: the bucket key of the video's previous object, removed after the commit.
    pub replaced_key: Option<String>,
}

pub fn insert(conn: &Conn, p: &Publication) -> Result<()> {
    conn.exec(
        "INSERT INTO publications (temp_name, video_id, object_name, replaces, replaced_key) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![
            p.temp_name,
            p.video_id,
            p.object_name,
            p.replaces,
            p.replaced_key
        ],
    )?;
    Ok(())
}

pub fn remove(conn: &Conn, temp_name: &str) -> Result<()> {
    conn.exec(
        "DELETE FROM publications WHERE temp_name = ?1",
        args![temp_name],
    )?;
    Ok(())
}

/// Every unfinished publication, oldest first: the order they were committed in.
pub fn all(conn: &Conn) -> Result<Vec<Publication>> {
    conn.rows(
        // PostgreSQL has no rowid: its table has a `seq` column instead (`postgres::ddl`).
        if conn.is_postgres() {
            "SELECT temp_name, video_id, object_name, replaces, replaced_key FROM publications \
             ORDER BY seq"
        } else {
            "SELECT temp_name, video_id, object_name, replaces, replaced_key FROM publications \
             ORDER BY rowid"
        },
        args![],
        |r| {
            Ok(Publication {
                temp_name: r.get(0)?,
                video_id: r.get(1)?,
                object_name: r.get(2)?,
                replaces: r.get(3)?,
                replaced_key: r.get(4)?,
            })
        },
    )
}
