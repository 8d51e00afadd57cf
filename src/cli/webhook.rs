//! `flare webhook test URL` and `flare webhook deliveries`.

use crate::config::Settings;

/// Sends a signed `webhook.test` message to `url` now: with its `[[webhook]]` secret when it is
/// configured, else with `secret` (whsec_…). Prints and returns the status.
pub fn test(settings: &Settings, url: &str, secret: Option<&str>) -> Result<u16, String> {
    use base64::Engine;
    let key = match (settings.webhooks.iter().find(|w| w.url == url), secret) {
        (_, Some(s)) => s
            .strip_prefix("whsec_")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .ok_or("--secret must be whsec_ followed by base64")?,
        (Some(w), None) => w.key.clone(),
        (None, None) => {
            return Err(format!(
                "{url} is not a [[webhook]] in the settings: give its secret with --secret whsec_…"
            ))
        }
    };
    let now = crate::time::now_ms();
    let id = crate::ids::random_id(&ring::rand::SystemRandom::new(), "msg_", 15);
    let body = serde_json::json!({
        "type": "webhook.test",
        "timestamp": crate::time::iso8601(now),
        "data": { "message": "a test from flare webhook test" }
    })
    .to_string();
    crate::domain::webhooks::send(url, &key, &id, &body)
}

/// The latest deliveries, newest first, from the outbox.
pub fn deliveries(
    settings: &Settings,
    limit: u32,
) -> Result<Vec<crate::db::webhooks::DeliveryState>, String> {
    let conn = crate::db::read_only(
        &settings.data_dir,
        settings.database_url.as_ref().map(|u| u.0.as_str()),
    )?;
    crate::db::webhooks::recent(&conn, limit).map_err(|e| format!("cannot read the outbox: {e}"))
}
