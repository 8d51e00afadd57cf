//! Fault injection for the crash and failure tests: `FLARE_FAULTS` names the points, comma-
//! separated, at which this process misbehaves on purpose. Unset (always, outside tests), every
//! check is one load of an empty list.
//!
//! Points: `crash-after-commit` (the upload's record is committed, its file not yet renamed into
//! place: the process aborts, as under kill -9), `commit-disk-full` and `commit-read-only` (a
//! durable commit fails as SQLite reports a full disk or a read-only database).

use std::sync::OnceLock;

fn armed() -> &'static [String] {
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    ARMED.get_or_init(|| {
        std::env::var("FLARE_FAULTS")
            .map(|v| v.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    })
}

/// Whether the fault `name` is armed.
pub(crate) fn armed_at(name: &str) -> bool {
    armed().iter().any(|a| a == name)
}

/// Ends the process at once, as `kill -9` would, when `name` is armed.
pub(crate) fn crash_at(name: &str) {
    if armed_at(name) {
        eprintln!("fault injected: aborting at {name}");
        std::process::abort();
    }
}
