//! The handle the server's state keeps for media jobs: which ffmpeg they run (found once, as
//! the settings say) and the bell that wakes an idle worker. The workers are in `media_jobs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The job queue's handle in the server's state.
pub struct MediaJobs {
    ffmpeg: Option<PathBuf>,
    pub(crate) wake: Arc<tokio::sync::Notify>,
}

impl MediaJobs {
    /// Finds ffmpeg as the settings say (`ffmpeg_path`, else PATH); none when `media_jobs` is 0.
    pub fn new(settings: &crate::config::Settings) -> MediaJobs {
        let ffmpeg = match settings.ffmpeg_path.as_deref().map(str::trim) {
            _ if settings.media_jobs == 0 => None,
            Some("" | "off") => None,
            Some(p) if p.contains('/') => Some(PathBuf::from(p)).filter(|p| is_executable(p)),
            Some(name) => on_path(name),
            None => on_path("ffmpeg"),
        };
        MediaJobs {
            ffmpeg,
            wake: Arc::default(),
        }
    }

    /// The ffmpeg jobs run with, if any.
    pub fn ffmpeg(&self) -> Option<&Path> {
        self.ffmpeg.as_deref()
    }

    /// Tells an idle worker there is work.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}
