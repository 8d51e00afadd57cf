//! Queries on `webhook_deliveries`, the webhook outbox, and `webhooks`, those made through the
//! API.

use rusqlite::{params, Connection, OptionalExtension};

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
    conn: &Connection,
    urls: &[String],
    event_id: &str,
    event: &str,
    body: &str,
    now: i64,
) -> rusqlite::Result<()> {
    for url in urls {
        super::exec(
            conn,
            "INSERT INTO webhook_deliveries (event_id, url, event, body, state, next_at, created_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            params![event_id, url, event, body, now],
        )?;
    }
    Ok(())
}

/// The oldest pending delivery of each URL, when it is due: one URL's events go in order.
pub(crate) fn due(conn: &Connection, now: i64) -> rusqlite::Result<Vec<Delivery>> {
    conn.prepare_cached(
        "SELECT id, event_id, url, event, body, attempts FROM webhook_deliveries
         WHERE id IN (SELECT MIN(id) FROM webhook_deliveries WHERE state = 'pending' GROUP BY url)
           AND next_at <= ?1 ORDER BY id",
    )?
    .query_map([now], |r| {
        Ok(Delivery {
            id: r.get(0)?,
            event_id: r.get(1)?,
            url: r.get(2)?,
            event: r.get(3)?,
            body: r.get(4)?,
            attempts: r.get(5)?,
        })
    })?
    .collect()
}

/// When the next pending delivery is due, if any.
pub(crate) fn next_due(conn: &Connection) -> rusqlite::Result<Option<i64>> {
    super::row(
        conn,
        "SELECT MIN(next_at) FROM webhook_deliveries WHERE state = 'pending'",
        [],
        |r| r.get(0),
    )
}

/// Records an attempt: delivered, retried at `retry_at`, or given up (`state`).
pub(crate) fn attempted(
    conn: &Connection,
    id: i64,
    state: &str,
    status: Option<u16>,
    error: Option<&str>,
    retry_at: i64,
    now: i64,
) -> rusqlite::Result<()> {
    super::exec(
        conn,
        "UPDATE webhook_deliveries SET state = ?2, attempts = attempts + 1, last_status = ?3,
           last_error = ?4, next_at = ?5,
           delivered_at = CASE WHEN ?2 = 'delivered' THEN ?6 ELSE delivered_at END
         WHERE id = ?1",
        params![id, state, status, error, retry_at, now],
    )?;
    Ok(())
}

/// The latest deliveries, newest first.
pub(crate) fn recent(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<DeliveryState>> {
    conn.prepare_cached(
        "SELECT id, event_id, url, event, state, attempts, last_status, last_error, next_at,
           created_at, delivered_at FROM webhook_deliveries ORDER BY id DESC LIMIT ?1",
    )?
    .query_map([limit], |r| {
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
    })?
    .collect()
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

pub(crate) fn insert_hook(
    conn: &Connection,
    hook: &HookRow,
    secret: &str,
) -> rusqlite::Result<bool> {
    let n = conn.execute(
        "INSERT INTO webhooks (id, url, events, secret, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (url) DO NOTHING",
        params![hook.id, hook.url, hook.events, secret, hook.created_at],
    )?;
    Ok(n == 1)
}

pub(crate) fn hooks(conn: &Connection) -> rusqlite::Result<Vec<HookRow>> {
    conn.prepare_cached("SELECT id, url, events, created_at FROM webhooks ORDER BY created_at, id")?
        .query_map([], |r| {
            Ok(HookRow {
                id: r.get(0)?,
                url: r.get(1)?,
                events: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?
        .collect()
}

/// Deletes a webhook and drops what it had not yet been sent; false when there was none.
pub(crate) fn delete_hook(conn: &Connection, id: &str, now: i64) -> rusqlite::Result<bool> {
    let url: Option<String> = conn
        .prepare_cached("SELECT url FROM webhooks WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(url) = url else { return Ok(false) };
    super::exec(conn, "DELETE FROM webhooks WHERE id = ?1", [id])?;
    super::exec(
        conn,
        "UPDATE webhook_deliveries SET state = 'dropped', last_error = 'the webhook was deleted',
           next_at = ?2 WHERE url = ?1 AND state = 'pending'",
        params![url, now],
    )?;
    Ok(true)
}

/// The URLs of the API's webhooks that asked for `event`.
pub(crate) fn urls_for(conn: &Connection, event: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached(
        "SELECT url FROM webhooks WHERE ' ' || events || ' ' LIKE '% ' || ?1 || ' %' ORDER BY id",
    )?
    .query_map([event], |r| r.get(0))?
    .collect()
}

/// The secret of the API's webhook at `url`.
pub(crate) fn secret_for(conn: &Connection, url: &str) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached("SELECT secret FROM webhooks WHERE url = ?1")?
        .query_row([url], |r| r.get(0))
        .optional()
}
