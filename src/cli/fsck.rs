//! `flare fsck`: compares the database with the files and, with `--repair`, mends what can be
//! mended without losing data (orphans go to `lost+found/`, never to the bin).

use serde::Serialize;
use std::collections::HashSet;
use std::time::Duration;

use crate::db;
use crate::db::videos::VideoStatus;
use crate::state::AppState;
use crate::storage::Storage;
use crate::storage::{Bucket, ObjectKey};
use crate::time::now_ms;

/// A temp file untouched this long belongs to no live upload (the idle timeout is far shorter).
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// An open upload row this long past its expiry can no longer be used by anyone.
const STALE_UPLOAD_MS: i64 = 24 * 3600 * 1000;

/// What fsck can find; shown in kebab-case (`size-mismatch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    DatabaseCorrupt,
    MissingSigningKey,
    UnfinishedPublication,
    UnfinishedDelete,
    MissingFile,
    SizeMismatch,
    Sha256Mismatch,
    OrphanFile,
    StaleUpload,
    TempFile,
    /// A resumable session whose part file lacks bytes its offset counts.
    PartMissing,
    /// A part file in `tmp/resumable/` with no session.
    OrphanPart,
    /// A poster or rendition the record names whose file is gone or has another size.
    AssetMissing,
    /// With a bucket: a ready video whose object is still under `objects/`.
    NotInBucket,
}

impl std::fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = serde_json::to_value(self).map_err(|_| std::fmt::Error)?;
        f.write_str(text.as_str().unwrap_or_default())
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub kind: ProblemKind,
    pub video_id: Option<String>,
    /// Relative to the data folder.
    pub path: Option<String>,
    pub detail: String,
    pub repaired: bool,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub ok: bool,
    pub videos: usize,
    pub files: usize,
    pub bytes_verified: u64,
    pub problems: Vec<Problem>,
}

pub struct Options {
    /// Re-hash every object and compare with the recorded sha256.
    pub verify: bool,
    pub repair: bool,
}

