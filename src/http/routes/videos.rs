//! The video endpoints: create, list, read, update, delete, embed settings.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::domain::auth;
use crate::domain::tokens::Scope;
use crate::domain::videos::{self, DEFAULT_PAGE, MAX_PAGE};
use crate::error::ApiError;
use crate::state::AppState;

type Id = web::Path<String>;

pub async fn create(
    app: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    let body = crate::http::body::read_json(&req, payload).await?;
    let new = crate::http::requests::new_video(&body, super::route_words())?;
    let video = videos::create(&app, new).await?;
    Ok(HttpResponse::Created()
        .json(json!({ "success": true, "video": videos::to_json(&app, &video) })))
}

pub async fn list(app: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosRead).await?;
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| ApiError::InvalidField("the query string could not be read".into()))?;
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let limit = crate::http::requests::limit_query(req.query_string(), DEFAULT_PAGE, MAX_PAGE)?;
    let (rows, next) = videos::list(&app, limit, param("cursor").filter(|c| !c.is_empty())).await?;
    let list: Vec<_> = rows.iter().map(|v| videos::to_json(&app, v)).collect();
    Ok(HttpResponse::Ok().json(json!({ "success": true, "videos": list, "nextCursor": next })))
}

pub async fn get(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosRead).await?;
    let video = videos::get(&app, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "video": videos::to_json(&app, &video) })))
}

pub async fn update(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    let body = crate::http::body::read_json(&req, payload).await?;
    let change = crate::http::requests::video_update(&body)?;
    let video = videos::update(&app, &id, change).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "video": videos::to_json(&app, &video) })))
}

pub async fn delete(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    videos::delete(&app, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "deleted": true })))
}

pub(crate) async fn embed_settings(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosRead).await?;
    let settings = videos::embed_settings(&app, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "embedSettings": settings.to_json() })))
}

pub(crate) async fn update_embed_settings(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::EmbedsWrite).await?;
    let body = crate::http::body::read_json(&req, payload).await?;
    let patch = crate::http::requests::embed_patch(&body)?;
    let settings = videos::update_embed_settings(&app, &id, patch).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "embedSettings": settings.to_json() })))
}

/// `PUT /api/video/:id/captions/:lang`: a WebVTT or SubRip body; `?label=` names the track.
pub async fn put_captions(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    let (id, lang) = path.into_inner();
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map_err(|_| ApiError::InvalidField("the query string could not be read".into()))?;
    let label = query
        .iter()
        .find(|(k, _)| k == "label")
        .map(|(_, v)| v.trim().to_string());
    let body =
        crate::http::body::read_limited(&req, payload, crate::domain::captions::MAX_CAPTION_BYTES)
            .await?;
    crate::domain::captions::put(&app, &id, &lang, label, &body).await?;
    let video = videos::get(&app, &id).await?;
    let json = serde_json::to_value(videos::to_json(&app, &video))
        .map_err(|e| ApiError::internal("captions", e))?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "captions": json["captions"] })))
}

/// `DELETE /api/video/:id/captions/:lang`.
pub async fn delete_captions(
    app: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    let (id, lang) = path.into_inner();
    crate::domain::captions::delete(&app, &id, &lang).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "deleted": true })))
}

/// `PUT /api/video/:id/poster`: a JPEG, PNG or WebP picture shown before playback (the web app
/// sends one it grabbed from the file when the server has no ffmpeg). Answers the Video.
pub async fn put_poster(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    let body =
        crate::http::body::read_limited(&req, payload, crate::domain::media_jobs::MAX_POSTER_BYTES)
            .await?;
    let video = crate::domain::media_jobs::put_poster(&app, &id, &body).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "video": videos::to_json(&app, &video) })))
}

/// `DELETE /api/video/:id/poster`: with ffmpeg, one is made again from the video.
pub async fn delete_poster(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: Id,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    let video = crate::domain::media_jobs::delete_poster(&app, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "video": videos::to_json(&app, &video) })))
}
