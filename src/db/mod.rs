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
    /// The one thread, and connection, this process writes through. See `writer_loop`.
    writer: Mutex<std::sync::mpsc::Sender<Job>>,
}

/// A change to make: runs on the writer thread, says whether it succeeded, and hands back what
/// to tell its caller once the transaction holding it has committed (or failed to).
struct Job {
    /// Run alone, in its own transaction, with `synchronous=FULL`: for commits that must
    /// survive a power cut, and that do file-system work no rollback could undo.
    durable: bool,
    /// Given no connection, it does nothing and fails (the transaction could not begin).
    run: Change,
}

type Reply = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A change: applied to the connection, it says whether it succeeded and what to answer.
type Change = Box<dyn FnOnce(Option<&mut Connection>) -> (bool, Reply) + Send>;

/// Most changes queued at once that share one transaction.
const GROUP_MAX: usize = 256;

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
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("flare-db-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|e| format!("cannot start the database writer: {e}"))?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                idle: Mutex::new(vec![conn]),
                writer: Mutex::new(tx),
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

    /// Makes a change through the writer thread, atomically: `f` runs inside a transaction (it
    /// must not open one), and if it returns an error nothing it did is kept. Its result comes
    /// back once the change is committed. Reads use `run`.
    pub async fn write<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(false, f).await
    }

    /// `write` for a change that must survive a power cut and may do file-system work: it runs
    /// alone, committed with `synchronous=FULL`.
    pub async fn write_durable<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(true, f).await
    }

    async fn submit<T, F>(&self, durable: bool, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut Connection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let run = Box::new(move |conn: Option<&mut Connection>| -> (bool, Reply) {
            let out = match conn {
                Some(conn) => f(conn),
                None => Err(ApiError::internal(
                    "database",
                    "could not begin a transaction",
                )),
            };
            let ok = out.is_ok();
            let reply: Reply = Box::new(move |committed: Result<(), String>| {
                let _ = tx.send(match committed {
                    Ok(()) => out,
                    Err(e) => Err(ApiError::internal("database commit", e)),
                });
            });
            (ok, reply)
        });
        let sent = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Job { durable, run });
        sent.map_err(|_| ApiError::internal("database", "the writer thread has stopped"))?;
        rx.await
            .map_err(|_| ApiError::internal("database", "the writer thread dropped a change"))?
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

/// The writer thread: group commit. It takes every change queued (up to `GROUP_MAX`) into one
/// `BEGIN IMMEDIATE` transaction, each inside its own savepoint so that a failing change is
/// rolled back alone, commits once, then answers them all. Under load, many presigns share one
/// commit; alone, a change is committed at once. In-process writers never meet in SQLite's busy
/// handler (whose back-off sleeps made p99 latency explode); another process, such as a
/// `flare token` command, still waits its turn through the busy timeout.
fn writer_loop(mut conn: Connection, rx: std::sync::mpsc::Receiver<Job>) {
    let mut pending: Option<Job> = None;
    loop {
        let first = match pending.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut group = vec![first];
        if !group[0].durable {
            while group.len() < GROUP_MAX {
                match rx.try_recv() {
                    Ok(job) if job.durable => {
                        pending = Some(job);
                        break;
                    }
                    Ok(job) => group.push(job),
                    Err(_) => break,
                }
            }
        }
        let durable = group[0].durable;
        if durable {
            let _ = conn.pragma_update(None, "synchronous", "FULL");
        }
        let mut replies = Vec::with_capacity(group.len());
        let begun = conn.execute_batch("BEGIN IMMEDIATE");
        if let Err(e) = begun {
            log::error!("database writer: cannot begin a transaction: {e}");
            for job in group {
                let (_, reply) = (job.run)(None);
                reply(Err(e.to_string()));
            }
            if durable {
                let _ = conn.pragma_update(None, "synchronous", "NORMAL");
            }
            continue;
        }
        for job in group {
            let _ = conn.execute_batch("SAVEPOINT job");
            // A change that panics is rolled back and its caller told; the writer carries on.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (job.run)(Some(&mut conn))
            }));
            let (ok, reply) = match ran {
                Ok((ok, reply)) => (ok, Some(reply)),
                Err(_) => {
                    log::error!("database writer: a change panicked; it was rolled back");
                    (false, None)
                }
            };
            let end = if ok {
                "RELEASE job"
            } else {
                "ROLLBACK TO job; RELEASE job"
            };
            let _ = conn.execute_batch(end);
            replies.extend(reply);
        }
        let committed = conn.execute_batch("COMMIT").map_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            e.to_string()
        });
        if durable {
            let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        }
        for reply in replies {
            reply(committed.clone());
        }
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

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_or_panicking_change_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("flare.db")).unwrap();
        let insert = |name: &'static str, fail: bool| {
            let db = db.clone();
            async move {
                db.write(move |c| {
                    c.execute(
                        "INSERT INTO tokens (id, name, hash, scopes, created_at) VALUES (?1, ?1, ?1, '', 0)",
                        [name],
                    )?;
                    if fail {
                        return Err(ApiError::Conflict("refused after writing".into()));
                    }
                    Ok(())
                })
                .await
            }
        };
        // Queued together, so they share a transaction.
        let (a, b, c) = tokio::join!(insert("a", false), insert("b", true), insert("c", false));
        assert!(a.is_ok() && b.is_err() && c.is_ok());
        let panicked = db
            .write(|_| -> Result<(), ApiError> { panic!("a bug") })
            .await;
        assert!(panicked.is_err());
        insert("d", false).await.unwrap();
        let names: Vec<String> = db
            .call(|c| {
                let mut st = c.prepare("SELECT name FROM tokens ORDER BY name")?;
                let rows = st.query_map([], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<Vec<String>>>()
            })
            .unwrap();
        assert_eq!(names, ["a", "c", "d"]);
    }
}
