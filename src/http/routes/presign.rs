//! `POST /api/video/upload/presign`.

use actix_web::{web, HttpRequest, HttpResponse};

use crate::domain::auth;
use crate::domain::tokens::Scope;
use crate::domain::uploads;
use crate::error::ApiError;
use crate::state::AppState;

pub async fn presign(
    app: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let token = auth::require(&app, &req, Scope::UploadsWrite).await?;
    let body = crate::http::body::read_json(&req, payload).await?;
    let request = crate::http::requests::presign(&body, &app.settings)?;
    let presigned = uploads::presign(&app, &token, request).await?;
    Ok(HttpResponse::Ok().json(presigned))
}
