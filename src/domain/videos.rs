//! Video records: create, read, list, update, delete, embed settings, and the JSON the API shows.
//! Shared by the HTTP routes and the `flare video …` commands.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

use crate::db::{
    self,
    videos::{VideoRow, VideoStatus},
};
use crate::domain::embed::EmbedSettings;
use crate::domain::passwords;
use crate::domain::signing::encode_segment;
use crate::error::ApiError;
use crate::ids::random_id;
use crate::state::AppState;
use crate::time::{iso8601, now_ms};

/// The longest title accepted, in characters.
const MAX_TITLE_CHARS: usize = 500;
pub(crate) const DEFAULT_PAGE: u32 = 50;
pub(crate) const MAX_PAGE: u32 = 200;

/// A new video as a request describes it, its fields already checked (`http::requests`).
pub struct NewVideo {
    pub file_name: String,
    /// A chosen id; `None`: a random one.
    pub id: Option<String>,
    pub source: String,
    /// `None`: the file name.
    pub title: Option<String>,
    pub width: Option<f64>,
    pub height: Option<f64>,
    pub duration: Option<f64>,
}

/// What `PATCH /api/video/update/:id` changes: `None` leaves a field as it is; a password of
/// `Some(None)` removes protection.
pub struct VideoUpdate {
    pub title: Option<String>,
    pub password: Option<Option<String>>,
}

/// Stores a new video; 409 when the id is taken.
pub async fn create(app: &AppState, new: NewVideo) -> Result<VideoRow, ApiError> {
    let NewVideo {
        file_name,
        id,
        source,
        title,
        width,
        height,
        duration,
    } = new;
    let id = id.unwrap_or_else(|| random_id(&app.rng, "vid_", 15));
    let title = title.unwrap_or_else(|| file_name.clone());
    let now = now_ms();
    let mut row = VideoRow {
        title: Some(title),
        id,
        file_name,
        source,
        width,
        height,
        duration,
        status: VideoStatus::Pending,
        object_name: None,
        size: None,
        content_type: None,
        sha256: None,
        password_hash: None,
        embed_settings: None,
        media: None,
        captions: None,
        derived: None,
        object_key: None,
        created_at: now,
        updated_at: now,
        seq: 0,
    };
    let stored = row.clone();
    let hooks = app.settings.webhooks_for("video.created");
    let seq = app
        .db
        .write(move |conn| {
            let seq = db::videos::insert(conn, &stored)?;
            if seq.is_some() {
                crate::domain::webhooks::record(conn, &hooks, "video.created", &stored, now)?;
            }
            Ok::<_, ApiError>(seq)
        })
        .await?;
    row.seq = seq.ok_or_else(|| {
        ApiError::Conflict(format!("a video with id `{}` already exists", row.id))
    })?;
    crate::domain::webhooks::wake();
    Ok(row)
}

pub(crate) fn check_title(title: String) -> Result<String, ApiError> {
    let trimmed = title.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > MAX_TITLE_CHARS
        || trimmed.chars().any(char::is_control)
    {
        return Err(ApiError::InvalidField(format!(
            "title must be 1 to {MAX_TITLE_CHARS} printable characters"
        )));
    }
    Ok(trimmed.to_string())
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("there is no video with id `{id}`"))
}

pub async fn get(app: &AppState, id: &str) -> Result<VideoRow, ApiError> {
    let key = id.to_string();
    app.db
        .read_on_executor::<_, ApiError, _>(move |conn| db::videos::get(conn, &key))
        .await?
        .ok_or_else(|| not_found(id))
}

/// One page of the newest videos, and the cursor of the next page when there is one.
pub async fn list(
    app: &AppState,
    limit: u32,
    cursor: Option<&str>,
) -> Result<(Vec<VideoRow>, Option<String>), ApiError> {
    let before = cursor.map(decode_cursor).transpose()?;
    // One more than asked tells whether another page exists. Paging by the creation sequence
    // means a video created or deleted meanwhile never shifts the pages already handed out.
    let mut rows = app
        .db
        .read(move |conn| Ok::<_, ApiError>(db::videos::page(conn, before, limit + 1)?))
        .await?;
    let next = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(|v| encode_cursor(v.seq))
    } else {
        None
    };
    Ok((rows, next))
}

fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, ApiError> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("seq:").and_then(|n| n.parse().ok()))
        .ok_or_else(|| {
            ApiError::InvalidField(
                "cursor is not one this server handed out; use nextCursor as given".into(),
            )
        })
}

