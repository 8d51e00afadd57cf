//! The SQLite database: connections, migrations, and the one way to reach them off the executor.
//!
//! A CLI process and a running server share the file: WAL lets readers run beside the one
//! writer, and the busy timeout makes a second writer wait its turn instead of failing.

pub mod captions;
#[cfg(test)]
mod conformance;
pub mod jobs;
#[cfg(feature = "postgres")]
mod postgres;
pub mod publications;
pub mod sql;
pub mod tokens;
pub mod uploads;
pub mod videos;
pub mod webhooks;

pub use sql::{Conn, Optional};

use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    // A presign that declares a size sums what open sized uploads were promised: this index
    // holds only those rows, so the sum stays small while the table grows by one row per URL.
    r#"
CREATE INDEX uploads_open_declared ON uploads (expires_at, byte_limit)
    WHERE exact_size = 1 AND completed_at IS NULL;
"#,
    // An upload's record is committed before its file is renamed into place; this row says
    // which staged file is to become which object until the rename is done, so that a crash
    // between the two is rolled forward at the next start (`publications.rs`).
    r#"
CREATE TABLE publications (
    temp_name    TEXT PRIMARY KEY,
    video_id     TEXT NOT NULL,
    object_name  TEXT NOT NULL,
    replaces     TEXT
);
"#,
    // A resumable upload's session lives on its upload row: `session_offset` is the count of
    // bytes durable in `tmp/resumable/UPLOAD_ID.part` (NULL: no session started), the rest what
    // the client declared. The index holds only live sessions, for the sweeper.
    r#"
ALTER TABLE uploads ADD COLUMN session_offset INTEGER;
ALTER TABLE uploads ADD COLUMN session_length INTEGER;
ALTER TABLE uploads ADD COLUMN session_protocol TEXT;
ALTER TABLE uploads ADD COLUMN session_metadata TEXT;
ALTER TABLE uploads ADD COLUMN session_until INTEGER;
CREATE INDEX uploads_sessions ON uploads (session_until)
    WHERE session_offset IS NOT NULL AND completed_at IS NULL;
"#,
    // What the probe learnt of the stored object (`domain::probe::MediaInfo` as JSON).
    r#"
ALTER TABLE videos ADD COLUMN media TEXT;
"#,
    // Captions: the WebVTT text per video and language (small, so in the database, where a
    // video's deletion takes them too); `videos.captions` lists them for the Video object.
    r#"
CREATE TABLE captions (
    video_id   TEXT NOT NULL,
    lang       TEXT NOT NULL,
    label      TEXT NOT NULL,
    vtt        TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (video_id, lang)
);
ALTER TABLE videos ADD COLUMN captions TEXT;
"#,
    // Posters and renditions: `media_jobs` is the queue (one row per video and kind, made from
    // the object whose digest it names), `assets` what was made (files under
    // `objects/ID/derived/`), `videos.derived` both as the Video object shows them.
    r#"
CREATE TABLE media_jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id      TEXT NOT NULL,
    kind          TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    state         TEXT NOT NULL,
    progress      REAL NOT NULL DEFAULT 0,
    attempts      INTEGER NOT NULL DEFAULT 0,
    error         TEXT,
    run_after     INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (video_id, kind)
);
CREATE INDEX media_jobs_queued ON media_jobs (run_after) WHERE state = 'queued';
CREATE TABLE assets (
    video_id     TEXT NOT NULL,
    kind         TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    width        INTEGER,
    height       INTEGER,
    bitrate      INTEGER,
    origin       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (video_id, kind)
);
ALTER TABLE videos ADD COLUMN derived TEXT;
"#,
    // The webhook outbox: one row per event and webhook URL, written in the transaction that
    // made the change, delivered in order per URL (`domain::webhooks`). Secrets stay in the
    // settings.
    r#"
CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL,
    url          TEXT NOT NULL,
    event        TEXT NOT NULL,
    body         TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      INTEGER NOT NULL,
    last_status  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    delivered_at INTEGER
);
CREATE INDEX webhook_pending ON webhook_deliveries (url, id) WHERE state = 'pending';
"#,
    // Webhooks made through the API (`POST /api/webhooks`), beside flare.toml's. The secret is
    // kept as given: flare signs with it, so it cannot be a hash (as the signing key is kept).
    r#"
