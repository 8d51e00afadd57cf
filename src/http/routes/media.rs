//! `GET`/`HEAD` at the public URL: the stored bytes, with one Range and conditional requests.

use actix_web::body::SizedStream;
use actix_web::http::header::{self};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::names::{check_path_name, content_type_for};
use crate::domain::passwords;
use crate::domain::videos;
use crate::error::ApiError;
use crate::http::media::{plan, validator_headers};
use crate::http::ranges::{evaluate, parse_range, Precondition, RangeAnswer, Validators};
use crate::state::AppState;
use crate::storage::{Bucket, FileChunks, ObjectKey};

/// The video a media path names, when both names are safe and it exists; else the one 404
/// every media path gives, which says nothing of which part was wrong.
async fn video_at(
    app: &AppState,
    video_id: &str,
    file_name: &str,
) -> Result<crate::db::videos::VideoRow, ApiError> {
    let not_found = || ApiError::NotFound("there is no file at this URL".into());
    if check_path_name("videoId", video_id).is_err()
        || check_path_name("fileName", file_name).is_err()
    {
        return Err(not_found());
    }
    match videos::get(app, video_id).await {
        Err(ApiError::NotFound(_)) => Err(not_found()),
        other => other,
    }
}

pub async fn get(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (video_id, file_name) = path.into_inner();
    let not_found = || ApiError::NotFound("there is no file at this URL".into());
    let video = video_at(&app, &video_id, &file_name).await?;
    // One video, one object: only the one its record names is public.
    if !videos::is_public_object(&video, &file_name) {
        return Err(not_found());
    }
    let grant = super::pages::cookie(&req, &passwords::cookie_name(&video.id));
    if !videos::unlocked(&app, &video, grant.as_deref()) {
        return Err(ApiError::PasswordRequired { video_id: video.id });
    }
    let protected = video.password_hash.is_some();
    let content_type = content_type_for(&file_name).unwrap_or("application/octet-stream");
    if let Some(bucket) = app.storage.bucket() {
        return from_bucket(&app, bucket, &req, video, &file_name, content_type).await;
    }
    let key = ObjectKey {
        video_id,
        file_name,
    };
    // Opened on this thread, as nginx does: an open and an fstat of a file whose directory
    // entries are cached take microseconds, less than the hop to a blocking thread. Reads the
    // page cache can answer are made here too (`FileChunks`).
    let (file, meta) = app
        .storage
        .open_object(&key)
        .map_err(|e| ApiError::from_io("opening an object", e))?
        .ok_or_else(not_found)?;

    answer(&req, file, meta, content_type, protected)
}

/// The answer from a bucket. The record names the object by its content; an upload that
/// replaces it removes the old object once its own record is committed, so a reader that read
/// the old record just before finds no object: it reads the record again, once.
async fn from_bucket(
    app: &AppState,
    bucket: &Bucket,
    req: &HttpRequest,
    mut video: crate::db::videos::VideoRow,
    file_name: &str,
    content_type: &'static str,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::NotFound("there is no file at this URL".into());
    for attempt in 0..2 {
        if attempt > 0 {
            video = video_at(app, &video.id, file_name).await?;
            if !videos::is_public_object(&video, file_name) {
                return Err(not_found());
            }
            let grant = super::pages::cookie(req, &passwords::cookie_name(&video.id));
            if !videos::unlocked(app, &video, grant.as_deref()) {
                return Err(ApiError::PasswordRequired { video_id: video.id });
            }
        }
        let protected = video.password_hash.is_some();
        let key = video.object_key.clone().ok_or_else(not_found)?;
        if let Some(url) = bucket.public_url(&key).filter(|_| !protected) {
            // The store (a website endpoint, a CDN) answers Range and conditionals itself.
            return Ok(HttpResponse::Found()
                .insert_header((header::LOCATION, url))
                .insert_header((header::CACHE_CONTROL, "no-cache"))
                .finish());
        }
        if let Some(res) = bucket_answer(req, bucket, &key, content_type, protected).await? {
            return Ok(res);
        }
    }
    Err(not_found())
}

/// The answer from the object at `key` in the bucket; `None` when there is none.
async fn bucket_answer(
    req: &HttpRequest,
    bucket: &Bucket,
    key: &str,
    content_type: &'static str,
    protected: bool,
) -> Result<Option<HttpResponse>, ApiError> {
    let read_error = |e| ApiError::from_io("reading an object in the S3 bucket", e);
    let Some(meta) = bucket.head(key).await.map_err(read_error)? else {
        return Ok(None);
    };
    let (mut res, start, len) = match prepare(req, &meta, content_type, protected, false)? {
        Prepared::Done(res) => return Ok(Some(res)),
        Prepared::Send(res, start, len) => (res, start, len),
    };
    Ok(bucket
        .read(key, start, len)
        .await
        .map_err(read_error)?
        .map(|body| res.body(SizedStream::new(len, Box::pin(body)))))
}

/// What a GET or HEAD is to be answered with, once its conditionals and Range are settled.
enum Prepared {
    /// A 304, or a HEAD's answer: nothing to send.
    Done(HttpResponse),
    /// The response's head, and the bytes to send: `len` from `start`.
    Send(actix_web::HttpResponseBuilder, u64, u64),
}

