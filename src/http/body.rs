//! Request bodies read whole: with a size limit, and cut off when they stop arriving.

use crate::error::ApiError;
use crate::json::JsonObject;
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;

/// The largest JSON body accepted; API bodies are a few hundred bytes.
pub(crate) const JSON_LIMIT: usize = 64 * 1024;

/// Reads a whole request body of at most `limit` bytes: 413 as soon as it is known to be larger.
pub(crate) async fn read_limited(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<Vec<u8>, ApiError> {
    let too_large =
        || ApiError::TooLarge(format!("this request body may be at most {limit} bytes"));
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // A body that stops arriving is cut off (408) on every route, not only uploads: an
    // unauthenticated form must not hold a connection open for free.
    let idle = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map_or(std::time::Duration::from_secs(60), |app| {
            app.settings.upload_idle_timeout
        });
    let mut buf = Vec::new();
    loop {
        let next = tokio::time::timeout(idle, payload.next())
            .await
            .map_err(|_| {
                ApiError::Timeout(format!(
                    "no data arrived for {} s after {} bytes of the body; send it whole",
                    idle.as_secs(),
                    buf.len()
                ))
            })?;
        let Some(chunk) = next else { break };
        let chunk =
            chunk.map_err(|e| ApiError::InvalidJson(format!("the body could not be read: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Reads and parses a JSON request body. Called by handlers after authentication, so that a
/// request without a token is told so before anything about its body.
pub(crate) async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<JsonObject, ApiError> {
    JsonObject::parse(&read_limited(req, payload, JSON_LIMIT).await?)
}