CREATE TABLE webhooks (
    id         TEXT PRIMARY KEY,
    url        TEXT NOT NULL UNIQUE,
    events     TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"#,
    // A presign without a size writes no row (its URL carries every fact, and its row is made
    // at first use): this one number says until when such URLs may be open, raised ahead of
    // time in steps, so that a folder that lost its signing key still knows what a new key
    // would void (`keys::load_or_create`).
    r#"
CREATE TABLE signed_until (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    until_ms INTEGER NOT NULL
);
INSERT INTO signed_until (id, until_ms) VALUES (1, 0);
"#,
    // With objects in a bucket, the key of the object a publication replaces: removed once the
    // record naming the new one is committed, or at the next start after a crash.
    r#"
ALTER TABLE publications ADD COLUMN replaced_key TEXT;
"#,
    // With objects in a bucket, where the video's object is: a key of its upload's own, so
    // that no upload overwrites another's object.
    r#"
ALTER TABLE videos ADD COLUMN object_key TEXT;
"#,
    // With objects in a bucket, where a resumable session's bytes are (its multipart upload,
    // parts, tail and SHA-256 state), so that any node can take its next request.
    r#"
ALTER TABLE uploads ADD COLUMN session_store TEXT;
"#,
];

/// A connection for a command that only reads (`doctor`, `webhook deliveries`): `data_dir`'s
/// flare.db opened read-only, or the PostgreSQL `database_url` names. Nothing is created or
/// migrated.
pub fn read_only(data_dir: &Path, database_url: Option<&str>) -> Result<Conn, String> {
    match database_url {
        #[cfg(feature = "postgres")]
        Some(url) => sql::PgConn::connect(url)
            .map_err(|e| format!("cannot connect to PostgreSQL: {}", sql::Error::from(e))),
        #[cfg(not(feature = "postgres"))]
        Some(_) => Err(NO_POSTGRES.into()),
        None => {
            let db = data_dir.join("flare.db");
            Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map(Conn::from)
                .map_err(|e| format!("cannot read {}: {e}", crate::datadir::shown(&db)))
        }
    }
}

/// The schema version of the database `conn` is on.
pub fn schema_version(conn: &Conn) -> sql::Result<usize> {
    if conn.is_postgres() {
        conn.row("SELECT version FROM flare_schema", &[], |r| r.get(0))
    } else {
        conn.row("PRAGMA user_version", &[], |r| r.get(0))
    }
}

/// What a flare built without PostgreSQL says of a `database_url`.
#[cfg(not(feature = "postgres"))]
const NO_POSTGRES: &str = "database_url is set, but this flare was built without PostgreSQL \
     support: build it with\n    cargo build --release --features postgres";

/// The schema version this flare migrates a database to.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// How long a writer waits for another process's write to finish before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
const POOL_SIZE: usize = 8;
/// Prepared statements kept per connection: every statement flare runs fits.
const STATEMENT_CACHE: usize = 64;

#[derive(Clone)]
pub struct Db {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Inner>),
    #[cfg(feature = "postgres")]
    Postgres(Arc<postgres::PgDb>),
}

struct Inner {
    path: PathBuf,
    /// `note_tokens_revoked`'s marker file, beside the database.
    revocations: PathBuf,
    /// That file, held open: `revocations_seen` asks the open file, which costs no path lookup.
    revocations_file: Option<std::fs::File>,
    idle: Mutex<Vec<Conn>>,
    /// The file this database was opened on.
    identity: FileIdentity,
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

type Reply = Box<dyn FnOnce(Result<(), Failed>) + Send>;

/// Why a transaction did not commit: cloneable, since one failure answers a whole group.
#[derive(Clone, Debug)]
pub(crate) struct Failed {
    code: Option<rusqlite::ErrorCode>,
    message: String,
}

impl Failed {
    fn of(e: &sql::Error) -> Failed {
        Failed {
            code: e.sqlite_code(),
            message: e.to_string(),
        }
    }
}

/// The SQLite connection of a `Conn` the SQLite writer opened itself.
fn sqlite(conn: &Conn) -> &Connection {
    conn.sqlite()
        .expect("the SQLite writer holds a SQLite connection")
}

/// What went wrong in the database layer, for its callers to turn into their own errors
/// (`ApiError` implements `From<DbError>`).
#[derive(Debug)]
pub enum DbError {
    /// The disk is full.
    DiskFull,
    /// The database cannot be written or opened (made read-only, replaced, deleted).
    Unavailable(String),
    /// Anything else: a bug, a damaged database, a thread that stopped.
    Failed(String),
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbError::DiskFull => f.write_str("database or disk is full"),
            DbError::Unavailable(m) | DbError::Failed(m) => f.write_str(m),
        }
    }
}