/// `PATCH /api/video/update/:id`: `title` renames; a `password` string protects, `null` clears.
pub async fn update(app: &AppState, id: &str, change: VideoUpdate) -> Result<VideoRow, ApiError> {
    let title = change.title;
    // Absent: unchanged. None: cleared. A password: hashed (slowly, off the executor).
    let password: Option<Option<String>> = match change.password {
        None => None,
        Some(None) => Some(None),
        Some(Some(p)) => {
            let rng = app.rng.clone();
            let hashed = tokio::task::spawn_blocking(move || passwords::hash(&rng, &p))
                .await
                .map_err(|e| ApiError::internal("hashing a password", e))?;
            Some(Some(hashed))
        }
    };
    let key = id.to_string();
    let hooks = app.settings.webhooks_for("video.updated");
    let updated = app
        .db
        .write(move |conn| {
            let tx: &crate::db::Conn = conn;
            if db::videos::get(tx, &key)?.is_none() {
                return Err(not_found(&key));
            }
            let now = now_ms();
            if let Some(title) = &title {
                db::videos::set_title(tx, &key, title, now)?;
            }
            if let Some(hash) = &password {
                db::videos::set_password_hash(tx, &key, hash.as_deref(), now)?;
            }
            let row = db::videos::get(tx, &key)?.ok_or_else(|| not_found(&key))?;
            crate::domain::webhooks::record(tx, &hooks, "video.updated", &row, now)?;
            Ok(row)
        })
        .await;
    crate::domain::webhooks::wake();
    updated
}

/// Removes a video: its record, its upload rows and its files.
///
/// The order makes a crash at any point recoverable: first the row is marked `deleting` and its
/// upload rows go, in one transaction (the video vanishes from the API and its URLs die); then
/// the files go; then the row. A row left `deleting` is finished at the next start.
pub async fn delete(app: &AppState, id: &str) -> Result<(), ApiError> {
    let key = id.to_string();
    let hooks = app.settings.webhooks_for("video.deleted");
    let (marked, sessions) = app
        .db
        .write(move |conn| {
            let before = db::videos::get(conn, &key)?;
            // Resumable sessions kept in a bucket: their multipart uploads are aborted below.
            let sessions = db::uploads::session_stores_of(conn, &key)?;
            let marked = db::videos::begin_delete(conn, &key, now_ms())?;
            if let (true, Some(v)) = (marked, before) {
                crate::domain::webhooks::record(conn, &hooks, "video.deleted", &v, now_ms())?;
            }
            Ok::<_, ApiError>((marked, sessions))
        })
        .await?;
    if !marked {
        return Err(not_found(id));
    }
    crate::domain::webhooks::wake();
    let (storage, key) = (app.storage.clone(), id.to_string());
    tokio::task::spawn_blocking(move || {
        for (upload, stored) in sessions {
            if let Err(e) = storage.remove_session(&key, &upload, Some(&stored)) {
                log::warn!("could not abort a deleted video's resumable upload: {e}");
            }
        }
        storage.remove_video(&key)
    })
    .await
    .map_err(|e| ApiError::internal("removing a video's files", e))?
    .map_err(|e| ApiError::from_io("removing a video's files", e))?;
    let key = id.to_string();
    app.db
        .write(move |conn| Ok::<_, ApiError>(db::videos::finish_delete(conn, &key)?))
        .await?;
    log::info!("deleted video {id}");
    Ok(())
}

pub(crate) async fn embed_settings(app: &AppState, id: &str) -> Result<EmbedSettings, ApiError> {
    let video = get(app, id).await?;
    Ok(EmbedSettings::from_stored(video.embed_settings.as_deref()))
}

/// Merges a partial set of embed settings into what is stored and returns the whole result.
pub(crate) async fn update_embed_settings(
    app: &AppState,
    id: &str,
    patch: serde_json::Map<String, Value>,
) -> Result<EmbedSettings, ApiError> {
    let key = id.to_string();
    let poster_jobs = app.media.ffmpeg().is_some();
    app.db
        .write(move |conn| {
            let tx: &crate::db::Conn = conn;
            let video = db::videos::get(tx, &key)?.ok_or_else(|| not_found(&key))?;
            let before = EmbedSettings::from_stored(video.embed_settings.as_deref());
            let merged = before.merge(&patch)?;
            db::videos::set_embed_settings(tx, &key, &merged.to_json().to_string(), now_ms())?;
            // A poster made at the old thumbnailTime is made again at the new one.
            let remake = merged.thumbnail_time != before.thumbnail_time && poster_jobs;
            let requeued = remake && db::jobs::requeue_poster(tx, &video, now_ms())?;
            Ok((merged, requeued))
        })
        .await
        .map(|(merged, requeued)| {
            if requeued {
                app.media.wake();
            }
            merged
        })
}

