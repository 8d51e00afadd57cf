//! Queries on `media_jobs` (posters and renditions to make, with ffmpeg) and `assets` (what was
//! made, or a poster uploaded). After each change, `refresh` writes both into the video's
//! `derived` column, which the Video object shows.

use super::sql::{Conn, Optional, Result, Row};
use crate::args;

/// What a job makes; also the `kind` of the asset it records.
pub const POSTER: &str = "poster";
pub const RENDITION: &str = "rendition";
pub const FASTSTART: &str = "faststart";

/// A job claimed by a worker.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub video_id: String,
    pub kind: String,
    /// The digest of the object it is made from: a later upload makes it stale.
    pub source_sha256: String,
    pub attempts: i64,
}

/// A file under `objects/ID/derived/`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Asset {
    pub kind: String,
    pub file_name: String,
    pub content_type: String,
    pub size: u64,
    pub sha256: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bitrate: Option<u64>,
    /// `ffmpeg`, or `upload` (a poster sent through the API; a job never replaces it).
    pub origin: String,
}

/// A job as the Video object shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobState {
    pub kind: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// 0 to 1.
    pub progress: f64,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub updated_at: i64,
}

/// What `videos.derived` holds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Derived {
    pub assets: Vec<Asset>,
    pub jobs: Vec<JobState>,
}

/// Queues (or queues again, from the start) a job for a video.
pub(crate) fn enqueue(
    conn: &Conn,
    video_id: &str,
    kind: &str,
    source_sha256: &str,
    now: i64,
) -> Result<()> {
    conn.exec("INSERT INTO media_jobs (video_id, kind, source_sha256, state, progress, attempts, run_after, updated_at)
         VALUES (?1, ?2, ?3, 'queued', 0, 0, ?4, ?4)
         ON CONFLICT (video_id, kind) DO UPDATE SET source_sha256 = ?3, state = 'queued',
           progress = 0, attempts = 0, error = NULL, run_after = ?4, updated_at = ?4",
        args![video_id, kind, source_sha256, now],
    )?;
    Ok(())
}

/// A new object for a video: every asset and job of the old one goes (their file names are
/// returned, for removal once the change is committed).
pub(crate) fn forget_video(conn: &Conn, video_id: &str) -> Result<Vec<String>> {
    let files = conn.rows(
        "SELECT file_name FROM assets WHERE video_id = ?1",
        args![video_id],
        |r| r.get(0),
    )?;
    conn.exec("DELETE FROM assets WHERE video_id = ?1", args![video_id])?;
    conn.exec(
        "DELETE FROM media_jobs WHERE video_id = ?1",
        args![video_id],
    )?;
    Ok(files)
}

/// Drops a job that is not running (a queued poster made pointless by an uploaded one).
pub(crate) fn drop_waiting(conn: &Conn, video_id: &str, kind: &str) -> Result<()> {
    conn.exec(
        "DELETE FROM media_jobs WHERE video_id = ?1 AND kind = ?2 AND state <> 'running'",
        args![video_id, kind],
    )?;
    refresh(conn, video_id)
}

/// The embed settings' `thumbnailTime` changed: an ffmpeg poster is made again at the new time.
pub(crate) fn requeue_poster(conn: &Conn, v: &super::videos::VideoRow, now: i64) -> Result<bool> {
    let Some(sha) = v.sha256.as_deref() else {
        return Ok(false);
    };
    let kept = asset(conn, &v.id, POSTER)?;
    if kept.as_ref().is_some_and(|a| a.origin == "upload")
        || v.status != super::videos::VideoStatus::Ready
    {
        return Ok(false);
    }
    enqueue(conn, &v.id, POSTER, sha, now)?;
    refresh(conn, &v.id)?;
    Ok(true)
}

/// Takes the oldest queued job that is due, marking it running.
pub(crate) fn claim(conn: &Conn, now: i64) -> Result<Option<Job>> {
    let job = conn
        .row(
            "UPDATE media_jobs SET state = 'running', attempts = attempts + 1, progress = 0,
           updated_at = ?1
         WHERE id = (SELECT id FROM media_jobs WHERE state = 'queued' AND run_after <= ?1
                     ORDER BY run_after, id LIMIT 1)
         RETURNING id, video_id, kind, source_sha256, attempts",
            args![now],
            |r| {
                Ok(Job {
                    id: r.get(0)?,
                    video_id: r.get(1)?,
                    kind: r.get(2)?,
                    source_sha256: r.get(3)?,
                    attempts: r.get(4)?,
                })
            },
        )
        .optional()?;
    if let Some(job) = &job {
        refresh(conn, &job.video_id)?;
    }
    Ok(job)
}