impl DbError {
    fn of(code: Option<rusqlite::ErrorCode>, message: String) -> DbError {
        use rusqlite::ErrorCode as C;
        match code {
            Some(C::DiskFull) => DbError::DiskFull,
            Some(C::ReadOnly | C::CannotOpen | C::PermissionDenied) => {
                DbError::Unavailable(message)
            }
            _ => DbError::Failed(message),
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        DbError::of(e.sqlite_error_code(), e.to_string())
    }
}

impl From<sql::Error> for DbError {
    fn from(e: sql::Error) -> DbError {
        DbError::of(e.sqlite_code(), e.to_string())
    }
}

impl From<Failed> for DbError {
    fn from(f: Failed) -> DbError {
        DbError::of(f.code, f.message)
    }
}
/// A change: applied to the connection, it says whether it succeeded and what to answer.
type Change = Box<dyn FnOnce(Option<&mut Conn>) -> (bool, Reply) + Send>;

/// How long the writer waits for more changes when the last group held several: fewer, larger
/// commits write fewer WAL pages (figures: BENCHMARKS.md, group commit). A lone change is never
/// delayed.
const GATHER: Duration = Duration::from_micros(300);
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
        // The writer waits in short steps: SQLite's own back-off sleeps up to 100 ms at a time.
        writer
            .busy_handler(Some(short_waits))
            .map_err(|e| format!("cannot set up {}: {e}", path.display()))?;
        // Checkpoints (copying the WAL into the database file, with an fsync) run on their own
        // thread, so no commit waits for one.
        writer
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| format!("cannot set up {}: {e}", path.display()))?;
        let checkpointer =
            connect(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // fsync works on a file opened for reading; without it, syncs are left to SQLite.
        let db_file = std::fs::File::open(path).ok();
        let (committed_tx, committed_rx) = std::sync::mpsc::sync_channel(1);
        let wal_long = Arc::new(AtomicBool::new(false));
        let wal_long_seen = wal_long.clone();
        std::thread::Builder::new()
            .name("flare-db-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, db_file, committed_rx, &wal_long_seen))
            .map_err(|e| format!("cannot start the database checkpointer: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let identity =
            FileIdentity::of(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let watched = identity.clone();
        std::thread::Builder::new()
            .name("flare-db-writer".into())
            .spawn(move || writer_loop(writer.into(), rx, committed_tx, &wal_long, watched))
            .map_err(|e| format!("cannot start the database writer: {e}"))?;
        let revocations = {
            let mut name = path.as_os_str().to_owned();
            name.push("-revocations");
            PathBuf::from(name)
        };
        let revocations_file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&revocations)
            .ok();
        Ok(Db {
            backend: Backend::Sqlite(Arc::new(Inner {
                path: path.to_path_buf(),
                revocations,
                revocations_file,
                idle: Mutex::new(vec![conn.into()]),
                identity,
                writer: Mutex::new(tx),
            })),
        })
    }

    /// The database `database_url` names (PostgreSQL), brought up to date. Blocking.
    pub fn open_url(url: &str) -> Result<Db, String> {
        #[cfg(feature = "postgres")]
        {
            Ok(Db {
                backend: Backend::Postgres(Arc::new(postgres::PgDb::open(url)?)),
            })
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            Err(NO_POSTGRES.into())
        }
    }

    /// The SQLite side, when this is SQLite.
    fn sqlite(&self) -> Option<&Inner> {
        match &self.backend {
            Backend::Sqlite(inner) => Some(inner),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
        }
    }

    /// Whether this is a PostgreSQL database (shared by several nodes, with no file here).
    pub fn is_postgres(&self) -> bool {
        self.sqlite().is_none()
    }

    /// Says to every process serving this database that a token was revoked: the server keeps
    /// token rows in memory (`auth::TokenCache`) only as long as this has not happened. A
    /// byte is appended to a file beside the database, whose length counts revocations.
    /// On PostgreSQL there is no such cache (`revocations_seen` is `None`): nothing to say.
    pub(crate) fn note_tokens_revoked(&self) -> std::io::Result<()> {
        use std::io::Write;
        let Some(inner) = self.sqlite() else {
            return Ok(());
        };
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&inner.revocations)?
            .write_all(b"r")
    }

    /// Changes whenever `note_tokens_revoked` has been called, in any process: the marker
    /// file's inode and length. One `fstat` of the file held open, far cheaper than a read
    /// transaction; if that file was deleted or replaced since, the name is looked up instead.
    ///
    /// `None` on PostgreSQL: a token may be revoked on any node, so none is kept in memory and
    /// every request reads its row.
    pub(crate) fn revocations_seen(&self) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let inner = self.sqlite()?;
        if let Some(Ok(m)) = inner.revocations_file.as_ref().map(|f| f.metadata()) {
            if m.nlink() > 0 {
                return Some((m.ino(), m.len()));
            }
        }
        Some(match std::fs::metadata(&inner.revocations) {
            Ok(m) => (m.ino(), m.len()),
            Err(_) => (0, 0),
        })
    }

    /// Why the database path no longer names the file this process opened, if it does not.
    pub(crate) fn file_changed(&self) -> Option<String> {
        self.sqlite()?.identity.changed()
    }

    /// Runs `f` with a connection on the calling thread. For the CLI and for code already on a
    /// blocking thread; async code uses `read` or `read_on_executor`.
    pub fn blocking<T, E: From<sql::Error>>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        // One arm without the `postgres` feature.
        #[allow(clippy::infallible_destructuring_match)]
        let inner = match &self.backend {
            Backend::Sqlite(inner) => inner,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => return pg.blocking(f),
        };
        let pooled = inner.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match pooled {
            Some(c) => c,
            // Never CREATE here: a database deleted under the running server must not come back
            // empty behind its back (`writer_loop` notices and refuses writes).
            None => connect_with(&inner.path, false)
                .map_err(sql::Error::from)?
                .into(),
        };
        let out = f(&mut conn);
        let mut idle = inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
        out
    }

    /// Makes a change through the writer thread, atomically: `f` runs inside a transaction (it
    /// must not open one), and if it returns an error nothing it did is kept. Its result comes
    /// back once the change is committed. Reads use `run`.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        E: From<DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(false, f, Ok).await
    }

    /// A change that must survive a power cut (it runs alone, committed with
    /// `synchronous=FULL`), then `after` with what `f` returned, on the writer thread, once the
    /// commit is on disk and before the next transaction begins: file-system work that must
    /// follow its record (publishing an upload) happens in commit order. When the commit fails,
    /// `after` never runs and what `f` returned is dropped.
    pub(crate) async fn write_durable_then<P, T, E, F, A>(&self, f: F, after: A) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<P, E> + Send + 'static,
        A: FnOnce(P) -> Result<T, E> + Send + 'static,
        E: From<DbError> + Send + 'static,
        P: Send + 'static,
        T: Send + 'static,
    {
        self.submit(true, f, after).await
    }

    async fn submit<P, T, E, F, A>(&self, durable: bool, f: F, after: A) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<P, E> + Send + 'static,
        A: FnOnce(P) -> Result<T, E> + Send + 'static,
        E: From<DbError> + Send + 'static,
        P: Send + 'static,
        T: Send + 'static,
    {
        // One arm without the `postgres` feature.
        #[allow(clippy::infallible_destructuring_match)]
        let inner = match &self.backend {
            Backend::Sqlite(inner) => inner,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let db = pg.clone();
                pg.on_change_thread(Box::new(move || {
                    let _ = tx.send(db.change(durable, f, after));
                }))?;
                return rx
                    .await
                    .map_err(|_| DbError::Failed("a database thread dropped a change".into()))?;
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let run = Box::new(move |conn: Option<&mut Conn>| -> (bool, Reply) {
            let out = match conn {
                Some(conn) => f(conn),
                None => Err(DbError::Failed("could not begin a transaction".into()).into()),
            };
            let ok = out.is_ok();
            let reply: Reply = Box::new(move |committed: Result<(), Failed>| {
                let _ = tx.send(match committed {
                    Ok(()) => out.and_then(after),
                    Err(e) => {
                        drop(out);
                        Err(DbError::from(e).into())
                    }
                });
            });
            (ok, reply)
        });
        let sent = inner
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(Job { durable, run });
        sent.map_err(|_| DbError::Failed("the database writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| DbError::Failed("the database writer thread dropped a change".into()))?
    }

    /// A point read (a row by its key) on the calling thread. On the request path the hop to a
    /// blocking thread cost more than such a read: a WAL reader waits for no writer, and the
    /// rows it touches are hot in the page cache. The read is tried without SQLite's busy
    /// handler, so it never sleeps on the executor; if SQLite answers busy (a reader slot or the
    /// WAL being recovered), it is run again on a blocking thread, where waiting is allowed.
    pub(crate) async fn read_on_executor<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: Fn(&Conn) -> sql::Result<T> + Send + 'static,
        E: From<DbError> + Send + 'static,
        T: Send + 'static,
    {
        if self.is_postgres() {
            // Over the network: never on the executor.
            return self
                .read::<T, DbError, _>(move |conn| Ok(f(conn)?))
                .await
                .map_err(E::from);
        }
        let first = self.blocking(|conn| {
            sqlite(conn).busy_timeout(Duration::ZERO)?;
            let out = f(conn);
            sqlite(conn).busy_timeout(BUSY_TIMEOUT)?;
            out
        });
        match first {
            Err(e) if e.sqlite_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => self
                .read::<T, DbError, _>(move |conn| Ok(f(conn)?))
                .await
                .map_err(E::from),
            other => other.map_err(|e| DbError::from(e).into()),
        }
    }

    /// Runs `f` (a read) on a blocking thread, so SQLite never stalls the async executor.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn) -> Result<T, E> + Send + 'static,
        E: From<DbError> + From<sql::Error> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.blocking(f))
            .await
            .map_err(|e| E::from(DbError::Failed(format!("database task: {e}"))))?
    }
}

