//! `POST /api/video/create`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth;
use crate::body::JsonObject;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::tokens::Scope;
use crate::videos;

pub async fn create(
    app: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::VideosWrite).await?;
    let body = JsonObject::read(&req, payload).await?;
    let video = videos::create(&app, &body).await?;
    Ok(HttpResponse::Created()
        .json(json!({ "success": true, "video": videos::to_json(&app, &video) })))
}
