//! Posters and playable renditions, made by ffmpeg when flare finds one.
//!
//! Publication queues the jobs in the same transaction that makes the video ready
//! (`jobs_for`), so a crash cannot lose one; `media_jobs` workers take them in order, run ffmpeg
//! at the lowest CPU priority with its output in `tmp/`, rename the file into
//! `objects/ID/derived/` and record it in one transaction, unless the video was deleted or
//! replaced meanwhile (then the file goes). A stopped server's running jobs are queued again at
//! start-up. A failure is retried twice, after 30 s and 2 min, then shown with ffmpeg's words.
//!
//! The original is never touched: `publicUrl` serves the uploaded bytes. Without ffmpeg nothing
//! is queued, and the web app sends a poster it grabbed from the file in the browser
//! (`put_poster`).

use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::db::{
    self,
    jobs::{Asset, Job, FASTSTART, POSTER, RENDITION},
    videos::{VideoRow, VideoStatus},
};
use crate::domain::embed::EmbedSettings;
use crate::domain::probe::MediaInfo;
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::ObjectKey;
use crate::time::now_ms;

/// The largest poster accepted through the API.
pub const MAX_POSTER_BYTES: usize = 5 << 20;
/// Runs of one job before it is left failed.
const MAX_ATTEMPTS: i64 = 3;
/// The longest side of a poster, and the shorter side of a rendition.
const POSTER_WIDTH: u32 = 1280;
const RENDITION_SHORT_SIDE: u32 = 1080;
const AUDIO_BITRATE: u64 = 128_000;

/// Why an original gets a rendition for the players, if it does: common browsers cannot play
/// it, or it is heavier than `max_stream_bitrate`.
pub fn rendition_reason(m: &MediaInfo, max_bitrate: u64) -> Option<String> {
    if m.playable == Some(false) {
        let codec = m.video_codec.as_deref().unwrap_or("its codec");
        return Some(format!("common browsers cannot play {codec}"));
    }
    match m.container.as_str() {
        "matroska" | "ogg" | "unknown" => {
            return Some(format!(
                "common browsers do not all play the {} container",
                m.container
            ))
        }
        "mp4" | "mov" if m.video_codec.is_none() && m.audio_codec.is_none() => {
            return Some("flare could not read its tracks".into())
        }
        _ => {}
    }
    m.bitrate
        .filter(|b| *b > max_bitrate)
        .map(|b| format!("its bitrate ({b} bit/s) is above max_stream_bitrate ({max_bitrate})"))
}

/// The jobs a newly stored object gets: none without ffmpeg; a poster unless it has no
/// picture; a rendition when `rendition_reason` gives one.
pub fn jobs_for(app: &AppState, m: &MediaInfo) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    if app.settings.media_jobs == 0 {
        return kinds;
    }
    let rendition = rendition_reason(m, app.settings.max_stream_bitrate).is_some();
    if app.media.ffmpeg().is_some() {
        let audio_only = m.video_codec.is_none() && m.audio_codec.is_some();
        if !audio_only {
            kinds.push(POSTER);
        }
        if rendition {
            kinds.push(RENDITION);
        }
    }
    // An index-first copy, in Rust, when the players would otherwise play the original.
    let plays_original = !(rendition && app.media.ffmpeg().is_some());
    if app.settings.faststart
        && plays_original
        && matches!(m.container.as_str(), "mp4" | "mov")
        && m.fast_start == Some(false)
        && m.playable != Some(false)
    {
        kinds.push(FASTSTART);
    }
    kinds
}