/// The writer thread: group commit. It takes every change queued (up to `GROUP_MAX`) into one
/// `BEGIN IMMEDIATE` transaction, each inside its own savepoint so that a failing change is
/// rolled back alone, commits once, then answers them all. Under load, many presigns share one
/// commit; alone, a change is committed at once. In-process writers never meet in SQLite's busy
/// handler (whose back-off sleeps made p99 latency explode); another process, such as a
/// `flare token` command, still waits its turn through the busy timeout.
fn writer_loop(
    mut conn: Conn,
    rx: std::sync::mpsc::Receiver<Job>,
    committed_tx: std::sync::mpsc::SyncSender<()>,
    wal_long: &AtomicBool,
    watched: FileIdentity,
) {
    let mut pending: Option<Job> = None;
    let mut was_gone = false;
    let mut last_group = 0;
    loop {
        if wal_long.swap(false, Ordering::Relaxed) {
            restart_wal(sqlite(&conn));
        }
        let first = match pending.take() {
            Some(job) => job,
            None => match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut group = vec![first];
        if !group[0].durable && last_group > 1 {
            // Under load, let the group fill: fewer, larger commits write fewer WAL pages.
            std::thread::sleep(GATHER);
        }
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
        last_group = group.len();
        // A durable change that cannot be made durable is not made at all. (The level cannot
        // change inside a transaction, so it is set before BEGIN.)
        let made_durable = if durable {
            sqlite(&conn)
                .pragma_update(None, "synchronous", "FULL")
                .err()
                .map(|e| Failed::of(&e.into()))
        } else {
            None
        };
        let mut replies = Vec::with_capacity(group.len());
        // A database file deleted or replaced under the server would take these writes into an
        // unlinked file, lost at the next start: refuse them instead, and say so once.
        let gone = watched.changed();
        if gone.is_some() != was_gone {
            match &gone {
                Some(why) => log::error!(
                    "the database {why}; writes are refused (503) until flare is restarted on a \
                     restored database"
                ),
                None => log::warn!("the database file is back; writes are accepted again"),
            }
            was_gone = gone.is_some();
        }
        if let Some(why) = gone {
            let failed = Failed {
                code: Some(rusqlite::ErrorCode::CannotOpen),
                message: format!("the database {why}"),
            };
            for job in group {
                let (_, reply) = (job.run)(None);
                reply(Err(failed.clone()));
            }
            if durable {
                let _ = sqlite(&conn).pragma_update(None, "synchronous", "NORMAL");
            }
            continue;
        }
        let begun = conn.exec("BEGIN IMMEDIATE", &[]);
        if let Err(e) = begun {
            log::error!("database writer: cannot begin a transaction: {e}");
            for job in group {
                let (_, reply) = (job.run)(None);
                reply(Err(Failed::of(&e)));
            }
            if durable {
                let _ = sqlite(&conn).pragma_update(None, "synchronous", "NORMAL");
            }
            continue;
        }
        let mut poisoned = made_durable;
        for job in group {
            if poisoned.is_some() {
                let (_, reply) = (job.run)(None);
                replies.push(reply);
                continue;
            }
            if let Err(e) = conn.exec("SAVEPOINT job", &[]) {
                poisoned = Some(Failed::of(&e));
                let (_, reply) = (job.run)(None);
                replies.push(reply);
                continue;
            }
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
            // If a failed change cannot be undone alone (its savepoint is gone), or a change's
            // savepoint cannot be released, the group's transaction may hold writes that must
            // not be kept: the whole group is rolled back and every change in it refused.
            let undone = if ok {
                Ok(0)
            } else {
                conn.exec("ROLLBACK TO job", &[])
            };
            if let Err(e) = undone.and_then(|_| conn.exec("RELEASE job", &[])) {
                log::error!("database writer: a change could not be isolated ({e}); its whole group was rolled back");
                poisoned = Some(Failed::of(&e));
            }
            replies.extend(reply);
        }
        let failed = poisoned.or_else(|| durable.then(injected_commit_failure).flatten());
        let committed = if let Some(failed) = failed {
            let _ = conn.batch("ROLLBACK");
            Err(failed)
        } else {
            crate::metrics::timed(&crate::metrics::METRICS.db_commit_seconds, || {
                conn.exec("COMMIT", &[])
            })
            .map(|_| ())
            .map_err(|e| {
                let _ = conn.batch("ROLLBACK");
                Failed::of(&e)
            })
        };
        if durable {
            let _ = sqlite(&conn).pragma_update(None, "synchronous", "NORMAL");
        }
        for reply in replies {
            reply(committed.clone());
        }
        // Tell the checkpointer there is WAL to copy; a signal already waiting covers this one.
        let _ = committed_tx.try_send(());
    }
}

/// Which file a path named when the database was opened.
#[derive(Clone)]
struct FileIdentity {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl FileIdentity {
    fn of(path: &Path) -> std::io::Result<FileIdentity> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path)?;
        Ok(FileIdentity {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// Why the path no longer names that file, if it does not: one `stat`, per group commit.
    fn changed(&self) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(&self.path) {
            Ok(m) if m.dev() == self.dev && m.ino() == self.ino => None,
            Ok(_) => Some(format!("file {} was replaced", self.path.display())),
            Err(e) => Some(format!("file {} is gone ({e})", self.path.display())),
        }
    }
}

/// A durable commit's failure asked for by `FLARE_FAULTS` (the failure tests).
fn injected_commit_failure() -> Option<Failed> {
    use crate::faults::armed_at;
    let (code, message) = if armed_at("commit-disk-full") {
        (
            rusqlite::ErrorCode::DiskFull,
            "database or disk is full (injected)",
        )
    } else if armed_at("commit-read-only") {
        (
            rusqlite::ErrorCode::ReadOnly,
            "attempt to write a readonly database (injected)",
        )
    } else {
        return None;
    };
    Some(Failed {
        code: Some(code),
        message: message.into(),
    })
}

/// Between transactions, on the writer: copies what is left of the WAL and makes the next
/// commit start it over. Most of it was copied by the checkpointer, so the pause is the tail
/// and two fsyncs. Readers are waited for briefly (`brief_waits`): a reader still using the WAL
/// after that (a long `flare fsck`, say) makes this give up rather than hold every write back
/// for the busy timeout; the checkpointer asks again after its next round.
fn restart_wal(conn: &Connection) {
    let restarted = conn.busy_handler(Some(brief_waits)).and_then(|()| {
        conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0))
    });
    match restarted {
        Ok(0) => {}
        Ok(_) => log::debug!("database checkpoint (restart): a reader is still using the WAL"),
        Err(e) => log::warn!("database checkpoint (restart): {e}"),
    }
    if let Err(e) = conn.busy_handler(Some(short_waits)) {
        log::error!("database writer: cannot restore its busy handler: {e}");
    }
}

