//! `metrics_listen`: Prometheus scrapes `GET /metrics` here, on an address apart from the API's
//! (so it need not be exposed where the API is). One request per connection, closed after the
//! answer; anything else is a 404.

use std::sync::Weak;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::state::AppState;

/// Binds `addr` and serves until the server's state is gone. Errors only on the bind.
pub(crate) fn start(addr: &str, state: Weak<AppState>) -> Result<std::net::SocketAddr, String> {
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| format!("metrics_listen: cannot listen on {addr}: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("metrics_listen: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    actix_web::rt::spawn(async move {
        let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
            return;
        };
        loop {
            let Ok((mut io, _)) = listener.accept().await else {
                continue;
            };
            let Some(app) = state.upgrade() else { return };
            let _ = tokio::time::timeout(Duration::from_secs(10), answer(&app, &mut io)).await;
        }
    });
    Ok(bound)
}

async fn answer(app: &AppState, io: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    while !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        if len == buf.len() {
            return Ok(());
        }
        let n = io.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(());
        }
        len += n;
    }
    let line = String::from_utf8_lossy(&buf[..len]);
    let target = line.split_whitespace().take(2).collect::<Vec<_>>();
    let (status, content_type, body) = match target.as_slice() {
        ["GET", path] if *path == "/metrics" || path.starts_with("/metrics?") => {
            let m = &crate::metrics::METRICS;
            let (storage, db) = (app.storage.clone(), app.db.clone());
            let free = tokio::task::spawn_blocking(move || storage.free_bytes())
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or(0);
            m.free_disk_bytes
                .set(i64::try_from(free).unwrap_or(i64::MAX));
            let waiting: i64 = db
                .read(|c| {
                    Ok::<_, crate::error::ApiError>(c.row(
                        "SELECT count(*) FROM media_jobs WHERE state IN ('queued', 'running')",
                        &[],
                        |r| r.get(0),
                    )?)
                })
                .await
                .unwrap_or(0);
            m.jobs_waiting.set(waiting);
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                m.render(),
            )
        }
        _ => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "metrics are at GET /metrics\n".to_string(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    io.write_all(head.as_bytes()).await?;
    io.write_all(body.as_bytes()).await?;
    io.shutdown().await
}
