//! `GET /healthz` (liveness: the process answers) and `GET /readyz` (readiness: it can do its
//! work).

use actix_web::{web, HttpResponse};

use crate::error::ApiError;
use crate::state::AppState;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "ok" }))
}

/// 200 when the database answers and can be written, and the data folder takes a file with room
/// above `disk_reserve_bytes`; 503 `unavailable` naming the first check that failed.
pub async fn readyz(app: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(why) = app.db.file_changed() {
        return Err(ApiError::Unavailable(format!("the database {why}")));
    }
    app.db
        .read_on_executor::<_, ApiError, _>(|c| {
            c.row("SELECT count(*) FROM videos", &[], |r| r.get::<i64>(0))
        })
        .await
        .map_err(|e| ApiError::Unavailable(format!("the database does not answer: {e}")))?;
    let storage = app.storage.clone();
    let reserve = app.settings.disk_reserve_bytes;
    let free = tokio::task::spawn_blocking(move || {
        storage.probe_writable()?;
        storage.free_bytes()
    })
    .await
    .map_err(|e| ApiError::internal("readiness check", e))?
    .map_err(|e| ApiError::Unavailable(format!("the data folder cannot be written: {e}")))?;
    if free <= reserve {
        return Err(ApiError::Unavailable(format!(
            "the data folder has {free} bytes free, at or below disk_reserve_bytes ({reserve})"
        )));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "freeBytes": free })))
}