/// The busy handler for the WAL restart: waits of 100 µs, 10 ms in all. Request-path readers
/// hold the WAL for microseconds; anything longer is not waited for.
fn brief_waits(attempt: i32) -> bool {
    std::thread::sleep(Duration::from_micros(100));
    attempt < 100
}

/// The writer's busy handler: waits of 100 µs, up to `BUSY_TIMEOUT` in all. The lock it waits
/// for is held for microseconds by a reader, or for one transaction by another process.
fn short_waits(attempt: i32) -> bool {
    const STEP: Duration = Duration::from_micros(100);
    std::thread::sleep(STEP);
    (attempt as u128) < BUSY_TIMEOUT.as_micros() / STEP.as_micros()
}

/// How long the checkpointer lets commits gather before copying them into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(if cfg!(test) { 20 } else { 200 });
/// WAL size past which the WAL is made to start over. Each restart pauses the writer for two
/// fsyncs of what the checkpointer has not synced yet, so it should be rare.
const WAL_LONG_BYTES: i64 = if cfg!(test) { 1 << 20 } else { 128 << 20 };
/// Page size of a new database. Each commit writes whole pages to the WAL, and a presign's
/// commit touches a few pages of three b-trees for a ~200-byte row: 1 KiB pages write a third
/// of the WAL bytes 4 KiB pages did, so the WAL has to start over a third as often.
const PAGE_SIZE: i64 = 1024;