/// Runs every check. Blocking; safe beside a running server (it only moves files that no live
/// upload or record can be using).
pub fn check(app: &AppState, opts: &Options) -> Result<Report, String> {
    let mut report = Report::default();
    let now = now_ms();
    let sql = |e: crate::db::sql::Error| format!("database: {e}");
    let io = |e: std::io::Error| format!("files: {e}");

    // PostgreSQL checks its own pages (data checksums, amcheck); SQLite's file is checked here.
    let integrity: String = if app.db.is_postgres() {
        "ok".into()
    } else {
        app.db
            .blocking(|c| c.row("PRAGMA integrity_check", &[], |r| r.get(0)))
            .map_err(sql)?
    };
    if integrity != "ok" {
        report.problems.push(problem(
            ProblemKind::DatabaseCorrupt,
            None,
            Some("flare.db"),
            integrity,
            false,
        ));
    }

    // Keys given in the settings (several nodes) mean no key file, by design.
    if app.settings.signing_keys.is_none() && !app.settings.data_dir.join("signing.key").exists() {
        report.problems.push(problem(
            ProblemKind::MissingSigningKey,
            None,
            Some("signing.key"),
            "the key that signs upload URLs and password cookies is gone; restore it from a \
             backup (`flare serve` refuses to make a new one while anything it signed is open)"
                .into(),
            false,
        ));
    }

    // Publications a crash interrupted (a running server finishes its own within milliseconds;
    // the next start finishes the rest).
    let publications = app.db.blocking(|c| db::publications::all(c)).map_err(sql)?;
    for p in &publications {
        let outcome = if opts.repair {
            crate::domain::publish::finish(&app.db, &app.storage, p)?
        } else {
            crate::domain::publish::outcome(&app.db, &app.storage, p)?
        };
        report.problems.push(problem(
            ProblemKind::UnfinishedPublication,
            Some(&p.video_id),
            Some(&format!("tmp/{}", p.temp_name)),
            format!(
                "an upload's record was committed but its file not yet moved into place ({outcome:?}); \
                 the server finishes it at start-up"
            ),
            opts.repair,
        ));
    }
    let staged: HashSet<String> = publications
        .iter()
        .filter(|_| !opts.repair)
        .map(|p| p.temp_name.clone())
        .collect();
    let publishing: HashSet<&str> = publications
        .iter()
        .filter(|_| !opts.repair)
        .map(|p| p.video_id.as_str())
        .collect();

    let videos = app.db.blocking(|c| db::videos::all(c)).map_err(sql)?;
    report.videos = videos.len();
    let owners: HashSet<&str> = videos.iter().map(|v| v.id.as_str()).collect();
    // Files of a video being deleted are that deletion's business, reported once below.
    let deleting: HashSet<&str> = videos
        .iter()
        .filter(|v| v.status == VideoStatus::Deleting)
        .map(|v| v.id.as_str())
        .collect();
    // The one object each ready video may have.
    let objects: HashSet<(&str, &str)> = videos
        .iter()
        .filter(|v| v.status == VideoStatus::Ready)
        .filter_map(|v| Some((v.id.as_str(), v.object_name.as_deref()?)))
        .collect();

    for v in &videos {
        if v.status == VideoStatus::Deleting {
            let mut fixed = false;
            if opts.repair {
                app.storage.remove_video(&v.id).map_err(io)?;
                app.db
                    .blocking(|c| db::videos::finish_delete(c, &v.id))
                    .map_err(sql)?;
                fixed = true;
            }
            report.problems.push(problem(
                ProblemKind::UnfinishedDelete,
                Some(&v.id),
                None,
                "a deletion was interrupted; the server finishes it at start-up".into(),
                fixed,
            ));
            continue;
        }
        let (Some(name), VideoStatus::Ready) = (&v.object_name, v.status) else {
            continue;
        };
        let key = ObjectKey {
            video_id: v.id.clone(),
            file_name: name.clone(),
        };
        // In a bucket, the record names the object's key.
        if let (Some(_), None) = (app.storage.bucket(), &v.object_key) {
            report.problems.push(problem(
                ProblemKind::NotInBucket,
                Some(&v.id),
                Some(&format!("objects/{}/composite/{}", v.id, name)),
                "the object is on this disk, not in the bucket, and is not served: copy it with \
                 flare migrate-store"
                    .into(),
                false,
            ));
            continue;
        }
        let in_bucket = app
            .storage
            .bucket()
            .map(|b| (b, v.object_key.clone().unwrap_or_default()));
        let path = match &in_bucket {
            Some((b, k)) => format!("s3://{}/{k}", b.name()),
            None => format!("objects/{}/composite/{}", v.id, name),
        };
        let size_now = match &in_bucket {
            Some((b, k)) => b.size_blocking(k),
            None => app.storage.size_of(&key),
        };
        match size_now.map_err(io)? {
            None => {
                if opts.repair {
                    app.db
                        .blocking(|c| db::videos::mark_pending(c, &v.id, now))
                        .map_err(sql)?;
                }
                report.problems.push(problem(
                    ProblemKind::MissingFile,
                    Some(&v.id),
                    Some(&path),
                    "the record says ready but the file is gone; repair sets the video back to pending".into(),
                    opts.repair,
                ));
            }
            Some(size) => {
                let recorded = v.size.unwrap_or(-1);
                let digest = if opts.verify || recorded != size as i64 {
                    let d = match &in_bucket {
                        Some((b, k)) => b.sha256_of(k),
                        None => app.storage.sha256_of(&key),
                    }
                    .map_err(io)?;
                    report.bytes_verified += size;
                    Some(d)
                } else {
                    None
                };
                let digest_differs = digest
                    .as_ref()
                    .is_some_and(|d| Some(d) != v.sha256.as_ref());
                if recorded != size as i64 || digest_differs {
                    let kind = if recorded != size as i64 {
                        ProblemKind::SizeMismatch
                    } else {
                        ProblemKind::Sha256Mismatch
                    };
                    let actual = digest.clone().unwrap_or_default();
                    let repair = opts.repair;
                    if repair {
                        app.db
                            .blocking(|c| {
                                db::videos::set_size_and_digest(c, &v.id, size, &actual, now)
                            })
                            .map_err(sql)?;
                    }
                    report.problems.push(problem(
                        kind,
                        Some(&v.id),
                        Some(&path),
                        format!(
                            "recorded {recorded} bytes, sha256 {}; stored {size} bytes, sha256 {actual}; {}",
                            v.sha256.as_deref().unwrap_or("-"),
                            if in_bucket.is_some() {
                                "repair records what is in the bucket"
                            } else {
                                "repair records what is on disk"
                            }
                        ),
                        repair,
                    ));
                }
            }
        }
    }

    // Posters and renditions: each recorded one is there, with its size; a missing one is
    // forgotten by repair and, when ffmpeg made it, queued to be made again.
    let assets = app.db.blocking(|c| db::jobs::all_assets(c)).map_err(sql)?;
    for (video_id, a) in &assets {
        let path = format!("objects/{video_id}/derived/{}", a.file_name);
        let on_disk = app
            .storage
            .derived_size(video_id, &a.file_name)
            .map_err(io)?;
        if on_disk == Some(a.size) {
            continue;
        }
        if opts.repair {
            let sha = videos
                .iter()
                .find(|v| v.id == *video_id && v.status == VideoStatus::Ready)
                .and_then(|v| v.sha256.clone());
            app.db
                .blocking(|c| {
                    db::jobs::remove_asset(c, video_id, &a.kind)?;
                    if let (Some(sha), "ffmpeg") = (&sha, a.origin.as_str()) {
                        db::jobs::enqueue(c, video_id, &a.kind, sha, now)?;
                        db::jobs::refresh(c, video_id)?;
                    }
                    Ok::<_, crate::db::sql::Error>(())
                })
                .map_err(sql)?;
        }
        report.problems.push(problem(
            ProblemKind::AssetMissing,
            Some(video_id),
            Some(&path),
            match on_disk {
                None => format!("the video's {} is gone", a.kind),
                Some(n) => format!("the video's {} has {n} bytes, {} recorded", a.kind, a.size),
            } + if a.origin == "ffmpeg" {
                "; repair forgets it and queues it to be made again"
            } else {
                "; repair forgets it (it was uploaded: send it again)"
            },
            opts.repair,
        ));
    }
    let recorded: HashSet<(&str, &str)> = assets
        .iter()
        .map(|(v, a)| (v.as_str(), a.file_name.as_str()))
        .collect();
    let making: HashSet<String> = app
        .db
        .blocking(|c| db::jobs::running_videos(c))
        .map_err(sql)?
        .into_iter()
        .collect();

    if let Some(bucket) = app.storage.bucket() {
        // Posters and renditions the records name, and the videos a job is making one for.
        let derived: HashSet<String> = assets
            .iter()
            .map(|(v, a)| Bucket::derived_key(v, &a.file_name))
            .collect();
        let busy: HashSet<&str> = publishing
            .iter()
            .chain(deleting.iter())
            .copied()
            .chain(making.iter().map(String::as_str))
            .collect();
        // Resumable sessions kept in the bucket keep their tails under VIDEO/sessions/UPLOAD/.
        let sessions: HashSet<String> = app
            .db
            .blocking(|c| db::uploads::sessions(c, None))
            .map_err(sql)?
            .into_iter()
            .map(|row| crate::storage::tails_prefix(&row.video_id, &row.id) + "/")
            .collect();
        bucket_orphans(
            bucket,
            &videos,
            &derived,
            &busy,
            &sessions,
            opts,
            &mut report,
        )?;
    }
    let files = app.storage.inventory().map_err(io)?;
    report.files = files.len();
    for f in &files {
        // A poster or rendition the record names, or one a running job is about to record.
        if f.derived.as_ref().is_some_and(|(v, file)| {
            recorded.contains(&(v.as_str(), file.as_str()))
                || making.contains(v)
                || deleting.contains(v.as_str())
        }) {
            continue;
        }
        // One video has one object, the one its record names; a being-deleted video's files
        // are its deletion's business, and a publishing one's are about to change.
        let owner = f
            .key
            .as_ref()
            .map(|k| k.video_id.as_str())
            .or(f.derived.as_ref().map(|(v, _)| v.as_str()));
        if f.key.as_ref().is_some_and(|k| {
            objects.contains(&(k.video_id.as_str(), k.file_name.as_str()))
                || publishing.contains(k.video_id.as_str())
                || deleting.contains(k.video_id.as_str())
        }) {
            continue;
        }
        let owned = owner.is_some_and(|id| owners.contains(id));
        let rel = format!("objects/{}", f.path.display());
        let moved = if opts.repair {
            Some(app.storage.to_lost_found(&f.path, false).map_err(io)?)
        } else {
            None
        };
        report.problems.push(problem(
            ProblemKind::OrphanFile,
            owner,
            Some(&rel),
            match (&moved, owned) {
                (Some(to), _) => format!(
                    "{} bytes that no video's record names; moved to {}",
                    f.size,
                    to.display()
                ),
                (None, true) if f.derived.is_some() => format!(
                    "{} bytes: a poster or rendition its video's record no longer names; repair \
                     moves it to lost+found/",
                    f.size
                ),
                (None, true) => format!(
                    "{} bytes beside the object its video's record names (one video has one \
                     object); repair moves it to lost+found/",
                    f.size
                ),
                (None, false) => format!(
                    "{} bytes that no video owns; repair moves it to lost+found/",
                    f.size
                ),
            },
            moved.is_some(),
        ));
    }

    let stale = app
        .db
        .blocking(|c| db::uploads::stale(c, now - STALE_UPLOAD_MS))
        .map_err(sql)?;
    for u in stale {
        if opts.repair {
            app.db
                .blocking(|c| db::uploads::remove(c, &u.id))
                .map_err(sql)?;
            app.storage.remove_part(&u.id).map_err(io)?;
        }
        report.problems.push(problem(
            ProblemKind::StaleUpload,
            Some(&u.video_id),
            None,
            format!(
                "upload URL {} expired unused on {}; repair forgets it",
                u.id,
                crate::time::iso8601(u.expires_at)
            ),
            opts.repair,
        ));
    }

    // Resumable sessions against their part files.
    let sessions = app
        .db
        .blocking(|c| db::uploads::sessions(c, None))
        .map_err(sql)?;
    for row in &sessions {
        if row.session.as_ref().is_some_and(|s| s.stored.is_some()) {
            // Its bytes are in the bucket: parts of a multipart upload no listing shows.
            continue;
        }
        let offset = row.session.as_ref().map_or(0, |s| s.offset);
        let len = app.storage.part_len(&row.id).map_err(io)?;
        if len.unwrap_or(0) >= offset {
            continue;
        }
        if opts.repair {
            app.db
                .blocking(|c| db::uploads::end_session(c, &row.id))
                .map_err(sql)?;
            app.storage.remove_part(&row.id).map_err(io)?;
        }
        report.problems.push(problem(
            ProblemKind::PartMissing,
            Some(&row.video_id),
            Some(&format!("tmp/{}", Storage::part_name(&row.id))),
            format!(
                "resumable upload {} counts {offset} bytes but its part file holds {}; repair ends \
                 the session (the client starts again from 0, its URL unspent)",
                row.id,
                len.map_or("none".into(), |n| format!("{n}"))
            ),
            opts.repair,
        ));
    }
    let live: HashSet<&str> = sessions.iter().map(|r| r.id.as_str()).collect();
    for id in app.storage.part_ids().map_err(io)? {
        if live.contains(id.as_str()) {
            continue;
        }
        let size = app.storage.part_len(&id).map_err(io)?.unwrap_or(0);
        if opts.repair {
            app.storage.remove_part(&id).map_err(io)?;
        }
        report.problems.push(problem(
            ProblemKind::OrphanPart,
            None,
            Some(&format!("tmp/{}", Storage::part_name(&id))),
            format!(
                "{size} bytes of resumable upload {id}, which has no session; repair removes them"
            ),
            opts.repair,
        ));
    }

    for t in app.storage.temp_files().map_err(io)? {
        if staged.contains(&t.name) {
            continue;
        }
        let stale = t.age >= STALE_TEMP;
        // A poster, rendition or fast-start copy a job is writing now; the job removes it if
        // it fails, and the next start sweeps what a crash left.
        let job_output = ["poster-", "rendition-", "faststart-"]
            .iter()
            .any(|p| t.name.starts_with(p));
        if job_output && !stale {
            continue;
        }
        let moved = if opts.repair && stale {
            Some(
                app.storage
                    .to_lost_found(std::path::Path::new(&t.name), true)
                    .map_err(io)?,
            )
        } else {
            None
        };
        report.problems.push(problem(
            ProblemKind::TempFile,
            None,
            Some(&format!("tmp/{}", t.name)),
            match (&moved, stale) {
                (Some(to), _) => format!(
                    "{} bytes left by an unfinished upload; moved to {}",
                    t.size,
                    to.display()
                ),
                (None, true) => format!(
                    "{} bytes left by an unfinished upload; repair moves it to lost+found/",
                    t.size
                ),
                (None, false) => format!(
                    "{} bytes, written {} s ago: an upload may still be running",
                    t.size,
                    t.age.as_secs()
                ),
            },
            moved.is_some(),
        ));
    }

    report.ok = report.problems.iter().all(|p| p.repaired);
    Ok(report)
}