/// When the next queued job is due (ms), if any.
pub(crate) fn next_due(conn: &Conn) -> Result<Option<i64>> {
    conn.row(
        "SELECT MIN(run_after) FROM media_jobs WHERE state = 'queued'",
        args![],
        |r| r.get(0),
    )
}

/// Records a running job's progress; false when the job is no longer this run's (the video
/// was deleted or replaced): the worker then stops.
pub(crate) fn report(conn: &Conn, job: &Job, progress: f64, now: i64) -> Result<bool> {
    let n = conn.exec(
        "UPDATE media_jobs SET progress = ?3, updated_at = ?4
         WHERE id = ?1 AND state = 'running' AND source_sha256 = ?2",
        args![job.id, job.source_sha256, progress.clamp(0.0, 1.0), now],
    )?;
    if n > 0 {
        refresh_jobs_only(conn, &job.video_id)?;
    }
    Ok(n > 0)
}

/// Whether the job is still this run's: its row is running, for the same object.
pub(crate) fn still_current(conn: &Conn, job: &Job) -> Result<bool> {
    let n: i64 = conn.row("SELECT COUNT(*) FROM media_jobs WHERE id = ?1 AND state = 'running' AND source_sha256 = ?2",
        args![job.id, job.source_sha256],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

/// The asset a kind currently has, if any.
pub(crate) fn asset(conn: &Conn, video_id: &str, kind: &str) -> Result<Option<Asset>> {
    conn.row(
        "SELECT kind, file_name, content_type, size, sha256, width, height, bitrate, origin
         FROM assets WHERE video_id = ?1 AND kind = ?2",
        args![video_id, kind],
        asset_of,
    )
    .optional()
}

fn asset_of(r: &Row<'_>) -> Result<Asset> {
    Ok(Asset {
        kind: r.get(0)?,
        file_name: r.get(1)?,
        content_type: r.get(2)?,
        size: r.get::<i64>(3)? as u64,
        sha256: r.get(4)?,
        width: r.get(5)?,
        height: r.get(6)?,
        bitrate: r.get::<Option<i64>>(7)?.map(|b| b as u64),
        origin: r.get(8)?,
    })
}

/// Stores (or replaces) a video's asset of one kind; returns the file it replaced, for removal
/// once this is committed.
pub(crate) fn put_asset(
    conn: &Conn,
    video_id: &str,
    a: &Asset,
    now: i64,
) -> Result<Option<String>> {
    let old = asset(conn, video_id, &a.kind)?.map(|o| o.file_name);
    conn.exec(
        "INSERT INTO assets (video_id, kind, file_name, content_type, size, sha256, width, height,
           bitrate, origin, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (video_id, kind) DO UPDATE SET file_name = ?3, content_type = ?4, size = ?5,
           sha256 = ?6, width = ?7, height = ?8, bitrate = ?9, origin = ?10, created_at = ?11",
        args![
            video_id,
            a.kind,
            a.file_name,
            a.content_type,
            a.size as i64,
            a.sha256,
            a.width,
            a.height,
            a.bitrate.map(|b| b as i64),
            a.origin,
            now
        ],
    )?;
    refresh(conn, video_id)?;
    Ok(old.filter(|o| *o != a.file_name))
}

/// Removes a video's asset of one kind; returns its file, for removal once committed.
pub(crate) fn remove_asset(conn: &Conn, video_id: &str, kind: &str) -> Result<Option<String>> {
    let old = asset(conn, video_id, kind)?.map(|o| o.file_name);
    conn.exec(
        "DELETE FROM assets WHERE video_id = ?1 AND kind = ?2",
        args![video_id, kind],
    )?;
    refresh(conn, video_id)?;
    Ok(old)
}

/// A job is done (its asset, if any, recorded by `put_asset` in the same transaction).
pub(crate) fn done(conn: &Conn, job: &Job, now: i64) -> Result<()> {
    conn.exec(
        "UPDATE media_jobs SET state = 'done', progress = 1, error = NULL, updated_at = ?2
         WHERE id = ?1",
        args![job.id, now],
    )?;
    refresh(conn, &job.video_id)
}

/// A job failed: queued again at `retry_at`, or failed for good (`None`), with its reason.
pub(crate) fn failed(
    conn: &Conn,
    job: &Job,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> Result<()> {
    conn.exec(
        "UPDATE media_jobs SET state = ?2, error = ?3, run_after = COALESCE(?4, run_after),
           progress = 0, updated_at = ?5
         WHERE id = ?1 AND state = 'running'",
        args![
            job.id,
            if retry_at.is_some() {
                "queued"
            } else {
                "failed"
            },
            error,
            retry_at,
            now
        ],
    )?;
    refresh(conn, &job.video_id)
}

/// At start-up: jobs a stopped server was running start again; the run it cut short is not
/// counted as an attempt. Returns how many.
pub(crate) fn requeue_running(conn: &Conn, now: i64) -> Result<usize> {
    let videos = conn.rows(
        "SELECT video_id FROM media_jobs WHERE state = 'running'",
        args![],
        |r| r.get::<String>(0),
    )?;
    conn.exec(
        "UPDATE media_jobs SET state = 'queued', progress = 0, run_after = ?1, updated_at = ?1,
           attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END
         WHERE state = 'running'",
        args![now],
    )?;
    for v in &videos {
        refresh(conn, v)?;
    }
    Ok(videos.len())
}

/// Every asset of every video, for fsck: `(video_id, asset)`.
pub(crate) fn all_assets(conn: &Conn) -> Result<Vec<(String, Asset)>> {
    conn.rows(
        "SELECT kind, file_name, content_type, size, sha256, width, height, bitrate, origin,
           video_id FROM assets ORDER BY video_id, kind",
        args![],
        |r| Ok((r.get(9)?, asset_of(r)?)),
    )
}

/// Videos with a job running now.
pub(crate) fn running_videos(conn: &Conn) -> Result<Vec<String>> {
    conn.rows(
        "SELECT video_id FROM media_jobs WHERE state = 'running'",
        args![],
        |r| r.get(0),
    )
}

/// Ready videos with no asset and no job (stored before ffmpeg was found):
/// `(id, sha256, media)`.
pub(crate) fn untouched(conn: &Conn) -> Result<Vec<(String, String, Option<String>)>> {
    conn.rows(
        "SELECT id, sha256, media FROM videos v WHERE status = 'ready' AND sha256 IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM assets a WHERE a.video_id = v.id)
           AND NOT EXISTS (SELECT 1 FROM media_jobs j WHERE j.video_id = v.id)",
        args![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Writes the video's assets and jobs into its row.
pub(crate) fn refresh(conn: &Conn, video_id: &str) -> Result<()> {
    let assets = conn.rows(
        "SELECT kind, file_name, content_type, size, sha256, width, height, bitrate, origin
             FROM assets WHERE video_id = ?1 ORDER BY kind",
        args![video_id],
        asset_of,
    )?;
    write(conn, video_id, assets, jobs(conn, video_id)?)
}

/// As `refresh`, reusing the stored assets (a progress report changes only the jobs).
fn refresh_jobs_only(conn: &Conn, video_id: &str) -> Result<()> {
    let stored: Option<String> = conn
        .row(
            "SELECT derived FROM videos WHERE id = ?1",
            args![video_id],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let assets = stored
        .and_then(|s| serde_json::from_str::<Derived>(&s).ok())
        .map(|d| d.assets)
        .unwrap_or_default();
    write(conn, video_id, assets, jobs(conn, video_id)?)
}

fn jobs(conn: &Conn, video_id: &str) -> Result<Vec<JobState>> {
    conn.rows(
        "SELECT kind, state, progress, attempts, error, updated_at FROM media_jobs
         WHERE video_id = ?1 ORDER BY kind",
        args![video_id],
        |r| {
            Ok(JobState {
                kind: r.get(0)?,
                state: r.get(1)?,
                progress: r.get(2)?,
                attempts: r.get(3)?,
                error: r.get(4)?,
                updated_at: r.get(5)?,
            })
        },
    )
}

fn write(conn: &Conn, video_id: &str, assets: Vec<Asset>, jobs: Vec<JobState>) -> Result<()> {
    let derived = Derived { assets, jobs };
    let json = (derived != Derived::default())
        .then(|| serde_json::to_string(&derived).unwrap_or_default());
    conn.exec(
        "UPDATE videos SET derived = ?2 WHERE id = ?1",
        args![video_id, json],
    )?;
    Ok(())
}
