//! `PUT /upload/VIDEO_ID/composite/FILE?…signature…`: the signed upload URL (a resumable one,
//! with `resumable=` in its query, goes to `resumable`).

use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, ETAG};
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::domain::uploads::{self, PutRequest};
use crate::error::ApiError;
use crate::state::AppState;

pub async fn put(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    // A resumable URL (and tus discovery) is served by its own protocols.
    let resumable = req
        .query_string()
        .split('&')
        .any(|p| p.starts_with("resumable="));
    if resumable || req.method() == actix_web::http::Method::OPTIONS {
        return Ok(super::resumable::handle(app, req, path, payload).await);
    }
    let (video_id, file_name) = path.into_inner();
    let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let put = PutRequest {
        method: req.method().as_str(),
        video_id: &video_id,
        file_name: &file_name,
        raw_query: req.query_string(),
        content_type: header(CONTENT_TYPE),
        content_length: header(CONTENT_LENGTH).and_then(|v| v.parse().ok()),
    };
    let stored = uploads::receive(&app, put, payload).await?;
    Ok(HttpResponse::Ok()
        .insert_header((ETAG, stored.meta.etag))
        .json(json!({
            "success": true,
            "size": stored.size,
            "sha256": stored.sha256,
            "publicUrl": stored.public_url,
        })))
}