/// Starts the workers (none without ffmpeg), after queueing posters for ready videos stored
/// before ffmpeg was found.
pub(crate) fn spawn_workers(state: Weak<AppState>) {
    let Some(app) = state.upgrade() else { return };
    if app.settings.media_jobs == 0 {
        log::info!("media_jobs = 0: no posters, renditions or fast-start copies are made");
        return;
    }
    match app.media.ffmpeg() {
        Some(ffmpeg) => log::info!(
            "posters and renditions made with {} ({} job(s) at a time)",
            ffmpeg.display(),
            app.settings.media_jobs
        ),
        None => log::info!(
            "no ffmpeg (ffmpeg_path, PATH): no posters or renditions are made on the server; the \
             web app sends a poster it grabs in the browser"
        ),
    }
    let backfill = {
        let app = app.clone();
        async move {
            let now = now_ms();
            let untouched = app
                .db
                .read(|c| Ok::<_, ApiError>(db::jobs::untouched(c)?))
                .await?;
            let mut queued = 0;
            for (id, sha, media) in untouched {
                let media: MediaInfo = media
                    .as_deref()
                    .and_then(|m| serde_json::from_str(m).ok())
                    .unwrap_or_default();
                let kinds = jobs_for(&app, &media);
                if kinds.is_empty() {
                    continue;
                }
                queued += 1;
                app.db
                    .write(move |c| {
                        for kind in kinds {
                            db::jobs::enqueue(c, &id, kind, &sha, now)?;
                        }
                        db::jobs::refresh(c, &id)?;
                        Ok::<_, ApiError>(())
                    })
                    .await?;
            }
            if queued > 0 {
                log::info!("queued posters and renditions for {queued} video(s) stored before");
            }
            Ok::<_, ApiError>(())
        }
    };
    actix_web::rt::spawn(async move {
        if let Err(e) = backfill.await {
            log::warn!("could not queue jobs for earlier videos: {e}");
        }
    });
    for _ in 0..app.settings.media_jobs {
        actix_web::rt::spawn(worker(state.clone()));
    }
}

