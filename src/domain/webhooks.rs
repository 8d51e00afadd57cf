//! Webhooks: `[[webhook]]` entries in flare.toml and those made through the API
//! (`/api/webhooks`, scope `webhooks:write`) get `video.created`, `video.ready`,
//! `video.updated`, `video.deleted` and `upload.failed` as JSON, signed as the Standard Webhooks
//! specification says (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,BASE64` of
//! HMAC-SHA256 over `id.timestamp.body`).
//!
//! Each event is written to the outbox (`db::webhooks`) in the transaction that made the change,
//! so none is lost and none is sent for a change that did not commit; a worker delivers them in
//! order per URL, retrying after 2 s, 8 s, 32 s … (at most 6 h apart, 10 attempts), across
//! restarts. An upload never waits on a webhook.

use base64::Engine;
use ring::hmac;
use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use crate::db::{self, videos::VideoRow};
use crate::error::ApiError;
use crate::state::AppState;
use crate::time::{iso8601, now_ms};

const MAX_ATTEMPTS: i64 = 10;
static WAKE: LazyLock<Arc<tokio::sync::Notify>> = LazyLock::new(Arc::default);

/// Tells the worker there is something to send.
pub fn wake() {
    WAKE.notify_waiters();
}

/// Queues `event` about `video` for the webhooks in `urls` (flare.toml's) and the API's that
/// asked for it, in the caller's transaction.
pub(crate) fn record(
    conn: &crate::db::Conn,
    urls: &[String],
    event: &str,
    video: &VideoRow,
    now: i64,
) -> crate::db::sql::Result<()> {
    let data = serde_json::json!({
        "id": video.id,
        "title": video.title,
        "fileName": video.file_name,
        "status": if event == "video.deleted" { "deleted" } else { video.status.as_str() },
        "size": video.size,
        "sha256": video.sha256,
        "createdAt": iso8601(video.created_at),
    });
    enqueue(conn, urls, event, data, now)
}

fn enqueue(
    conn: &crate::db::Conn,
    urls: &[String],
    event: &str,
    data: serde_json::Value,
    now: i64,
) -> crate::db::sql::Result<()> {
    let mut urls = urls.to_vec();
    for url in db::webhooks::urls_for(conn, event)? {
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    if urls.is_empty() {
        return Ok(());
    }
    let id = crate::ids::random_id(&ring::rand::SystemRandom::new(), "msg_", 15);
    let body =
        serde_json::json!({ "type": event, "timestamp": iso8601(now), "data": data }).to_string();
    db::webhooks::enqueue(conn, &urls, &id, event, &body, now)
}

/// `upload.failed`: an upload through a valid URL was refused while its body came (too large,
/// the wrong size, stalled, cut off, the disk full…). Nothing was stored; the URL stays
/// unspent. Recorded in a write of its own, never holding the answer up for long.
pub(crate) async fn upload_failed(app: &AppState, video_id: &str, file_name: &str, why: &ApiError) {
    let hooks = app.settings.webhooks_for("upload.failed");
    let data = serde_json::json!({
        "id": video_id,
        "fileName": file_name,
        "error": { "code": why.code(), "message": why.to_string() },
    });
    let recorded = app
        .db
        .write(move |c| Ok::<_, ApiError>(enqueue(c, &hooks, "upload.failed", data, now_ms())?))
        .await;
    match recorded {
        Ok(()) => wake(),
        Err(e) => log::warn!("could not record upload.failed for {video_id}: {e}"),
    }
}

/// A webhook as the API shows it (never its secret).
fn hook_json(
    id: Option<&str>,
    url: &str,
    events: &[String],
    created_at: Option<i64>,
) -> serde_json::Value {
    serde_json::json!({
        "id": id,
        "url": url,
        "events": events,
        "source": if id.is_some() { "api" } else { "flare.toml" },
        "createdAt": created_at.map(iso8601),
    })
}

/// What `POST /api/webhooks` asks for.
pub struct NewHook {
    pub url: String,
    pub events: Option<Vec<String>>,
    /// `whsec_…`; made when absent.
    pub secret: Option<String>,
}

/// Adds a webhook; its JSON and its secret (shown this once).
pub async fn create(app: &AppState, new: NewHook) -> Result<(serde_json::Value, String), ApiError> {
    let field = |f: &'static str| move |e: String| ApiError::InvalidField(format!("{f}: {e}"));
    crate::config::check_webhook_url(&new.url).map_err(field("url"))?;
    let events = crate::config::check_webhook_events(new.events).map_err(field("events"))?;
    let secret = match new.secret {
        Some(s) => {
            crate::config::webhook_key(&s).map_err(field("secret"))?;
            s
        }
        None => {
            let mut key = [0u8; 32];
            ring::rand::SecureRandom::fill(&app.rng, &mut key)
                .map_err(|_| ApiError::internal("making a webhook secret", "no randomness"))?;
            format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(key)
            )
        }
    };
    if app.settings.webhooks.iter().any(|w| w.url == new.url) {
        return Err(ApiError::Conflict(format!(
            "{} is already a [[webhook]] in flare.toml",
            new.url
        )));
    }
    let row = db::webhooks::HookRow {
        id: crate::ids::random_id(&app.rng, "whk_", 12),
        url: new.url,
        events: events.join(" "),
        created_at: now_ms(),
    };
    let (stored, kept) = (row.clone(), secret.clone());
    let inserted = app
        .db
        .write(move |c| Ok::<_, ApiError>(db::webhooks::insert_hook(c, &stored, &kept)?))
        .await?;
    if !inserted {
        return Err(ApiError::Conflict(format!(
            "a webhook with the url {} exists already; delete it first to change it",
            row.url
        )));
    }
    Ok((
        hook_json(Some(&row.id), &row.url, &events, Some(row.created_at)),
        secret,
    ))
}

