//! `flare migrate-store`: a single box's records (`DATA_DIR/flare.db`) copied into the
//! PostgreSQL of `database_url`, and its objects (`DATA_DIR/objects`) into the S3 bucket of
//! `[s3]`, so that a site moves to several nodes without uploading anything again.
//!
//! Records first, in one PostgreSQL transaction: every row of every table, each inserted unless
//! a row with its key is there already, so a second run adds only what the first did not.
//!
//! Each ready video whose record names no bucket key yet is copied to
//! `VIDEO_ID/composite/migrated/FILE`, hashed on the way: the object is completed only when the
//! bytes match the recorded SHA-256, and only then does the record name it. Stopped halfway, a
//! second run skips what is done and writes the rest again (the key is the same, and an object
//! no record names is what fsck reports). Nothing under `objects/` is touched.

use serde::Serialize;

use crate::db;
use crate::db::videos::VideoStatus;
use crate::state::AppState;
use crate::storage::{Bucket, ObjectKey};

/// The tables copied into PostgreSQL (every one but `publications`, which must be empty, and
/// `signed_until`, raised to the copied value).
const TABLES: &[&str] = &[
    "tokens",
    "videos",
    "uploads",
    "captions",
    "media_jobs",
    "assets",
    "webhook_deliveries",
    "webhooks",
];

/// The columns PostgreSQL numbers itself: moved past the copied values.
const IDENTITIES: &[(&str, &str)] = &[
    ("videos", "seq"),
    ("media_jobs", "id"),
    ("webhook_deliveries", "id"),
];

/// Copies every record of `data_dir`'s flare.db into `db` (PostgreSQL); the rows added, or
/// `None` when there is no flare.db (the records are in PostgreSQL already).
/// The server should be stopped: what it writes to flare.db meanwhile is not copied.
pub fn copy_records(data_dir: &std::path::Path, db: &db::Db) -> Result<Option<usize>, String> {
    use rusqlite::types::Value as Owned;
    let path = data_dir.join("flare.db");
    if !path.is_file() {
        return Ok(None);
    }
    let src =
        rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| format!("cannot read {}: {e}", crate::datadir::shown(&path)))?;
    let sqlite = |e: rusqlite::Error| format!("cannot read flare.db: {e}");
    let version: usize = src
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sqlite)?;
    if version != db::SCHEMA_VERSION {
        return Err(format!(
            "flare.db is at schema version {version}, and this flare copies version {}: start \
             this flare's `flare serve` on the folder once without database_url (it migrates \
             flare.db), stop it, and run migrate-store again",
            db::SCHEMA_VERSION
        ));
    }
    let unfinished: i64 = src
        .query_row("SELECT COUNT(*) FROM publications", [], |r| r.get(0))
        .map_err(sqlite)?;
    if unfinished > 0 {
        return Err(
            "flare.db holds an unfinished publication: start `flare serve` on the folder once \
             without database_url (it finishes it), stop it, and run migrate-store again"
                .into(),
        );
    }
    let mut tables = Vec::new();
    for table in TABLES {
        let columns: Vec<String> = src
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(sqlite)?;
        let rows: Vec<Vec<Owned>> = src
            .prepare(&format!("SELECT {} FROM {table}", columns.join(", ")))
            .and_then(|mut st| {
                st.query_map([], |r| (0..columns.len()).map(|i| r.get(i)).collect())?
                    .collect()
            })
            .map_err(sqlite)?;
        tables.push((table, columns, rows));
    }
    let signed_until = src
        .query_row("SELECT until_ms FROM signed_until WHERE id = 1", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(sqlite)?;
    db.blocking(|conn| {
        conn.transaction(|c| {
            let mut added = 0;
            for (table, columns, rows) in &tables {
                let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
                let insert = format!(
                    "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                    columns.join(", "),
                    marks.join(", ")
                );
                for row in rows {
                    let values: Vec<db::sql::Value<'_>> = row
                        .iter()
                        .map(|v| match v {
                            Owned::Null => db::sql::Value::Null,
                            Owned::Integer(i) => db::sql::Value::Int(*i),
                            Owned::Real(f) => db::sql::Value::Real(*f),
                            Owned::Text(t) => db::sql::Value::Text(t),
                            Owned::Blob(b) => db::sql::Value::Blob(b),
                        })
                        .collect();
                    added += c.exec(&insert, &values)?;
                }
            }
            if c.is_postgres() {
                for (table, column) in IDENTITIES {
                    c.row(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', '{column}'), \
                             COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)"
                        ),
                        &[],
                        |_| Ok(()),
                    )?;
                }
            }
            db::uploads::raise_signed_until(c, signed_until)?;
            Ok::<_, db::sql::Error>(added)
        })
    })
    .map(Some)
    .map_err(|e| format!("cannot copy the records into PostgreSQL: {e}"))
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Rows copied from flare.db into PostgreSQL by this run (`None`: no database_url).
    pub records: Option<usize>,
    /// `None`: no `[s3]`, the objects stay on this disk.
    pub bucket: Option<String>,
    /// Videos whose object was copied by this run.
    pub copied: usize,
    pub bytes: u64,
    /// Videos already in the bucket.
    pub already: usize,
    /// One line per video that could not be copied, and why.
    pub failed: Vec<String>,
}

/// Copies the objects (after `records`, the rows `copy_records` added, if it ran).
pub fn migrate_store(app: &AppState, records: Option<usize>) -> Result<Summary, String> {
    let mut summary = Summary {
        records,
        bucket: None,
        copied: 0,
        bytes: 0,
        already: 0,
        failed: Vec::new(),
    };
    let Some(bucket) = app.storage.bucket() else {
        if records.is_some() {
            return Ok(summary);
        }
        return Err(
            "migrate-store copies this data folder into PostgreSQL (database_url) and its \
             objects into an S3 bucket ([s3]): configure either (flare.toml, or \
             FLARE_DATABASE_URL, FLARE_S3_ENDPOINT, FLARE_S3_BUCKET…) and run it with that"
                .into(),
        );
    };
    summary.bucket = Some(bucket.name().to_string());
    let sql = |e: crate::db::sql::Error| format!("cannot read the database: {e}");
    let videos = app.db.blocking(|c| db::videos::all(c)).map_err(sql)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| format!("cannot start: {e}"))?;
    for v in videos.iter().filter(|v| v.status == VideoStatus::Ready) {
        let (Some(name), Some(sha256)) = (&v.object_name, &v.sha256) else {
            continue;
        };
        if v.object_key.is_some() {
            summary.already += 1;
            continue;
        }
        let path = app.storage.object_file_path(&ObjectKey {
            video_id: v.id.clone(),
            file_name: name.clone(),
        });
        let key = Bucket::object_key(&v.id, "migrated", name);
        let copied = runtime.block_on(bucket.put_file(&path, &key, Some(sha256)));
        match copied {
            Ok(meta) => {
                let named = app
                    .db
                    .blocking(|c| db::videos::set_object_key(c, &v.id, sha256, &key))
                    .map_err(sql)?;
                if named {
                    summary.copied += 1;
                    summary.bytes += meta.size;
                } else {
                    summary
                        .failed
                        .push(format!("{}: its record changed meanwhile; run again", v.id));
                }
            }
            Err(e) => summary.failed.push(format!("{}: {e}", v.id)),
        }
    }
    Ok(summary)
}