async fn worker(state: Weak<AppState>) {
    loop {
        let Some(app) = state.upgrade() else { return };
        let wake = app.media.wake.clone();
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let now = now_ms();
        let claimed = app
            .db
            .write(move |c| Ok::<_, ApiError>(db::jobs::claim(c, now)?))
            .await;
        match claimed {
            Ok(Some(job)) => {
                run(&app, job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => log::warn!("media jobs: cannot read the queue: {e}"),
        }
        let due = app
            .db
            .read(|c| Ok::<_, ApiError>(db::jobs::next_due(c)?))
            .await
            .ok()
            .flatten();
        let wait = due.map_or(Duration::from_secs(60), |at| {
            Duration::from_millis((at - now_ms()).clamp(10, 60_000) as u64)
        });
        drop(app);
        tokio::select! {
            _ = &mut notified => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Runs one job and records its outcome.
async fn run(app: &AppState, job: Job) {
    let started = std::time::Instant::now();
    let outcome = make(app, &job).await;
    let now = now_ms();
    let (id, kind) = (job.video_id.clone(), job.kind.clone());
    let recorded = match outcome {
        Ok(Made::Nothing) => {
            let job = job.clone();
            app.db
                .write(move |c| {
                    if db::jobs::still_current(c, &job)? {
                        db::jobs::done(c, &job, now)?;
                    }
                    Ok::<_, ApiError>(())
                })
                .await
        }
        Ok(Made::File { temp, asset }) => record(app, &job, temp, asset).await,
        Err(Failure::Stale) => {
            log::info!("media job {kind} for video {id} dropped: the video changed");
            Ok(())
        }
        Err(Failure::Error(message)) => {
            let retry = (job.attempts < MAX_ATTEMPTS)
                .then(|| now + 30_000 * 4i64.pow(job.attempts.max(1) as u32 - 1));
            log::warn!(
                "media job {kind} for video {id} failed (attempt {}): {message}",
                job.attempts
            );
            let job = job.clone();
            app.db
                .write(move |c| Ok::<_, ApiError>(db::jobs::failed(c, &job, &message, retry, now)?))
                .await
        }
    };
    match recorded {
        Ok(()) => log::info!(
            "media job {kind} for video {id} ended after {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        Err(e) => log::warn!("media job {kind} for video {id}: cannot record its outcome: {e}"),
    }
}

/// Renames the made file into place and records it, or drops it when the video changed.
async fn record(app: &AppState, job: &Job, temp: String, asset: Asset) -> Result<(), ApiError> {
    let storage = app.storage.clone();
    let (video_id, file) = (job.video_id.clone(), asset.file_name.clone());
    let (t, v, f) = (temp.clone(), video_id.clone(), file.clone());
    tokio::task::spawn_blocking(move || storage.publish_derived(&t, &v, &f))
        .await
        .map_err(|e| ApiError::internal("storing a poster or rendition", e))?
        .map_err(|e| ApiError::from_io("storing a poster or rendition", e))?;
    let now = now_ms();
    let j = job.clone();
    let replaced = app
        .db
        .write(move |c| {
            if !db::jobs::still_current(c, &j)? {
                return Ok::<_, ApiError>(Err(()));
            }
            let replaced = db::jobs::put_asset(c, &j.video_id, &asset, now)?;
            db::jobs::done(c, &j, now)?;
            Ok(Ok(replaced))
        })
        .await;
    let (stale, result) = match replaced {
        Ok(Ok(old)) => (old, Ok(())),
        // Not recorded: the file is nobody's.
        Ok(Err(())) => (Some(file), Ok(())),
        Err(e) => (Some(file), Err(e)),
    };
    if let Some(old) = stale {
        let storage = app.storage.clone();
        let _ = tokio::task::spawn_blocking(move || storage.remove_derived(&video_id, &old)).await;
    }
    result
}

enum Made {
    /// Nothing to make (an uploaded poster is kept).
    Nothing,
    /// A file in `tmp/` and what it is.
    File { temp: String, asset: Asset },
}

enum Failure {
    /// The video was deleted or replaced while the job ran.
    Stale,
    Error(String),
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Failure {
        Failure::Error(e.to_string())
    }
}

async fn make(app: &AppState, job: &Job) -> Result<Made, Failure> {
    let video = match crate::domain::videos::get(app, &job.video_id).await {
        Ok(v) => v,
        Err(ApiError::NotFound(_)) => return Err(Failure::Stale),
        Err(e) => return Err(e.into()),
    };
    if video.status != VideoStatus::Ready
        || video.sha256.as_deref() != Some(job.source_sha256.as_str())
    {
        return Err(Failure::Stale);
    }
    let Some(object) = video.object_name.clone() else {
        return Err(Failure::Stale);
    };
    // With a bucket, the tools read a local copy, removed when the job ends.
    let local_copy = match (app.storage.bucket(), &video.object_key) {
        (Some(bucket), Some(key)) => {
            let ext = object.rsplit('.').next().unwrap_or("bin");
            let (temp, path) = app.storage.temp_for_tool("source", ext);
            let copied = bucket.get_to_file(key, &path).await;
            let copy = TempCopy { app, temp };
            copied.map_err(|e| {
                Failure::Error(format!("copying the object out of the S3 bucket: {e}"))
            })?;
            Some((copy, path))
        }
        _ => None,
    };
    let input = match &local_copy {
        Some((_, path)) => path.clone(),
        None => app.storage.object_file_path(&ObjectKey {
            video_id: video.id.clone(),
            file_name: object,
        }),
    };
    let media: MediaInfo = video
        .media
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    match job.kind.as_str() {
        POSTER => {
            let (vid, kind) = (video.id.clone(), POSTER);
            let kept = app
                .db
                .read(move |c| Ok::<_, ApiError>(db::jobs::asset(c, &vid, kind)?))
                .await?;
            if kept.is_some_and(|a| a.origin == "upload") {
                return Ok(Made::Nothing);
            }
            let out = app.storage.temp_for_tool("poster", "jpg");
            let temp = out.0.clone();
            let made = poster(app, job, &video, &media, &input, out).await;
            forget_on_failure(app, &temp, made)
        }
        RENDITION => {
            let out = app.storage.temp_for_tool("rendition", "mp4");
            let temp = out.0.clone();
            let made = rendition(app, job, &media, &input, out).await;
            forget_on_failure(app, &temp, made)
        }
        FASTSTART => {
            let ext = if video.content_type.as_deref() == Some("video/quicktime") {
                "mov"
            } else {
                "mp4"
            };
            let out = app.storage.temp_for_tool("faststart", ext);
            let temp = out.0.clone();
            let made = faststart(app, &input, out, &media).await;
            forget_on_failure(app, &temp, made)
        }
        other => Err(Failure::Error(format!("unknown job kind {other}"))),
    }
}

/// A file in `tmp/` removed when dropped.
struct TempCopy<'a> {
    app: &'a AppState,
    temp: String,
}

impl Drop for TempCopy<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.app.storage.remove_temp(&self.temp) {
            log::warn!("could not remove {} from tmp/: {e}", self.temp);
        }
    }
}

/// The index-first copy (`domain::faststart`), at disk speed; the original is only read.
async fn faststart(
    app: &AppState,
    input: &Path,
    (temp, out): (String, PathBuf),
    media: &MediaInfo,
) -> Result<Made, Failure> {
    let (input, path) = (input.to_path_buf(), out.clone());
    let written = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
        let mut src = std::fs::File::open(&input)?;
        let size = src.metadata()?.len();
        let Some(plan) = crate::domain::faststart::plan(&mut src, size)? else {
            return Ok(false);
        };
        let mut dest = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&path)?);
        if !crate::domain::faststart::write(&mut src, size, &plan, &mut dest)? {
            return Ok(false);
        }
        std::io::Write::flush(&mut dest)?;
        Ok(true)
    })
    .await
    .map_err(|e| Failure::Error(e.to_string()))?
    .map_err(|e| Failure::Error(format!("making the fast-start copy: {e}")))?;
    if !written {
        let _ = app.storage.remove_temp(&temp);
        return Ok(Made::Nothing);
    }
    let stem = "faststart";
    let ext = if temp.ends_with(".mov") { "mov" } else { "mp4" };
    // Served as MP4: browsers skip a <source> typed video/quicktime, and the copy is ISO BMFF.
    finish_file(
        app,
        temp,
        &out,
        FASTSTART,
        stem,
        ext,
        "video/mp4",
        media.width,
        media.height,
        media.bitrate,
    )
    .await
}