/// Objects in the bucket that no record names (neither a video's object nor a poster or
/// rendition): what a crash between writing an object and committing its record (or between a
/// replacement's commit and the old object's removal) leaves. Objects written in the last
/// `IN_FLIGHT` may belong to an upload being published right now, on any node, and are left
/// alone, as are the videos being published, deleted or given a poster, and the tails of live
/// resumable sessions (`sessions`: their prefixes). Repair moves orphans under `lost+found/`.
fn bucket_orphans(
    bucket: &Bucket,
    videos: &[db::videos::VideoRow],
    derived: &HashSet<String>,
    busy: &HashSet<&str>,
    sessions: &HashSet<String>,
    opts: &Options,
    report: &mut Report,
) -> Result<(), String> {
    const IN_FLIGHT: std::time::Duration = std::time::Duration::from_secs(600);
    let mut named: HashSet<String> = videos
        .iter()
        .filter(|v| v.status == VideoStatus::Ready)
        .filter_map(|v| v.object_key.clone())
        .collect();
    named.extend(derived.iter().cloned());
    let owners: HashSet<&str> = videos.iter().map(|v| v.id.as_str()).collect();
    let listed = bucket
        .list()
        .map_err(|e| format!("cannot list the bucket: {e}"))?;
    for object in listed {
        report.files += 1;
        let owner = object.key.split('/').next().unwrap_or("");
        let session = match object.key.rsplit_once('/') {
            Some((prefix, _)) => sessions.contains(&format!("{prefix}/")),
            None => false,
        };
        if named.contains(&object.key)
            || session
            || object.key.starts_with("lost+found/")
            || busy.contains(owner)
            || object.modified.elapsed().unwrap_or_default() < IN_FLIGHT
        {
            continue;
        }
        let moved =
            if opts.repair {
                Some(bucket.to_lost_found(&object.key).map_err(|e| {
                    format!("cannot move s3://{}/{}: {e}", bucket.name(), object.key)
                })?)
            } else {
                None
            };
        report.problems.push(problem(
            ProblemKind::OrphanFile,
            owners.contains(owner).then_some(owner),
            Some(&format!("s3://{}/{}", bucket.name(), object.key)),
            match &moved {
                Some(to) => format!(
                    "{} bytes that no video's record names; moved to {to}",
                    object.size
                ),
                None => format!(
                    "{} bytes that no video's record names (left by a crash, or replaced); repair \
                     moves it under lost+found/ in the bucket",
                    object.size
                ),
            },
            moved.is_some(),
        ));
    }
    Ok(())
}

fn problem(
    kind: ProblemKind,
    video_id: Option<&str>,
    path: Option<&str>,
    detail: String,
    repaired: bool,
) -> Problem {
    Problem {
        kind,
        video_id: video_id.map(String::from),
        path: path.map(String::from),
        detail,
        repaired,
    }
}