/// `media_url/VIDEO_ID/composite/FILE`.
pub fn public_url(app: &AppState, video_id: &str, file_name: &str) -> String {
    format!(
        "{}/{}/composite/{}",
        app.media_url,
        encode_segment(video_id),
        encode_segment(file_name)
    )
}

/// Whether `file_name` is the object this video's record names (and so may be served).
pub(crate) fn is_public_object(v: &VideoRow, file_name: &str) -> bool {
    v.status == VideoStatus::Ready && v.object_name.as_deref() == Some(file_name)
}

/// The URL of the stored object, once there is one.
pub(crate) fn object_url(app: &AppState, v: &VideoRow) -> Option<String> {
    v.object_name
        .as_ref()
        .map(|name| public_url(app, &v.id, name))
}

/// The spec's Video object, serialized in the documented field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VideoJson<'a> {
    id: &'a str,
    title: Option<&'a str>,
    file_name: &'a str,
    source: &'a str,
    width: Option<f64>,
    height: Option<f64>,
    duration: Option<f64>,
    status: &'static str,
    size: Option<i64>,
    content_type: Option<&'a str>,
    sha256: Option<&'a str>,
    password_protected: bool,
    public_url: Option<String>,
    created_at: String,
    updated_at: String,
    /// What the probe learnt of the stored object; absent before an upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<crate::domain::probe::MediaInfo>,
    /// Caption tracks; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    captions: Vec<CaptionJson>,
    /// The poster picture; absent when there is none (yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    poster_url: Option<String>,
    /// Lighter or more playable copies for the players; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    renditions: Vec<RenditionJson>,
    /// Poster and rendition jobs; absent when there are none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    jobs: Vec<JobJson>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RenditionJson {
    /// `ready`; or `processing` / `failed` while its job runs or after it failed (then only
    /// `videoCodec` is known).
    status: &'static str,
    video_codec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    bitrate: Option<u64>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JobJson {
    kind: String,
    state: String,
    progress: f64,
    attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    updated_at: String,
}

/// The codec of a rendition of `kind`: ffmpeg's are H.264; a fast-start copy keeps the
/// original's.
fn rendition_codec(kind: &str, original: Option<&str>) -> String {
    if kind == crate::db::jobs::RENDITION {
        "h264".into()
    } else {
        original.unwrap_or("unknown").into()
    }
}

/// A video's posters, renditions and jobs, from its row.
pub(crate) fn derived(v: &VideoRow) -> crate::db::jobs::Derived {
    v.derived
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default()
}

/// Where a poster or rendition is served (like the object, under media_url).
pub fn derived_url(app: &AppState, video_id: &str, file: &str) -> String {
    format!(
        "{}/{}/derived/{}",
        app.media_url,
        encode_segment(video_id),
        encode_segment(file)
    )
}

/// The poster's URL, if the video has one.
pub(crate) fn poster_url(app: &AppState, v: &VideoRow) -> Option<String> {
    derived(v)
        .assets
        .iter()
        .find(|a| a.kind == crate::db::jobs::POSTER)
        .map(|a| derived_url(app, &v.id, &a.file_name))
}

/// The renditions' URLs and types, for the players' `<source>`s.
pub(crate) fn rendition_sources(app: &AppState, v: &VideoRow) -> Vec<(String, String)> {
    derived(v)
        .assets
        .iter()
        .filter(|a| a.kind != crate::db::jobs::POSTER)
        .map(|a| {
            (
                derived_url(app, &v.id, &a.file_name),
                a.content_type.clone(),
            )
        })
        .collect()
}

#[derive(serde::Serialize)]
pub(crate) struct CaptionJson {
    lang: String,
    label: String,
    url: String,
}

/// A video's caption tracks, from its row.
pub(crate) fn caption_tracks(v: &VideoRow) -> Vec<crate::db::captions::CaptionTrack> {
    v.captions
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default()
}

/// Where one language's captions are served (like the object, under media_url).
pub fn caption_url(app: &AppState, video_id: &str, lang: &str) -> String {
    format!(
        "{}/{}/captions/{}.vtt",
        app.media_url,
        encode_segment(video_id),
        encode_segment(lang)
    )
}