/// A job that did not make its file leaves nothing in `tmp/` (a deleted video's stopped
/// transcode included).
fn forget_on_failure(
    app: &AppState,
    temp: &str,
    made: Result<Made, Failure>,
) -> Result<Made, Failure> {
    if made.is_err() {
        if let Err(e) = app.storage.remove_temp(temp) {
            log::warn!("could not remove {temp} from tmp/: {e}");
        }
    }
    made
}

/// The poster's time: the embed settings' `thumbnailTime` when it is inside the video, else a
/// tenth of the way in.
pub fn poster_time(settings: &EmbedSettings, duration: Option<f64>) -> f64 {
    let t = settings.thumbnail_time;
    match duration {
        Some(d) if t > 0.0 && t < d => t,
        Some(d) => d * 0.1,
        None => t,
    }
}

async fn poster(
    app: &AppState,
    job: &Job,
    video: &VideoRow,
    media: &MediaInfo,
    input: &Path,
    (temp, out): (String, PathBuf),
) -> Result<Made, Failure> {
    let settings = EmbedSettings::from_stored(video.embed_settings.as_deref());
    let at = poster_time(&settings, media.duration);
    let scale = format!("scale='min({POSTER_WIDTH},iw)':-2");
    let args = |seek: f64| -> Vec<String> {
        let mut a: Vec<String> = vec!["-ss".into(), format!("{seek:.3}"), "-i".into()];
        a.push(input.display().to_string());
        a.extend(
            [
                "-frames:v",
                "1",
                "-vf",
                &scale,
                "-q:v",
                "3",
                "-f",
                "image2",
                "-c:v",
                "mjpeg",
            ]
            .map(String::from),
        );
        a.push(out.display().to_string());
        a
    };
    ffmpeg(app, job, args(at), None).await?;
    // A time past the last frame makes no picture: take the first instead.
    if std::fs::metadata(&out).map_or(true, |m| m.len() == 0) && at > 0.0 {
        ffmpeg(app, job, args(0.0), None).await?;
    }
    let (width, height) = scaled(media, POSTER_WIDTH, false);
    finish_file(
        app,
        temp,
        &out,
        POSTER,
        "poster",
        "jpg",
        "image/jpeg",
        width,
        height,
        None,
    )
    .await
}

