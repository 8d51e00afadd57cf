//! Webhooks: `[[webhook]]` entries get `video.created`, `video.ready`, `video.updated`,
//! `video.deleted` as JSON, signed as the Standard Webhooks
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

/// Queues `event` about `video` for the webhooks in `urls`, in the caller's transaction.
pub(crate) fn record(
    conn: &rusqlite::Connection,
    urls: &[String],
    event: &str,
    video: &VideoRow,
    now: i64,
) -> rusqlite::Result<()> {
    if urls.is_empty() {
        return Ok(());
    }
    let id = crate::ids::random_id(&ring::rand::SystemRandom::new(), "msg_", 15);
    let body = serde_json::json!({
        "type": event,
        "timestamp": iso8601(now),
        "data": {
            "id": video.id,
            "title": video.title,
            "fileName": video.file_name,
            "status": if event == "video.deleted" { "deleted" } else { video.status.as_str() },
            "size": video.size,
            "sha256": video.sha256,
            "createdAt": iso8601(video.created_at),
        }
    })
    .to_string();
    db::webhooks::enqueue(conn, urls, &id, event, &body, now)
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

/// Starts the delivery worker when any webhook is configured.
pub(crate) fn spawn_worker(state: Weak<AppState>) {
    let Some(app) = state.upgrade() else { return };
    if app.settings.webhooks.is_empty() {
        return;
    }
    log::info!(
        "webhooks: {}",
        app.settings
            .webhooks
            .iter()
            .map(|w| format!("{} ({})", w.url, w.events.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    );
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
        let hook = app
            .settings
            .webhooks
            .iter()
            .find(|w| w.url == d.url)
            .cloned();
        let (state, status, error, retry_at) = match hook {
            None => (
                "dropped",
                None,
                Some("no [[webhook]] has this URL any more".to_string()),
                now,
            ),
            Some(hook) => {
                let (id, body) = (d.event_id.clone(), d.body.clone());
                let sent =
                    tokio::task::spawn_blocking(move || send(&hook.url, &hook.key, &id, &body))
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