/// The checkpoint thread: after commits, a `PASSIVE` checkpoint (it waits for no one), so its
/// fsync is not paid inside a request's commit. A passive checkpoint never catches the WAL's end
/// under a steady stream of commits, so past `WAL_LONG_BYTES` the writer is asked for one
/// `RESTART` between two transactions. The database file is synced here after each checkpoint,
/// so that restart's own fsync finds little left to write. Ends when the writer thread does.
fn checkpoint_loop(
    conn: Connection,
    db_file: Option<std::fs::File>,
    committed: std::sync::mpsc::Receiver<()>,
    wal_long: &AtomicBool,
) {
    // A database made before PAGE_SIZE was chosen keeps its own.
    let page = conn
        .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
        .unwrap_or(4096);
    while committed.recv().is_ok() {
        std::thread::sleep(CHECKPOINT_EVERY);
        while committed.try_recv().is_ok() {}
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) => {
                if let Some(Err(e)) = db_file.as_ref().map(|f| f.sync_data()) {
                    log::warn!("database checkpoint: cannot sync the database file: {e}");
                }
                if frames * page > WAL_LONG_BYTES {
                    wal_long.store(true, Ordering::Relaxed);
                }
            }
            Err(e) => log::warn!("database checkpoint: {e}"),
        }
    }
    // Last one, so a clean shutdown leaves a short WAL.
    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