async fn rendition(
    app: &AppState,
    job: &Job,
    media: &MediaInfo,
    input: &Path,
    (temp, out): (String, PathBuf),
) -> Result<Made, Failure> {
    // The video's share of the stream, under max_stream_bitrate with room for audio and bursts.
    let video_rate = (app.settings.max_stream_bitrate * 8 / 10)
        .saturating_sub(AUDIO_BITRATE)
        .max(400_000);
    let short = RENDITION_SHORT_SIDE;
    let mut args: Vec<String> = vec!["-i".into(), input.display().to_string()];
    args.extend(
        [
            "-map",
            "0:v:0",
            "-map",
            "0:a:0?",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "23",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-ac",
            "2",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
        ]
        .map(String::from),
    );
    args.extend([
        "-vf".into(),
        format!("scale='if(gt(iw,ih),-2,min({short},iw))':'if(gt(iw,ih),min({short},ih),-2)'"),
        "-maxrate".into(),
        video_rate.to_string(),
        "-bufsize".into(),
        (video_rate * 2).to_string(),
        "-b:a".into(),
        AUDIO_BITRATE.to_string(),
        out.display().to_string(),
    ]);
    ffmpeg(app, job, args, media.duration).await?;
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    let bitrate = media
        .duration
        .filter(|d| *d > 0.0)
        .map(|d| (size as f64 * 8.0 / d).round() as u64);
    let (width, height) = scaled(media, RENDITION_SHORT_SIDE, true);
    let label = height
        .zip(width)
        .map_or("h264".to_string(), |(h, w)| format!("h264-{}p", h.min(w)));
    finish_file(
        app,
        temp,
        &out,
        RENDITION,
        &label,
        "mp4",
        "video/mp4",
        width,
        height,
        bitrate,
    )
    .await
}

/// The size a picture of `m` gets when its width (or, for `short_side`, its shorter side) is
/// capped at `cap`, with even numbers as the encoders want.
fn scaled(m: &MediaInfo, cap: u32, short_side: bool) -> (Option<u32>, Option<u32>) {
    let (Some(w), Some(h)) = (m.width, m.height) else {
        return (None, None);
    };
    let even = |x: f64| ((x / 2.0).round() * 2.0) as u32;
    if short_side {
        if w > h && h > cap {
            (Some(even(w as f64 * cap as f64 / h as f64)), Some(cap))
        } else if h >= w && w > cap {
            (Some(cap), Some(even(h as f64 * cap as f64 / w as f64)))
        } else {
            (Some(w), Some(h))
        }
    } else if w > cap {
        (Some(cap), Some(even(h as f64 * cap as f64 / w as f64)))
    } else {
        (Some(w), Some(h))
    }
}

/// Hashes a made file and describes it; a file name that changes with each one, so a cached
/// copy of an older poster is never mistaken for the new one.
#[allow(clippy::too_many_arguments)]
async fn finish_file(
    app: &AppState,
    temp: String,
    path: &Path,
    kind: &str,
    stem: &str,
    extension: &str,
    content_type: &str,
    width: Option<u32>,
    height: Option<u32>,
    bitrate: Option<u64>,
) -> Result<Made, Failure> {
    let p = path.to_path_buf();
    let hashed = tokio::task::spawn_blocking(move || sha256_file(&p))
        .await
        .map_err(|e| Failure::Error(e.to_string()))?;
    let (size, sha256) = match hashed {
        Ok((size, sha)) if size > 0 => (size, sha),
        Ok(_) => {
            let _ = app.storage.remove_temp(&temp);
            return Err(Failure::Error("ffmpeg made an empty file".into()));
        }
        Err(e) => return Err(Failure::Error(format!("reading ffmpeg's output: {e}"))),
    };
    let file_name = format!("{stem}-{}.{extension}", &sha256[..12]);
    Ok(Made::File {
        temp,
        asset: Asset {
            kind: kind.into(),
            file_name,
            content_type: content_type.into(),
            size,
            sha256,
            width,
            height,
            bitrate,
            origin: "ffmpeg".into(),
        },
    })
}

fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        size += n as u64;
        ctx.update(&buf[..n]);
    }
    Ok((size, crate::storage::hex(ctx.finish().as_ref())))
}

