//! A small stderr logger for the `log` facade: one line per event, UTC timestamp first.

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            let target = record.target();
            let source = if target.starts_with("actix_web::middleware::logger") {
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