/// Conditionals and one Range, against the object's validators.
fn prepare(
    req: &HttpRequest,
    meta: &crate::storage::ObjectMeta,
    content_type: &'static str,
    protected: bool,
    date_is_strong: bool,
) -> Result<Prepared, ApiError> {
    let validators = Validators {
        etag: meta.etag.clone(),
        last_modified: meta.modified,
        date_is_strong,
    };
    let use_range = match evaluate(req.headers(), &validators, std::time::SystemTime::now()) {
        Precondition::Failed => return Err(ApiError::PreconditionFailed),
        Precondition::NotModified => {
            let mut res = HttpResponse::build(StatusCode::NOT_MODIFIED);
            for h in validator_headers(meta, protected) {
                res.insert_header(h);
            }
            return Ok(Prepared::Done(res.finish()));
        }
        Precondition::Send { use_range } => use_range,
    };
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .filter(|_| use_range)
        .map_or(RangeAnswer::Full, |h| parse_range(h, meta.size));
    let plan = plan(meta, content_type, protected, range)?;
    let mut res = HttpResponse::build(plan.status);
    for h in plan.headers {
        res.insert_header(h);
    }
    if req.method() == Method::HEAD {
        // The length is announced; no byte is read.
        let empty = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
        return Ok(Prepared::Done(res.body(SizedStream::new(plan.len, empty))));
    }
    Ok(Prepared::Send(res, plan.start, plan.len))
}

/// The answer to a GET or HEAD of an open file: conditionals, one Range, the bytes.
fn answer(
    req: &HttpRequest,
    file: std::fs::File,
    meta: crate::storage::ObjectMeta,
    content_type: &'static str,
    protected: bool,
) -> Result<HttpResponse, ApiError> {
    let (mut res, start, len) = match prepare(req, &meta, content_type, protected, true)? {
        Prepared::Done(res) => return Ok(res),
        Prepared::Send(res, start, len) => (res, start, len),
    };
    Ok(res.body(SizedStream::new(len, FileChunks::new(file, start, len))))
}

/// `GET`/`HEAD /media/:id/derived/:file`: a poster or rendition the video's record names, under
/// the video's password rules, with the same Range and conditionals as the object.
pub async fn derived(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (video_id, file_name) = path.into_inner();
    let not_found = || ApiError::NotFound("there is no file at this URL".into());
    let video = video_at(&app, &video_id, &file_name).await?;
    let derived = videos::derived(&video);
    let Some(asset) = derived.assets.iter().find(|a| a.file_name == file_name) else {
        return Err(not_found());
    };
    let grant = super::pages::cookie(&req, &passwords::cookie_name(&video.id));
    if !videos::unlocked(&app, &video, grant.as_deref()) {
        return Err(ApiError::PasswordRequired { video_id: video.id });
    }
    let content_type = match asset.content_type.as_str() {
        "image/jpeg" => "image/jpeg",
        "image/png" => "image/png",
        "image/webp" => "image/webp",
        "video/mp4" => "video/mp4",
        _ => "application/octet-stream",
    };
    let protected = video.password_hash.is_some();
    if let Some(bucket) = app.storage.bucket() {
        let key = Bucket::derived_key(&video_id, &file_name);
        return match bucket_answer(&req, bucket, &key, content_type, protected).await? {
            Some(res) => Ok(res),
            None => Err(not_found()),
        };
    }
    let (file, meta) = app
        .storage
        .open_derived(&video_id, &file_name)
        .map_err(|e| ApiError::from_io("opening a poster or rendition", e))?
        .ok_or_else(not_found)?;
    answer(&req, file, meta, content_type, protected)
}

/// `GET`/`HEAD /media/:id/captions/:lang.vtt`: one language's WebVTT, under the video's
/// password rules.
pub async fn captions(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (video_id, file) = path.into_inner();
    let not_found = || ApiError::NotFound("there are no captions at this URL".into());
    let lang = file.strip_suffix(".vtt").ok_or_else(not_found)?;
    let video = match videos::get(&app, &video_id).await {
        Err(ApiError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let grant = super::pages::cookie(&req, &passwords::cookie_name(&video.id));
    if !videos::unlocked(&app, &video, grant.as_deref()) {
        return Err(ApiError::PasswordRequired { video_id: video.id });
    }
    let (text, updated) = crate::domain::captions::text(&app, &video_id, lang)
        .await?
        .ok_or_else(not_found)?;
    let mut res = HttpResponse::Ok();
    res.insert_header((header::CONTENT_TYPE, "text/vtt; charset=utf-8"))
        .insert_header((header::ETAG, format!("\"c{updated:x}-{:x}\"", text.len())))
        .insert_header((
            header::CACHE_CONTROL,
            if video.password_hash.is_some() {
                "private, no-cache"
            } else {
                "no-cache"
            },
        ));
    if req.method() == Method::HEAD {
        return Ok(res.finish());
    }
    Ok(res.body(text))
}