/// flare.toml's webhooks, then the API's.
pub async fn list(app: &AppState) -> Result<Vec<serde_json::Value>, ApiError> {
    let rows = app
        .db
        .read(|c| Ok::<_, ApiError>(db::webhooks::hooks(c)?))
        .await?;
    let mut out: Vec<serde_json::Value> = app
        .settings
        .webhooks
        .iter()
        .map(|w| hook_json(None, &w.url, &w.events, None))
        .collect();
    out.extend(rows.iter().map(|r| {
        let events: Vec<String> = r.events.split(' ').map(String::from).collect();
        hook_json(Some(&r.id), &r.url, &events, Some(r.created_at))
    }));
    Ok(out)
}

/// Deletes an API webhook; what it had not yet been sent is dropped.
pub async fn delete(app: &AppState, id: &str) -> Result<(), ApiError> {
    let key = id.to_string();
    let deleted = app
        .db
        .write(move |c| Ok::<_, ApiError>(db::webhooks::delete_hook(c, &key, now_ms())?))
        .await?;
    if !deleted {
        return Err(ApiError::NotFound(format!(
            "no webhook {id} (flare.toml's webhooks are changed in flare.toml)"
        )));
    }
    Ok(())
}

/// The latest delivery attempts, newest first, as the API shows them.
pub async fn deliveries(app: &AppState, limit: u32) -> Result<Vec<serde_json::Value>, ApiError> {
    let rows = app
        .db
        .read(move |c| Ok::<_, ApiError>(db::webhooks::recent(c, limit)?))
        .await?;
    Ok(rows
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id,
                "eventId": d.event_id,
                "url": d.url,
                "event": d.event,
                "state": d.state,
                "attempts": d.attempts,
                "lastStatus": d.last_status,
                "lastError": d.last_error,
                "nextAt": (d.state == "pending").then(|| iso8601(d.next_at)),
                "createdAt": iso8601(d.created_at),
                "deliveredAt": d.delivered_at.map(iso8601),
            })
        })
        .collect())
}

