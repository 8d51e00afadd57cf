//! `flare migrate-store`: a single box's objects (`DATA_DIR/objects`) copied into the S3 bucket
//! of `[s3]`, so that a site moves to a bucket without uploading anything again.
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

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub bucket: String,
    /// Videos whose object was copied by this run.
    pub copied: usize,
    pub bytes: u64,
    /// Videos already in the bucket.
    pub already: usize,
    /// One line per video that could not be copied, and why.
    pub failed: Vec<String>,
}

pub fn migrate_store(app: &AppState) -> Result<Summary, String> {
    let bucket = app.storage.bucket().ok_or(
        "migrate-store copies this data folder's objects into an S3 bucket: configure [s3] \
         (flare.toml, or FLARE_S3_ENDPOINT, FLARE_S3_BUCKET…) and run it with that",
    )?;
    let sql = |e: crate::db::sql::Error| format!("cannot read the database: {e}");
    let videos = app.db.blocking(|c| db::videos::all(c)).map_err(sql)?;
    let mut summary = Summary {
        bucket: bucket.name().to_string(),
        copied: 0,
        bytes: 0,
        already: 0,
        failed: Vec::new(),
    };
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
