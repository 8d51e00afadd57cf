//! PostgreSQL as flare's database (`database_url`, the `postgres` feature): for several flare
//! nodes sharing one set of records. The queries are the SQLite ones (`sql.rs`); what differs is
//! how a change is made. SQLite has one writer per file, and flare's changes were written for
//! that: each reads, decides and writes in one transaction with no other writer beside it. Here
//! every change takes one transaction-scoped advisory lock first, so changes from every node run
//! one at a time, as they did on one box, while reads never wait.

use std::sync::{Condvar, Mutex};

use super::sql::{self, Conn, PgConn};
use super::{DbError, MIGRATIONS};

/// The advisory lock every change holds until its commit.
const WRITE_LOCK: i64 = 0x666c_6172_6501;
/// The advisory lock that makes nodes starting together migrate once.
const MIGRATE_LOCK: i64 = 0x666c_6172_6502;
/// Connections this process keeps open at most; a caller past it waits for one.
const POOL_MAX: usize = 16;
/// Threads that make changes. Changes run one at a time under the write lock; more threads
/// only overlap the network round trips around it.
const CHANGE_THREADS: usize = 4;

/// A change to run on a change thread.
type Task = Box<dyn FnOnce() + Send>;

pub(crate) struct PgDb {
    url: String,
    pool: Mutex<Pool>,
    freed: Condvar,
    /// Held from a durable change's commit through its `after`, so that file work following a
    /// record happens in commit order in this process (as on SQLite's writer thread).
    durable: Mutex<()>,
    /// To the change threads: plain threads, outside any async runtime, as SQLite's writer is
    /// (what a change drops, such as a refused upload's staged file, goes at once there).
    tasks: Mutex<std::sync::mpsc::Sender<Task>>,
}

struct Pool {
    idle: Vec<Conn>,
    open: usize,
}