/// Runs ffmpeg with `args` (after its common flags), at the lowest priority. With `duration`,
/// reads its progress and records it about once a second; stops it when the job is no longer
/// this run's. An error carries the end of what ffmpeg said.
async fn ffmpeg(
    app: &AppState,
    job: &Job,
    args: Vec<String>,
    duration: Option<f64>,
) -> Result<(), Failure> {
    let Some(bin) = app.media.ffmpeg() else {
        return Err(Failure::Error("ffmpeg is no longer configured".into()));
    };
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(["-progress", "pipe:1", "-nostats"])
        .args(&args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    crate::sys::helper_process(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::Error(format!("cannot start {}: {e}", bin.display())))?;
    let mut stderr = child.stderr.take().expect("piped");
    let said = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let mut last_report = std::time::Instant::now();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(us) = line.strip_prefix("out_time_us=") else {
            continue;
        };
        let (Some(total), Ok(us)) = (duration.filter(|d| *d > 0.0), us.trim().parse::<f64>())
        else {
            continue;
        };
        if last_report.elapsed() < Duration::from_secs(1) {
            continue;
        }
        last_report = std::time::Instant::now();
        let progress = (us / 1e6 / total).clamp(0.0, 0.99);
        let (j, now) = (job.clone(), now_ms());
        let current = app
            .db
            .write(move |c| Ok::<_, ApiError>(db::jobs::report(c, &j, progress, now)?))
            .await
            .unwrap_or(true);
        if !current {
            let _ = child.kill().await;
            return Err(Failure::Stale);
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| Failure::Error(format!("waiting for ffmpeg: {e}")))?;
    let said = said.await.unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let tail: String = said
        .trim()
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .join(" / ");
    Err(Failure::Error(format!(
        "ffmpeg {status}: {}",
        if tail.is_empty() {
            "it said nothing"
        } else {
            &tail
        }
    )))
}

/// The image types a poster may be sent as, recognised by their first bytes.
fn image_type(body: &[u8]) -> Option<(&'static str, &'static str)> {
    if body.starts_with(&[0xff, 0xd8, 0xff]) {
        Some(("image/jpeg", "jpg"))
    } else if body.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(("image/png", "png"))
    } else if body.len() > 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP" {
        Some(("image/webp", "webp"))
    } else {
        None
    }
}

/// Stores a poster sent through the API (JPEG, PNG or WebP), replacing any; a job never
/// replaces it. Returns the video.
pub async fn put_poster(app: &AppState, video_id: &str, body: &[u8]) -> Result<VideoRow, ApiError> {
    let video = crate::domain::videos::get(app, video_id).await?;
    if video.status != VideoStatus::Ready {
        return Err(ApiError::InvalidField(format!(
            "video `{video_id}` has no uploaded file yet; upload it before its poster"
        )));
    }
    let (content_type, ext) = image_type(body).ok_or_else(|| {
        ApiError::InvalidField("a poster must be a JPEG, PNG or WebP image".into())
    })?;
    let sha256 = {
        let d = ring::digest::digest(&ring::digest::SHA256, body);
        crate::storage::hex(d.as_ref())
    };
    let asset = Asset {
        kind: POSTER.into(),
        file_name: format!("poster-{}.{ext}", &sha256[..12]),
        content_type: content_type.into(),
        size: body.len() as u64,
        sha256,
        width: None,
        height: None,
        bitrate: None,
        origin: "upload".into(),
    };
    let file = asset.file_name.clone();
    let (storage, bytes, id, f) = (
        app.storage.clone(),
        body.to_vec(),
        video_id.to_string(),
        file.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let temp = storage.stage_bytes("poster", ext, &bytes)?;
        storage.publish_derived(&temp, &id, &f)
    })
    .await
    .map_err(|e| ApiError::internal("storing a poster", e))?
    .map_err(|e| ApiError::from_io("storing a poster", e))?;
    let (id, now) = (video_id.to_string(), now_ms());
    let replaced = app
        .db
        .write(move |c| {
            if db::videos::get(c, &id)?.is_none_or(|v| v.status != VideoStatus::Ready) {
                return Ok::<_, ApiError>(None);
            }
            let old = db::jobs::put_asset(c, &id, &asset, now)?;
            // A queued ffmpeg poster would only be skipped: drop it now.
            db::jobs::drop_waiting(c, &id, POSTER)?;
            Ok(Some(old))
        })
        .await?;
    let Some(old) = replaced else {
        remove_later(app, video_id, Some(file)).await;
        return Err(ApiError::NotFound(format!(
            "there is no video with id `{video_id}`"
        )));
    };
    remove_later(app, video_id, old).await;
    crate::domain::videos::get(app, video_id).await
}