/// The spec's Video object for a row.
pub(crate) fn to_json<'a>(app: &AppState, v: &'a VideoRow) -> VideoJson<'a> {
    VideoJson {
        id: &v.id,
        title: v.title.as_deref(),
        file_name: &v.file_name,
        source: &v.source,
        width: v.width,
        height: v.height,
        duration: v.duration,
        status: v.status.as_str(),
        size: v.size,
        content_type: v.content_type.as_deref(),
        sha256: v.sha256.as_deref(),
        password_protected: v.password_hash.is_some(),
        public_url: object_url(app, v),
        created_at: iso8601(v.created_at),
        updated_at: iso8601(v.updated_at),
        media: v
            .media
            .as_deref()
            .and_then(|m| serde_json::from_str(m).ok()),
        captions: caption_tracks(v)
            .into_iter()
            .map(|t| CaptionJson {
                url: caption_url(app, &v.id, &t.lang),
                lang: t.lang,
                label: t.label,
            })
            .collect(),
        poster_url: poster_url(app, v),
        renditions: {
            let d = derived(v);
            let original_codec = v
                .media
                .as_deref()
                .and_then(|m| serde_json::from_str::<crate::domain::probe::MediaInfo>(m).ok())
                .and_then(|m| m.video_codec);
            let mut list: Vec<RenditionJson> = d
                .assets
                .into_iter()
                .filter(|a| a.kind != crate::db::jobs::POSTER)
                .map(|a| RenditionJson {
                    status: "ready",
                    video_codec: rendition_codec(&a.kind, original_codec.as_deref()),
                    url: Some(derived_url(app, &v.id, &a.file_name)),
                    content_type: Some(a.content_type),
                    size: Some(a.size),
                    sha256: Some(a.sha256),
                    width: a.width,
                    height: a.height,
                    bitrate: a.bitrate,
                })
                .collect();
            for j in d.jobs.iter().filter(|j| j.kind != crate::db::jobs::POSTER) {
                let status = match j.state.as_str() {
                    "queued" | "running" => "processing",
                    "failed" => "failed",
                    _ => continue,
                };
                list.push(RenditionJson {
                    status,
                    video_codec: rendition_codec(&j.kind, original_codec.as_deref()),
                    url: None,
                    content_type: None,
                    size: None,
                    sha256: None,
                    width: None,
                    height: None,
                    bitrate: None,
                });
            }
            list
        },
        jobs: derived(v)
            .jobs
            .into_iter()
            .map(|j| JobJson {
                kind: j.kind,
                state: j.state,
                progress: (j.progress * 100.0).round() / 100.0,
                attempts: j.attempts,
                error: j.error,
                updated_at: iso8601(j.updated_at),
            })
            .collect(),
    }
}

/// Whether a viewer may have this video's bytes: it is public, or `grant` (the access cookie's
/// value) is live for it.
pub fn unlocked(app: &AppState, v: &VideoRow, grant: Option<&str>) -> bool {
    match &v.password_hash {
        None => true,
        Some(hash) => grant.is_some_and(|g| {
            app.verifying_keys
                .iter()
                .any(|key| passwords::check_grant(key, &v.id, hash, g, now_ms() / 1000))
        }),
    }
}

/// Why a password did not unlock a video.
pub enum UnlockRefused {
    Wrong,
    /// Too many wrong guesses from this client for this video: seconds to wait.
    Slowed(u64),
}

/// Checks a password against a protected video; on success, the access grant for its cookie.
pub async fn unlock(
    app: &AppState,
    v: &VideoRow,
    client: std::net::IpAddr,
    password: String,
) -> Result<Result<String, UnlockRefused>, ApiError> {
    let Some(hash) = v.password_hash.clone() else {
        return Ok(Ok(String::new()));
    };
    // The guess is paid for before the costly hash, so concurrent guesses are counted too.
    if let Err(wait) = app.throttle.take(&v.id, client, std::time::Instant::now()) {
        return Ok(Err(UnlockRefused::Slowed(wait)));
    }
    let _permit = app
        .throttle
        .hashing
        .acquire()
        .await
        .map_err(|e| ApiError::internal("waiting to check a password", e))?;
    let stored = hash.clone();
    let right = tokio::task::spawn_blocking(move || passwords::verify(&stored, &password))
        .await
        .map_err(|e| ApiError::internal("checking a password", e))?;
    if !right {
        log::info!("wrong password for video {}", v.id);
        return Ok(Err(UnlockRefused::Wrong));
    }
    app.throttle.refund(&v.id, client);
    let expires = now_ms() / 1000 + passwords::GRANT_SECS;
    Ok(Ok(passwords::grant(
        app.signing_key(),
        &v.id,
        &hash,
        expires,
    )))
}
