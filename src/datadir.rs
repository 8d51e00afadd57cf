//! The data folder: who may create it, the lock one server holds on it for its whole life, the
//! modes of what is in it, and what the running server says about itself there.

use std::fs::{self, File, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Held (flock, exclusive) by the server serving the folder; it holds `ServerInfo` as JSON.
pub(crate) const LOCK_FILE: &str = "flare.lock";

/// The folder as a person should read it in a message: absolute when it can be.
pub fn shown(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}

/// Makes sure the data folder exists. Only `serve` and `token create` may create it (0700,
/// said on stderr with its absolute path); every other command refuses, naming where it looked,
/// so a mistyped `--data-dir` never turns into an empty folder that seems fine.
pub(crate) fn ensure(dir: &Path, may_create: bool) -> Result<(), String> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o077 != 0 {
                // The commands that may make the folder may also make it private (a fresh clone
                // holds an empty data/ with the checkout's 0755); the others only say so.
                let tightened = may_create
                    && fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).is_ok();
                if tightened {
                    log::info!("made the data folder {} private (0700)", shown(dir));
                } else {
                    log::warn!(
                        "the data folder {} can be read by other users; run chmod 700 on it",
                        shown(dir)
                    );
                }
            }
            Ok(())
        }
        Ok(_) => Err(format!("{} is not a folder", shown(dir))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !may_create {
                return Err(format!(
                    "there is no data folder at {}: check --data-dir, FLARE_DATA_DIR or data_dir \
                     in flare.toml (only `flare serve` and `flare token create` make a new one)",
                    shown(dir)
                ));
            }
            crate::storage::create_private_dir_all(dir)
                .map_err(|e| format!("cannot create the data folder {}: {e}", shown(dir)))?;
            eprintln!("created the data folder {}", shown(dir));
            Ok(())
        }
        Err(e) => Err(format!("cannot read the data folder {}: {e}", shown(dir))),
    }
}

/// A missing database in a folder whose objects/ holds videos' files is a database that was
/// lost or not restored: starting over empty would hide every one of them.
pub(crate) fn refuse_new_database_beside_objects(data_dir: &Path) -> Result<(), String> {
    let videos = fs::read_dir(data_dir.join("objects"))
        .map(|entries| entries.filter_map(Result::ok).count())
        .unwrap_or(0);
    if videos == 0 {
        return Ok(());
    }
    Err(format!(
        "{} has no flare.db, but its objects/ folder holds the files of {videos} video(s): \
         restore flare.db (with flare.db-wal, if it was backed up) from the backup this folder \
         came from. To start over empty instead, move objects/ away first",
        shown(data_dir)
    ))
}

/// Creates `path` empty, readable by flare's user alone, unless it exists. SQLite gives the
/// database's `-wal` and `-shm` files the mode of the database file, so making that one 0600
/// first keeps all three private.
pub(crate) fn create_private_file(path: &Path) -> io::Result<()> {
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// What a running server tells the command-line tools about itself.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServerInfo {
    pub pid: u32,
    pub public_url: String,
    pub media_url: String,
}

/// The lock a server holds on its data folder for as long as it runs: a second server on the
/// same folder would sweep the first one's uploads in progress from `tmp/`. Released by the
/// kernel when the process ends, however it ends.
pub(crate) struct DataLock {
    file: File,
    path: PathBuf,
}

impl DataLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DataLock, String> {
        let path = dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", shown(&path)))?;
        match file.try_lock() {
            Ok(()) => Ok(DataLock { file, path }),
            Err(TryLockError::WouldBlock) => {
                let who = read_info(&path)
                    .map(|i| format!(" (pid {}, serving {})", i.pid, i.public_url))
                    .unwrap_or_default();
                Err(format!(
                    "another flare server{who} is using the data folder {}; stop it first (it \
                     finishes the uploads in flight before it exits), or give this one another --data-dir",
                    shown(dir)
                ))
            }
            Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", shown(&path))),
        }
    }

    /// Writes what the command-line tools should know about this server.
    pub(crate) fn advertise(&self, info: &ServerInfo) -> Result<(), String> {
        let json = serde_json::to_vec(info).map_err(|e| e.to_string())?;
        let mut file = &self.file;
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(&json))
            .map_err(|e| format!("cannot write {}: {e}", shown(&self.path)))
    }
}

impl Drop for DataLock {
    fn drop(&mut self) {
        // Nothing is serving any more; the lock itself goes with the file handle.
        let _ = self.file.set_len(0);
    }
}

fn read_info(path: &Path) -> Option<ServerInfo> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// The server running on this data folder right now, if any.
pub(crate) fn running_server(dir: &Path) -> Option<ServerInfo> {
    let path = dir.join(LOCK_FILE);
    let file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        // Nobody holds it: what the file says is from a server that has stopped.
        Ok(()) => None,
        Err(_) => read_info(&path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_lock_per_folder_and_the_holder_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataLock::acquire(dir.path()).unwrap();
        let info = ServerInfo {
            pid: 42,
            public_url: "http://10.0.0.5:8080".into(),
            media_url: "http://10.0.0.5:8080/media".into(),
        };
        first.advertise(&info).unwrap();
        let refused = DataLock::acquire(dir.path()).err().unwrap();
        assert!(
            refused.contains("pid 42, serving http://10.0.0.5:8080"),
            "{refused}"
        );
        assert_eq!(
            running_server(dir.path()).unwrap().public_url,
            "http://10.0.0.5:8080"
        );
        drop(first);
        assert!(running_server(dir.path()).is_none());
        DataLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn only_the_commands_that_may_create_a_folder_do() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("typo");
        let refused = ensure(&missing, false).unwrap_err();
        assert!(refused.contains("there is no data folder at"), "{refused}");
        assert!(!missing.exists());
        ensure(&missing, true).unwrap();
        let mode = fs::metadata(&missing).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
    }
}
