//! `/api/webhooks`: the webhooks made through the API beside flare.toml's, and what was sent.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use crate::domain::auth;
use crate::domain::tokens::Scope;
use crate::domain::webhooks;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /api/webhooks`: flare.toml's (`source: "flare.toml"`, no id) and the API's.
pub async fn list(app: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::WebhooksWrite).await?;
    let hooks = webhooks::list(&app).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "webhooks": hooks })))
}

/// `POST /api/webhooks`: `url`, optional `events` and `secret`; the secret is in this answer only.
pub async fn create(
    app: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::WebhooksWrite).await?;
    let body = crate::http::body::read_json(&req, payload).await?;
    let new = crate::http::requests::new_webhook(&body)?;
    let (mut hook, secret) = webhooks::create(&app, new).await?;
    hook["secret"] = json!(secret);
    Ok(HttpResponse::Created().json(json!({ "success": true, "webhook": hook })))
}

/// `DELETE /api/webhooks/:id`
pub async fn delete(
    app: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::WebhooksWrite).await?;
    webhooks::delete(&app, &id).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "deleted": true })))
}

/// `GET /api/webhooks/deliveries?limit=N`: the latest attempts, newest first.
pub async fn deliveries(
    app: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    auth::require(&app, &req, Scope::WebhooksWrite).await?;
    let limit = crate::http::requests::limit_query(req.query_string(), 50, 1000)?;
    let list = webhooks::deliveries(&app, limit).await?;
    Ok(HttpResponse::Ok().json(json!({ "success": true, "deliveries": list })))
}
