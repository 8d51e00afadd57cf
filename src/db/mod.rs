//! The SQLite database: connections, migrations, and the one way to reach them off the executor.
//!
//! A CLI process and a running server share the file: WAL lets readers run beside the one
//! writer, and the busy timeout makes a second writer wait its turn instead of failing.

pub mod tokens;
pub mod uploads;
pub mod videos;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::ApiError;

/// Each entry moves the schema one version up; `PRAGMA user_version` says how many have run.
/// Never edit a shipped entry: add one.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE TABLE videos (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    id           TEXT NOT NULL UNIQUE,
    title        TEXT,
    file_name    TEXT NOT NULL,
    source       TEXT NOT NULL,
    width        REAL,
    height       REAL,
    duration     REAL,
    status       TEXT NOT NULL,
    object_name  TEXT,
    size         INTEGER,
    content_type TEXT,
    sha256       TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    video_id     TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    byte_limit   INTEGER NOT NULL,
    exact_size   INTEGER NOT NULL,
    token_id     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    completed_at INTEGER
);
CREATE INDEX uploads_by_video ON uploads (video_id);
"#,
    r#"
ALTER TABLE videos ADD COLUMN password_hash TEXT;
ALTER TABLE videos ADD COLUMN embed_settings TEXT;
"#,
];

/// How long a writer waits for another process's write to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
const POOL_SIZE: usize = 8;

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The one connection this process writes through. Writers queue on this mutex instead of
    /// meeting in SQLite's busy handler, whose sleeps would make the slowest request wait
    /// hundreds of milliseconds under load.
    writer: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) the database and brings its schema up to date. Blocking.
    pub fn open(path: &Path) -> Result<Db, String> {
        let mut conn = connect(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        migrate(&mut conn).map_err(|e| format!("cannot migrate {}: {e}", path.display()))?;
        let writer = connect(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // WAL with NORMAL: a commit survives the process being killed, and is on disk by the next
        // checkpoint; the commits that must survive a power cut (a stored upload) ask for FULL.
        writer
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| format!("cannot set up {}: {e}", path.display()))?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                idle: Mutex::new(vec![conn]),
                writer: Mutex::new(writer),
            }),
        })
    }

    /// Runs `f` with a connection on the calling thread. For the CLI and for code already on a
    /// blocking thread; async code uses `run`.
    pub fn call<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.inner.path)?,
        };
        let out = f(&mut conn);
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
        out
    }

    /// Runs `f` with the writer connection on a blocking thread: for every change the server
    /// makes. Reads use `run`.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = db.inner.writer.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut conn)
        })
        .await
        .map_err(|e| ApiError::internal("database task", e))?
    }

    /// Runs `f` on a blocking thread, so SQLite never stalls the async executor.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.call(f))
            .await
            .map_err(|e| ApiError::internal("database task", e))?
    }
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: a commit that returned is on disk, so an upload answered 200 survives a power cut.
    conn.pragma_update(None, "synchronous", "FULL")?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), String> {
    migrate_inner(conn).map_err(|e| e.to_string())?
}

fn migrate_inner(conn: &mut Connection) -> rusqlite::Result<Result<(), String>> {
    // IMMEDIATE takes the write lock first, so two processes starting together migrate once.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > MIGRATIONS.len() {
        return Ok(Err(format!(
            "the database is at schema version {version}, newer than this flare knows ({}); use a newer flare",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[version..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())?;
    tx.commit().map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flare.db");
        Db::open(&path).unwrap();
        let db = Db::open(&path).unwrap();
        let (version, mode): (usize, String) = db
            .call(|c| {
                Ok::<_, rusqlite::Error>((
                    c.query_row("PRAGMA user_version", [], |r| r.get(0))?,
                    c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        assert_eq!(mode, "wal");
    }
}
