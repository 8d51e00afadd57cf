//! A small stderr logger for the `log` facade: one line per event, UTC timestamp first, as text
//! or as JSON (`log_format`), each line of a request naming its request id.
//!
//! Why not `tracing`: flare's logs are flat events, not spans; a task-local request id (set by
//! one middleware, read here) gives every line written while a request is handled its id, which
//! is what an operator searches by. That is this file, against tracing, tracing-subscriber and
//! tracing-log in the build.

use log::{LevelFilter, Log, Metadata, Record};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The target of the access log: actix-web's `Logger` writes under it, and flare's sendfile
/// path (`fastpath`) writes the same lines under it too. Shown as `http`.
pub(crate) const ACCESS_LOG: &str = "actix_web::middleware::logger";

/// How lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

static FORMAT: OnceLock<Format> = OnceLock::new();

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `f` with `id` as the request id of every line it logs.
pub fn with_request_id<F: std::future::Future>(
    id: String,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    REQUEST_ID.scope(id, f)
}

/// The request id of the request being handled, if any.
pub fn request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// A new request id: this process's random prefix and a counter (no system call per request).
pub fn new_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix =
        PREFIX.get_or_init(|| crate::ids::random_id(&ring::rand::SystemRandom::new(), "", 8));
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Whether a client's `X-Request-Id` is kept: 1 to 128 of `A-Z a-z 0-9 . _ - :`, so that
/// it cannot forge log lines or carry anything else.
pub fn acceptable_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        // mp4parse warns about every harmless oddity of a file (ffmpeg's own `hdlr` boxes among
        // them); what flare makes of a file is in its record.
        if metadata.target().starts_with("mp4parse") {
            return metadata.level() <= log::Level::Error;
        }
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = record.target();
        let source = if target.starts_with(ACCESS_LOG) {
            "http"
        } else {
            target
        };
        let time = crate::time::iso8601(crate::time::now_ms());
        let id = request_id();
        match FORMAT.get().copied().unwrap_or(Format::Text) {
            Format::Text => match id {
                Some(id) => eprintln!(
                    "{time} {:5} {source}: {} [request {id}]",
                    record.level(),
                    record.args()
                ),
                None => eprintln!("{time} {:5} {source}: {}", record.level(), record.args()),
            },
            Format::Json => {
                let mut line = serde_json::json!({
                    "time": time,
                    "level": record.level().as_str(),
                    "source": source,
                    "message": record.args().to_string(),
                });
                if let Some(id) = id {
                    line["requestId"] = id.into();
                }
                eprintln!("{line}");
            }
        }
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls only change the level.
pub fn init(level: LevelFilter, format: Format) {
    let _ = FORMAT.set(format);
    let _ = log::set_logger(&StderrLogger);
    log::set_max_level(level);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_kept_only_when_harmless() {
        assert!(acceptable_request_id("abc-123_x.y:z"));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id("a b"));
        assert!(!acceptable_request_id("line\nbreak"));
        assert!(!acceptable_request_id(&"x".repeat(129)));
        assert_ne!(new_request_id(), new_request_id());
    }
}
