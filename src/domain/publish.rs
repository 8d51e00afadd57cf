//! Finishing publications a crash interrupted: an upload's record was committed, its staged
//! file not yet renamed into place (`uploads::receive`, step 5). Run at start-up before the temp
//! folder is swept, and by `flare fsck --repair`.

use crate::db::{self, publications::Publication, videos::VideoStatus, Db};
use crate::storage::{ObjectKey, Storage};

/// What is to be done with one unfinished publication.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The staged file is still in `tmp/` and its video's record names it: rename it into place.
    RollForward,
    /// The rename was done (the staged file is gone) and the record still names this object:
    /// the object it replaced may be left to remove.
    AlreadyDone,
    /// The rename was done, and a later upload or a deletion has since changed the video: only
    /// the row is left to drop.
    Stale,
    /// The video was deleted, or a later upload replaced this one: drop the staged file.
    Superseded,
}

/// Decides, from the record and the files, without changing anything. Blocking.
pub(crate) fn outcome(db: &Db, storage: &Storage, p: &Publication) -> Result<Outcome, String> {
    let video = db
        .blocking(|c| db::videos::get(c, &p.video_id))
        .map_err(|e| format!("cannot read the database: {e}"))?;
    let current = video.as_ref().is_some_and(|v| {
        v.status == VideoStatus::Ready && v.object_name.as_deref() == Some(&p.object_name)
    });
    Ok(match (current, storage.temp_exists(&p.temp_name)) {
        (true, true) => Outcome::RollForward,
        (false, true) => Outcome::Superseded,
        (true, false) => Outcome::AlreadyDone,
        (false, false) => Outcome::Stale,
    })
}

/// Every unfinished publication, done or dropped; returns how many there were. Blocking, and
/// only while no upload is being published (before serving, or from fsck with the data folder's
/// lock free).
pub(crate) fn roll_forward(db: &Db, storage: &Storage) -> Result<usize, String> {
    let pending = db
        .blocking(|c| db::publications::all(c))
        .map_err(|e| format!("cannot read the database: {e}"))?;
    for p in &pending {
        finish(db, storage, p)?;
    }
    Ok(pending.len())
}

/// Finishes or drops one publication. Blocking.
pub fn finish(db: &Db, storage: &Storage, p: &Publication) -> Result<Outcome, String> {
    let key = ObjectKey {
        video_id: p.video_id.clone(),
        file_name: p.object_name.clone(),
    };
    let io = |e: std::io::Error| format!("cannot finish publishing video {}: {e}", p.video_id);
    let outcome = outcome(db, storage, p)?;
    match outcome {
        // `publish` is idempotent: with the rename already done it only removes the object
        // replaced, which a crash between the two steps may have left.
        Outcome::RollForward | Outcome::AlreadyDone => storage
            .publish(&p.temp_name, &key, p.replaces.as_deref())
            .map_err(io)?,
        Outcome::Superseded => storage.remove_temp(&p.temp_name).map_err(io)?,
        Outcome::Stale => {}
    }
    // With a bucket: the object this publication replaced, once its record was committed.
    if let (Some(bucket), Some(old), Outcome::RollForward | Outcome::AlreadyDone) =
        (storage.bucket(), &p.replaced_key, &outcome)
    {
        bucket.delete_blocking(old).map_err(io)?;
    }
    db.blocking(|c| db::publications::remove(c, &p.temp_name))
        .map_err(|e| format!("cannot update the database: {e}"))?;
    Ok(outcome)
}