/// Removes a video's poster; with ffmpeg, queues one made from the video. 404 when it has none.
pub async fn delete_poster(app: &AppState, video_id: &str) -> Result<VideoRow, ApiError> {
    let video = crate::domain::videos::get(app, video_id).await?;
    let sha = video.sha256.clone();
    let remake = !jobs_for_video(app, &video).is_empty();
    let (id, now) = (video_id.to_string(), now_ms());
    let old = app
        .db
        .write(move |c| {
            let old = db::jobs::remove_asset(c, &id, POSTER)?;
            if let (Some(_), Some(sha), true) = (&old, &sha, remake) {
                db::jobs::enqueue(c, &id, POSTER, sha, now)?;
                db::jobs::refresh(c, &id)?;
            }
            Ok::<_, ApiError>(old)
        })
        .await?;
    let Some(old) = old else {
        return Err(ApiError::NotFound(format!(
            "video `{video_id}` has no poster"
        )));
    };
    remove_later(app, video_id, Some(old)).await;
    app.media.wake();
    crate::domain::videos::get(app, video_id).await
}

fn jobs_for_video(app: &AppState, v: &VideoRow) -> Vec<&'static str> {
    let media: MediaInfo = v
        .media
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    jobs_for(app, &media)
        .into_iter()
        .filter(|k| *k == POSTER)
        .collect()
}

/// Removes a derived file a committed change no longer names (a crash first leaves it to fsck).
pub(crate) async fn remove_later(app: &AppState, video_id: &str, file: Option<String>) {
    let Some(file) = file else { return };
    let (storage, id) = (app.storage.clone(), video_id.to_string());
    match tokio::task::spawn_blocking(move || storage.remove_derived(&id, &file)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => log::warn!("could not remove an old poster or rendition of {video_id}: {e}"),
        Err(e) => log::warn!("could not remove an old poster or rendition of {video_id}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn media(
        container: &str,
        codec: Option<&str>,
        playable: Option<bool>,
        bitrate: Option<u64>,
    ) -> MediaInfo {
        MediaInfo {
            container: container.into(),
            video_codec: codec.map(String::from),
            playable,
            bitrate,
            ..MediaInfo::default()
        }
    }

    #[test]
    fn renditions_only_for_what_browsers_cannot_play_or_what_is_too_heavy() {
        let max = 20_000_000;
        assert!(rendition_reason(
            &media("mp4", Some("h264"), Some(true), Some(5_000_000)),
            max
        )
        .is_none());
        assert!(rendition_reason(&media("webm", None, None, None), max).is_none());
        let hevc = rendition_reason(
            &media("mov", Some("hevc"), Some(false), Some(5_000_000)),
            max,
        );
        assert!(hevc.unwrap().contains("hevc"));
        let heavy = rendition_reason(
            &media("mp4", Some("h264"), Some(true), Some(40_000_000)),
            max,
        );
        assert!(heavy.unwrap().contains("max_stream_bitrate"));
        assert!(rendition_reason(&media("matroska", None, None, None), max).is_some());
        assert!(rendition_reason(&media("mp4", None, None, None), max).is_some());
    }

    #[test]
    fn the_poster_is_at_thumbnail_time_when_inside_the_video_else_a_tenth_in() {
        let mut s = EmbedSettings::from_stored(None);
        assert_eq!(poster_time(&s, Some(50.0)), 5.0);
        s.thumbnail_time = 12.0;
        assert_eq!(poster_time(&s, Some(50.0)), 12.0);
        assert_eq!(poster_time(&s, Some(10.0)), 1.0);
    }

    #[test]
    fn pictures_are_capped_with_even_sides() {
        let m = MediaInfo {
            width: Some(3840),
            height: Some(2160),
            ..MediaInfo::default()
        };
        assert_eq!(scaled(&m, 1080, true), (Some(1920), Some(1080)));
        assert_eq!(scaled(&m, 1280, false), (Some(1280), Some(720)));
        let portrait = MediaInfo {
            width: Some(1080),
            height: Some(1920),
            ..MediaInfo::default()
        };
        assert_eq!(scaled(&portrait, 1080, true), (Some(1080), Some(1920)));
        assert_eq!(scaled(&MediaInfo::default(), 1080, true), (None, None));
    }

    #[test]
    fn posters_are_recognised_by_their_first_bytes() {
        assert_eq!(
            image_type(&[0xff, 0xd8, 0xff, 0xe0]).unwrap().0,
            "image/jpeg"
        );
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n....").unwrap().0, "image/png");
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 ").unwrap().0, "image/webp");
        assert!(image_type(b"GIF89a").is_none());
    }
}