fn connect(path: &Path) -> rusqlite::Result<Connection> {
    connect_with(path, true)
}

fn connect_with(path: &Path, create: bool) -> rusqlite::Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Only takes effect while the file is empty, before the switch to WAL.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // When the WAL starts over, a file grown past this (a reader held restarts off) is cut back
    // to it. Above WAL_LONG_BYTES, so the usual small overshoot is reused, not cut and regrown.
    conn.pragma_update(None, "journal_size_limit", 2 * WAL_LONG_BYTES)?;
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
    use crate::error::ApiError;

    #[test]
    fn migrations_run_once_and_are_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flare.db");
        Db::open(&path).unwrap();
        let db = Db::open(&path).unwrap();
        let (version, mode): (usize, String) = db
            .blocking(|c| {
                Ok::<_, sql::Error>((
                    c.row("PRAGMA user_version", &[], |r| r.get(0))?,
                    c.row("PRAGMA journal_mode", &[], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
        assert_eq!(mode, "wal");
        let page: i64 = db
            .blocking(|c| c.row("PRAGMA page_size", &[], |r| r.get(0)))
            .unwrap();
        assert_eq!(page, PAGE_SIZE, "a new database has small pages");
    }

    /// One commit of a ~3 KB row, through the writer.
    async fn insert_3k_row(db: &Db, i: u64) -> Result<(), ApiError> {
        db.write(move |c| {
            c.exec(
                "INSERT INTO tokens (id, name, hash, scopes, created_at) VALUES (?1, ?2, ?1, '', 0)",
                crate::args![format!("t{i}"), vec![7u8; 3000]],
            )?;
            Ok(())
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_wal_starts_over_under_a_steady_stream_of_commits() {
        // Back-to-back commits never leave the passive checkpointer a moment to catch up, so the
        // WAL never starts over by itself (it grew to ~300 MB in 3 s that way); the writer's
        // restart must make it start over (test threshold: 1 MiB). The WAL header's
        // checkpoint sequence number counts the times it did.
        fn restarts(wal: &Path) -> u32 {
            use std::io::Read;
            let mut header = [0u8; 16];
            File::open(wal).unwrap().read_exact(&mut header).unwrap();
            u32::from_be_bytes(header[12..16].try_into().unwrap())
        }
        use std::fs::File;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flare.db");
        let db = Db::open(&path).unwrap();
        let wal = dir.path().join("flare.db-wal");
        let insert = |i: u64| insert_3k_row(&db, i);
        insert(0).await.unwrap();
        let before = restarts(&wal);
        // At least 3 s of commits; on a slow disk (each restart pays two fsyncs), up to 20 s
        // for the WAL to have started over twice.
        let started = std::time::Instant::now();
        let mut written = 3000u64;
        let mut i = 1;
        loop {
            let elapsed = started.elapsed();
            let started_over = restarts(&wal).wrapping_sub(before);
            if elapsed > Duration::from_secs(20)
                || (elapsed > Duration::from_secs(3) && started_over >= 2)
            {
                break;
            }
            insert(i).await.unwrap();
            written += 3000;
            i += 1;
        }
        let started_over = restarts(&wal).wrapping_sub(before);
        assert!(
            started_over >= 2,
            "the WAL started over {started_over} times while {written} bytes were written"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_reader_holding_the_wal_does_not_hold_writes_back() {
        // A reader that keeps an old snapshot stops the WAL from starting over; the writer's
        // restart must then give up at once, not wait out the 10 s busy timeout.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flare.db");
        let db = Db::open(&path).unwrap();
        let reader = connect(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))
            .unwrap();
        let started = std::time::Instant::now();
        for i in 0..3000 {
            insert_3k_row(&db, i).await.unwrap();
        }
        let took = started.elapsed();
        reader.execute_batch("COMMIT").unwrap();
        // Waiting out the busy timeout on each restart took ~470 s; giving up takes ~3 s here,
        // and up to ~5 s beside other tests on this disk.
        assert!(took < BUSY_TIMEOUT * 6, "3000 writes took {took:?}");
    }

    #[test]
    fn a_revocation_is_seen_even_after_the_marker_file_was_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("flare.db")).unwrap();
        let before = db.revocations_seen();
        db.note_tokens_revoked().unwrap();
        let once = db.revocations_seen();
        assert_ne!(once, before, "an append to the file held open");
        // Deleted behind the server's back, then made anew by the next `flare token revoke`.
        std::fs::remove_file(dir.path().join("flare.db-revocations")).unwrap();
        let other = Db::open(&dir.path().join("flare.db")).unwrap();
        other.note_tokens_revoked().unwrap();
        assert_ne!(
            db.revocations_seen(),
            once,
            "the new file, found by its name"
        );
    }

    fn token_names(db: &Db) -> Vec<String> {
        db.blocking(|c| c.rows("SELECT name FROM tokens ORDER BY name", &[], |r| r.get(0)))
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failed_change_that_cannot_be_undone_alone_takes_its_group_down_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("flare.db")).unwrap();
        let insert = |name: &'static str, sabotage: bool| {
            let db = db.clone();
            async move {
                db.write(move |c| {
                    if sabotage {
                        // Releases its own savepoint, then writes and fails: "ROLLBACK TO job"
                        // can no longer undo it alone.
                        c.batch("RELEASE job")?;
                    }
                    c.exec(
                        "INSERT INTO tokens (id, name, hash, scopes, created_at) VALUES (?1, ?1, ?1, '', 0)",
                        crate::args![name],
                    )?;
                    if sabotage {
                        return Err(ApiError::Conflict("refused after writing".into()));
                    }
                    Ok(())
                })
                .await
            }
        };
        let (a, b, c) = tokio::join!(insert("a", false), insert("b", true), insert("c", false));
        assert!(b.is_err());
        let names = token_names(&db);
        assert!(
            !names.contains(&"b".to_string()),
            "a failed change's write was committed with its group: {names:?}"
        );
        // What was answered is what is stored.
        assert_eq!(a.is_ok(), names.contains(&"a".to_string()));
        assert_eq!(c.is_ok(), names.contains(&"c".to_string()));
        insert("d", false).await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_failing_or_panicking_change_is_rolled_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("flare.db")).unwrap();
        let insert = |name: &'static str, fail: bool| {
            let db = db.clone();
            async move {
                db.write(move |c| {
                    c.exec(
                        "INSERT INTO tokens (id, name, hash, scopes, created_at) VALUES (?1, ?1, ?1, '', 0)",
                        crate::args![name],
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
        let names = token_names(&db);
        assert_eq!(names, ["a", "c", "d"]);
    }
}
