//! Queries on `webhook_deliveries`, the webhook outbox, and `webhooks`, those made through the
//! API.

use super::sql::{Conn, Optional, Result};
use crate::args;

/// A delivery to attempt.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub url: String,
    pub event: String,
    pub body: String,
    pub attempts: i64,
}

/// A delivery as `flare webhook deliveries` shows it.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryState {
    pub id: i64,
    pub event_id: String,
    pub url: String,
    pub event: String,
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub next_at: i64,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

/// Queues one event for each of `urls`, in the caller's transaction.
pub(crate) fn enqueue(
    conn: &Conn,
    urls: &[String],
    event_id: &str,
    event: &str,
    body: &str,
    now: i64,
) -> Result<()> {
    for url in urls {
        conn.exec("INSERT INTO webhook_deliveries (event_id, url, event, body, state, next_at, created_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            args![event_id, url, event, body, now],
        )?;
    }
    Ok(())
}

/// The oldest pending delivery of each URL, when it is due: one URL's events go in order.
pub(crate) fn due(conn: &Conn, now: i64) -> Result<Vec<Delivery>> {
    conn.rows(
        "SELECT id, event_id, url, event, body, attempts FROM webhook_deliveries
         WHERE id IN (SELECT MIN(id) FROM webhook_deliveries WHERE state = 'pending' GROUP BY url)
           AND next_at <= ?1 ORDER BY id",
        args![now],
        |r| {
            Ok(Delivery {
                id: r.get(0)?,
                event_id: r.get(1)?,
                url: r.get(2)?,
                event: r.get(3)?,
                body: r.get(4)?,
                attempts: r.get(5)?,
            })
        },
    )
}

/// When the next pending delivery is due, if any.
pub(crate) fn next_due(conn: &Conn) -> Result<Option<i64>> {
    conn.row(
        "SELECT MIN(next_at) FROM webhook_deliveries WHERE state = 'pending'",
        args![],
        |r| r.get(0),
    )
}

/// Records an attempt: delivered, retried at `retry_at`, or given up (`state`).
pub(crate) fn attempted(
    conn: &Conn,
    id: i64,
    state: &str,
    status: Option<u16>,
    error: Option<&str>,
    retry_at: i64,
    now: i64,
) -> Result<()> {
    conn.exec(
        "UPDATE webhook_deliveries SET state = ?2, attempts = attempts + 1, last_status = ?3,
           last_error = ?4, next_at = ?5,
           delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END
         WHERE id = ?1",
        args![id, state, status, error, retry_at, now],
    )?;
    Ok(())
}

/// The latest deliveries, newest first.
pub(crate) fn recent(conn: &Conn, limit: u32) -> Result<Vec<DeliveryState>> {
    conn.rows(
        "SELECT id, event_id, url, event, state, attempts, last_status, last_error, next_at,
           created_at, delivered_at FROM webhook_deliveries ORDER BY id DESC LIMIT ?1",
        args![limit],
        |r| {
            Ok(DeliveryState {
                id: r.get(0)?,
                event_id: r.get(1)?,
                url: r.get(2)?,
                event: r.get(3)?,
                state: r.get(4)?,
                attempts: r.get(5)?,
                last_status: r.get(6)?,
                last_error: r.get(7)?,
                next_at: r.get(8)?,
                created_at: r.get(9)?,
                delivered_at: r.get(10)?,
            })
        },
    )
}

/// A webhook made through the API (its secret is never read back out but to sign).
#[derive(Debug, Clone)]
pub struct HookRow {
    pub id: String,
    pub url: String,
    /// Space-separated event names.
    pub events: String,
    pub created_at: i64,
}

pub(crate) fn insert_hook(conn: &Conn, hook: &HookRow, secret: &str) -> Result<bool> {
    let n = conn.exec(
        "INSERT INTO webhooks (id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (url) DO NOTHING",
        args![hook.id, hook.url, hook.events, secret, hook.created_at],
    )?;
    Ok(n == 1)
}

pub(crate) fn hooks(conn: &Conn) -> Result<Vec<HookRow>> {
    conn.rows(
        "SELECT id, url, events, created_at FROM webhooks ORDER BY created_at, id",
        args![],
        |r| {
            Ok(HookRow {
                id: r.get(0)?,
                url: r.get(1)?,
                events: r.get(2)?,
                created_at: r.get(3)?,
            })
        },
    )
}

/// Deletes a webhook and drops what it had not yet been sent; false when there was none.
pub(crate) fn delete_hook(conn: &Conn, id: &str, now: i64) -> Result<bool> {
    let url: Option<String> = conn
        .row("SELECT url FROM webhooks WHERE id = ?1", args![id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(url) = url else { return Ok(false) };
    conn.exec("DELETE FROM webhooks WHERE id = ?1", args![id])?;
    conn.exec(
        "UPDATE webhook_deliveries SET state = 'dropped', last_error = 'the webhook was deleted',
           next_at = ?2 WHERE url = ?1 AND state = 'pending'",
        args![url, now],
    )?;
    Ok(true)
}

/// The URLs of the API's webhooks that asked for `event`.
pub(crate) fn urls_for(conn: &Conn, event: &str) -> Result<Vec<String>> {
    conn.rows(
        "SELECT url FROM webhooks WHERE ' ' || events || ' ' LIKE '% ' || CAST(?1 AS TEXT) || ' %' \
         ORDER BY id",
        args![event],
        |r| r.get(0),
    )
}

/// The secret of the API's webhook at `url`.
pub(crate) fn secret_for(conn: &Conn, url: &str) -> Result<Option<String>> {
    conn.row(
        "SELECT secret FROM webhooks WHERE url = ?1",
        args![url],
        |r| r.get(0),
    )
    .optional()
}