/// The `webhook-signature` value for a message.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    )
}

/// Sends one signed message; the HTTP status, or why none came. Blocking.
pub fn send(url: &str, key: &[u8], id: &str, body: &str) -> Result<u16, String> {
    let timestamp = now_ms() / 1000;
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent();
    agent
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", &timestamp.to_string())
        .header("webhook-signature", &signature(key, id, timestamp, body))
        .send(body)
        .map(|res| res.status().as_u16())
        .map_err(|e| e.to_string())
}

/// Starts the delivery worker (idle until an event is queued).
pub(crate) fn spawn_worker(state: Weak<AppState>) {
    let Some(app) = state.upgrade() else { return };
    if !app.settings.webhooks.is_empty() {
        log::info!(
            "webhooks: {}",
            app.settings
                .webhooks
                .iter()
                .map(|w| format!("{} ({})", w.url, w.events.join(", ")))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    drop(app);
    actix_web::rt::spawn(async move {
        loop {
            let Some(app) = state.upgrade() else { return };
            let wake = WAKE.clone();
            let notified = wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Err(e) = deliver_due(&app).await {
                log::warn!("webhooks: {e}");
            }
            let due = app
                .db
                .read(|c| Ok::<_, ApiError>(db::webhooks::next_due(c)?))
                .await
                .ok()
                .flatten();
            let wait = due.map_or(Duration::from_secs(60), |at| {
                Duration::from_millis((at - now_ms()).clamp(20, 60_000) as u64)
            });
            drop(app);
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    });
}

async fn deliver_due(app: &AppState) -> Result<(), ApiError> {
    let now = now_ms();
    let due = app
        .db
        .read(move |c| Ok::<_, ApiError>(db::webhooks::due(c, now)?))
        .await?;
    for d in due {
        let key = match app.settings.webhooks.iter().find(|w| w.url == d.url) {
            Some(hook) => Some(hook.key.clone()),
            None => {
                let url = d.url.clone();
                app.db
                    .read(move |c| Ok::<_, ApiError>(db::webhooks::secret_for(c, &url)?))
                    .await?
                    .and_then(|s| crate::config::webhook_key(&s).ok())
            }
        };
        let (state, status, error, retry_at) = match key {
            None => (
                "dropped",
                None,
                Some("no webhook has this URL any more".to_string()),
                now,
            ),
            Some(key) => {
                let (id, body, url) = (d.event_id.clone(), d.body.clone(), d.url.clone());
                let sent = tokio::task::spawn_blocking(move || send(&url, &key, &id, &body))
                    .await
                    .map_err(|e| ApiError::internal("sending a webhook", e))?;
                let attempts = d.attempts + 1;
                let backoff =
                    (2_000i64 * 4i64.pow(attempts.min(10) as u32 - 1)).min(6 * 3600 * 1000);
                match sent {
                    Ok(s) if (200..300).contains(&s) => ("delivered", Some(s), None, now),
                    outcome => {
                        let (status, error) = match outcome {
                            Ok(s) => (Some(s), format!("answered {s}")),
                            Err(e) => (None, e),
                        };
                        let state = if attempts >= MAX_ATTEMPTS {
                            "failed"
                        } else {
                            "pending"
                        };
                        log::info!(
                            "webhook {} for {} ({}): {error}; {}",
                            d.event_id,
                            d.url,
                            d.event,
                            if state == "failed" {
                                "given up".to_string()
                            } else {
                                format!("again in {} s", backoff / 1000)
                            }
                        );
                        (state, status, Some(error), now_ms() + backoff)
                    }
                }
            }
        };
        let at = now_ms();
        app.db
            .write(move |c| {
                Ok::<_, ApiError>(db::webhooks::attempted(
                    c,
                    d.id,
                    state,
                    status,
                    error.as_deref(),
                    retry_at,
                    at,
                )?)
            })
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The specification's example: secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw.
        let key = base64::engine::general_purpose::STANDARD
            .decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
