//! `GET`/`HEAD` at the public URL: the stored bytes, with one Range and conditional requests.

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HttpDate};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::names::{check_path_name, content_type_for};
use crate::passwords;
use crate::ranges::{evaluate, parse_range, Precondition, RangeAnswer, Validators};
use crate::startup::AppState;
use crate::storage::{FileChunks, ObjectKey};
use crate::videos;

pub async fn get(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (video_id, file_name) = path.into_inner();
    let not_found = || ApiError::NotFound("there is no file at this URL".into());
    if check_path_name("videoId", &video_id).is_err()
        || check_path_name("fileName", &file_name).is_err()
    {
        return Err(not_found());
    }
    let video = match videos::get(&app, &video_id).await {
        Err(ApiError::NotFound(_)) => return Err(not_found()),
        other => other?,
    };
    let grant = super::pages::cookie(&req, &passwords::cookie_name(&video.id));
    if !videos::unlocked(&app, &video, grant.as_deref()) {
        return Err(ApiError::PasswordRequired { video_id: video.id });
    }
    let protected = video.password_hash.is_some();
    let content_type = content_type_for(&file_name).unwrap_or("application/octet-stream");
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

    let validators = Validators {
        etag: meta.etag.clone(),
        last_modified: meta.modified,
    };
    let mut res = HttpResponse::build(StatusCode::OK);
    if protected {
        res.insert_header((header::CACHE_CONTROL, "private, no-store"));
    }
    res.insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::ETAG, meta.etag.clone()))
        .insert_header((header::LAST_MODIFIED, HttpDate::from(meta.modified)));
    let use_range = match evaluate(req.headers(), &validators) {
        Precondition::NotModified => return Ok(res.status(StatusCode::NOT_MODIFIED).finish()),
        Precondition::Send { use_range } => use_range,
    };
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|h| h.to_str().ok())
        .filter(|_| use_range)
        .map_or(RangeAnswer::Full, |h| parse_range(h, meta.size));
    let (start, len) = match range {
        RangeAnswer::Full => (0, meta.size),
        RangeAnswer::Partial { start, end } => {
            res.status(StatusCode::PARTIAL_CONTENT).insert_header((
                header::CONTENT_RANGE,
                format!("bytes {start}-{end}/{}", meta.size),
            ));
            (start, end - start + 1)
        }
        RangeAnswer::Unsatisfiable => {
            return Err(ApiError::RangeNotSatisfiable { size: meta.size })
        }
    };
    res.insert_header((header::CONTENT_TYPE, content_type));
    if req.method() == Method::HEAD {
        // The length is announced; no byte is read.
        let empty = futures_util::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
        return Ok(res.body(SizedStream::new(len, empty)));
    }
    Ok(res.body(SizedStream::new(len, FileChunks::new(file, start, len))))
}
