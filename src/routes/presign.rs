//! `POST /api/video/upload/presign`.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::auth;
use crate::body::JsonObject;
use crate::error::ApiError;
use crate::startup::AppState;
use crate::tokens::Scope;
use crate::uploads;

pub async fn presign(
    app: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = auth::require(&app, &req, Scope::UploadsWrite).await?;
    let body = JsonObject::read(&req, payload).await?;
    let presigned = uploads::presign(&app, &token, &body).await?;
    Ok(HttpResponse::Ok().json(presigned))
}
