//! A small stderr logger for the `log` facade: one line per event, UTC timestamp first.

use log::{LevelFilter, Log, Metadata, Record};

/// The target of the access log: actix-web's `Logger` writes under it, and flare's sendfile
/// path (`fastpath`) writes the same lines under it too. Shown as `http`.
pub(crate) const ACCESS_LOG: &str = "actix_web::middleware::logger";

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
        if self.enabled(record.metadata()) {
            let target = record.target();
            let source = if target.starts_with(ACCESS_LOG) {
                "http"
            } else {
                target
            };
            eprintln!(
                "{} {:5} {source}: {}",
                crate::time::iso8601(crate::time::now_ms()),
                record.level(),
                record.args()
            );
        }
    }

    fn flush(&self) {}
}

/// Installs the logger once; later calls only change the level.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&StderrLogger);
    log::set_max_level(level);
}