impl PgDb {
    /// Connects, and brings the schema up to date.
    pub(crate) fn open(url: &str) -> Result<PgDb, String> {
        let mut conn = PgConn::connect(url).map_err(|e| {
            format!(
                "cannot connect to the database_url's PostgreSQL: {}",
                sql::Error::from(e)
            )
        })?;
        migrate(&mut conn).map_err(|e| format!("cannot migrate the PostgreSQL database: {e}"))?;
        let (tx, rx) = std::sync::mpsc::channel::<Task>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..CHANGE_THREADS {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("flare-db-change-{i}"))
                .spawn(move || loop {
                    let task = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                    match task {
                        // A task that panics is lost (its caller is told); the thread goes on.
                        Ok(task) => {
                            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task));
                        }
                        Err(_) => return,
                    }
                })
                .map_err(|e| format!("cannot start the database threads: {e}"))?;
        }
        Ok(PgDb {
            tasks: Mutex::new(tx),
            url: url.to_owned(),
            pool: Mutex::new(Pool {
                idle: vec![conn],
                open: 1,
            }),
            freed: Condvar::new(),
            durable: Mutex::new(()),
        })
    }

    fn take(&self) -> Result<Conn, sql::Error> {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(conn) = pool.idle.pop() {
                if conn.postgres().is_some_and(PgConn::is_closed) {
                    pool.open -= 1;
                    continue;
                }
                return Ok(conn);
            }
            if pool.open < POOL_MAX {
                pool.open += 1;
                drop(pool);
                return PgConn::connect(&self.url).map_err(|e| {
                    self.pool.lock().unwrap_or_else(|p| p.into_inner()).open -= 1;
                    self.freed.notify_one();
                    sql::Error::from(e)
                });
            }
            pool = self.freed.wait(pool).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Gives a connection back (`None`: it was lost, to a panic or a broken link).
    fn give(&self, conn: Option<Conn>) {
        let mut pool = self.pool.lock().unwrap_or_else(|p| p.into_inner());
        match conn {
            Some(c) if !c.postgres().is_some_and(PgConn::is_closed) => pool.idle.push(c),
            _ => pool.open -= 1,
        }
        self.freed.notify_one();
    }

    /// Runs `f` with a connection on the calling thread (a blocking one).
    pub(crate) fn blocking<T, E: From<sql::Error>>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.take()?;
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn)));
        match out {
            Ok(out) => {
                self.give(Some(conn));
                out
            }
            Err(panic) => {
                self.give(None);
                std::panic::resume_unwind(panic)
            }
        }
    }

    /// Runs `task` on a change thread.
    pub(crate) fn on_change_thread(&self, task: Task) -> Result<(), DbError> {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send(task)
            .map_err(|_| DbError::Failed("the database threads have stopped".into()))
    }

    /// A change: `f` in a transaction holding the write lock, committed if it returns `Ok`;
    /// then, for a durable change, `after`, before the next durable change of this process.
    pub(crate) fn change<P, T, E>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut Conn) -> Result<P, E>,
        after: impl FnOnce(P) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<DbError>,
    {
        let _order = durable.then(|| self.durable.lock().unwrap_or_else(|p| p.into_inner()));
        let mut conn = self.take().map_err(|e| E::from(e.into()))?;
        let begun = conn.batch("BEGIN").and_then(|()| {
            conn.row(
                "SELECT pg_advisory_xact_lock(?1)",
                crate::args![WRITE_LOCK],
                |_| Ok(()),
            )
        });
        if let Err(e) = begun {
            self.give(Some(conn));
            return Err(E::from(e.into()));
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn)));
        let out = match ran {
            Ok(out) => out,
            Err(_) => {
                // The connection is dropped mid-transaction: PostgreSQL rolls it back.
                log::error!("database: a change panicked; it was rolled back");
                self.give(None);
                return Err(E::from(DbError::Failed("a change panicked".into())));
            }
        };
        // The faults the tests arm (`FLARE_FAULTS`) fail a durable commit as on SQLite.
        let injected = durable.then(super::injected_commit_failure).flatten();
        let done = match (out, injected) {
            (Ok(_), Some(failed)) => {
                let _ = conn.batch("ROLLBACK");
                Err(E::from(failed.into()))
            }
            (Ok(p), None) => {
                crate::metrics::timed(&crate::metrics::METRICS.db_commit_seconds, || {
                    conn.batch("COMMIT")
                })
                .map(|()| p)
                .map_err(|e| E::from(e.into()))
            }
            (Err(e), _) => {
                let _ = conn.batch("ROLLBACK");
                Err(e)
            }
        };
        self.give(Some(conn));
        done.and_then(after)
    }
}

/// The schema in PostgreSQL's words: the same list of migrations, its SQLite types renamed.
pub(crate) fn ddl(sqlite: &str) -> String {
    sqlite
        .replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        // SQLite orders publications by rowid; PostgreSQL has none, so they get a column.
        .replace(
            "CREATE TABLE publications (",
            "CREATE TABLE publications (\n    seq BIGINT GENERATED ALWAYS AS IDENTITY,",
        )
        .replace("INTEGER", "BIGINT")
        .replace("REAL", "DOUBLE PRECISION")
        .replace("BLOB", "BYTEA")
}

fn migrate(conn: &mut Conn) -> Result<(), sql::Error> {
    conn.transaction(|c| {
        c.row(
            "SELECT pg_advisory_xact_lock(?1)",
            crate::args![MIGRATE_LOCK],
            |_| Ok(()),
        )?;
        c.batch("CREATE TABLE IF NOT EXISTS flare_schema (version BIGINT NOT NULL)")?;
        let version: Option<i64> = c
            .rows("SELECT version FROM flare_schema", &[], |r| r.get(0))?
            .into_iter()
            .next();
        if version.is_none() {
            c.exec("INSERT INTO flare_schema (version) VALUES (0)", &[])?;
        }
        let version = version.unwrap_or(0) as usize;
        if version > MIGRATIONS.len() {
            return Err(sql::Error::Column(format!(
                "the database is at schema version {version}, newer than this flare knows ({}); \
                 use a newer flare",
                MIGRATIONS.len()
            )));
        }
        for step in &MIGRATIONS[version..] {
            c.batch(&ddl(step))?;
        }
        c.exec(
            "UPDATE flare_schema SET version = ?1",
            crate::args![MIGRATIONS.len()],
        )?;
        Ok(())
    })
}
