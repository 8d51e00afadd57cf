//! One way to run flare's SQL on either database: SQLite (rusqlite, the default) or PostgreSQL
//! (the `postgres` feature). The queries are written once, in the SQL both accept, with `?N`
//! placeholders (made `$N` for PostgreSQL); values cross as `Value`s and come back through
//! `Row::get`, so no query module, handler or domain function knows which database it is on.

use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong running a statement.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    #[cfg(feature = "postgres")]
    Postgres(postgres::Error),
    /// A statement that must return a row returned none.
    NoRow,
    /// A column held something its reader cannot take.
    Column(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Sqlite(e) => e.fmt(f),
            #[cfg(feature = "postgres")]
            Error::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}: {}", db.code().code(), db.message()),
                None => e.fmt(f),
            },
            Error::NoRow => f.write_str("the query returned no row"),
            Error::Column(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        match e {
            rusqlite::Error::QueryReturnedNoRows => Error::NoRow,
            e => Error::Sqlite(e),
        }
    }
}

#[cfg(feature = "postgres")]
impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::Postgres(e)
    }
}

impl Error {
    /// SQLite's code for this error, if it came from SQLite.
    pub(crate) fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            Error::Sqlite(e) => e.sqlite_error_code(),
            _ => None,
        }
    }
}

/// `Result<T>` of a single-row query, made `Option<T>` (no row: `None`).
pub trait Optional<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> Optional<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRow) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A value as both databases take it (a statement's parameter) and give it (a column).
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// Anything passed to a statement (`args![…]`).
pub trait Arg {
    fn value(&self) -> Value<'_>;
}

impl<T: Arg + ?Sized> Arg for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Arg> Arg for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u16, usize);

impl Arg for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(i64::from(*self))
    }
}

impl Arg for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Arg for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Arg for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Arg for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Arg for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

/// A statement's parameters: `args![a, b]` is a `&[Value]`, borrowing `a` and `b` for the
/// statement that uses it.
#[macro_export]
macro_rules! args {
    ($($x:expr),* $(,)?) => {
        &[$($crate::db::sql::Arg::value(&$x)),*] as &[$crate::db::sql::Value<'_>]
    };
}
pub use args;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

/// What a column can be read as (`Row::get`).
pub trait Column: Sized {
    fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String>;
}

impl<T: Column> Column for Option<T> {
    fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String> {
        match cell {
            Value::Null => Ok(None),
            other => T::from_cell(other).map(Some),
        }
    }
}

fn expected(what: &str, cell: Value<'_>) -> String {
    format!("expected {what}, found {cell:?}")
}

impl Column for i64 {
    fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String> {
        match cell {
            Value::Int(i) => Ok(i),
            other => Err(expected("an integer", other)),
        }
    }
}

macro_rules! int_column {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String> {
                let i = i64::from_cell(cell)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range"))
            }
        }
    )*};
}
int_column!(u64, u32, usize);

impl Column for bool {
    fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String> {
        i64::from_cell(cell).map(|i| i != 0)
    }
}

impl Column for f64 {
    fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String> {
        match cell {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(expected("a number", other)),
        }
    }
}

impl Column for String {
    fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String> {
        match cell {
            Value::Text(s) => Ok(s.to_owned()),
            other => Err(expected("text", other)),
        }
    }
}

impl Column for Vec<u8> {
    fn from_cell(cell: Value<'_>) -> std::result::Result<Self, String> {
        match cell {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(expected("bytes", other)),
        }
    }
}

/// A result row.
pub struct Row<'a> {
    inner: RowInner<'a>,
}

enum RowInner<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    #[cfg(feature = "postgres")]
    Postgres(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0) as a `T`.
    pub fn get<T: Column>(&self, i: usize) -> Result<T> {
        let read = match &self.inner {
            RowInner::Sqlite(r) => {
                use rusqlite::types::ValueRef;
                let cell = match r.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(
                        std::str::from_utf8(t).map_err(|e| Error::Column(e.to_string()))?,
                    ),
                    ValueRef::Blob(b) => Value::Blob(b),
                };
                T::from_cell(cell)
            }
            #[cfg(feature = "postgres")]
            RowInner::Postgres(r) => T::from_cell(pg::cell(r, i)?),
        };
        read.map_err(|m| Error::Column(format!("column {i}: {m}")))
    }
}

/// A connection to either database.
pub struct Conn {
    inner: ConnInner,
}

enum ConnInner {
    Sqlite(rusqlite::Connection),
    #[cfg(feature = "postgres")]
    Postgres(Box<pg::PgConn>),
}

impl From<rusqlite::Connection> for Conn {
    fn from(c: rusqlite::Connection) -> Conn {
        Conn {
            inner: ConnInner::Sqlite(c),
        }
    }
}

impl Conn {
    /// The SQLite connection, when this is one: for what only SQLite has (pragmas, backups).
    pub(crate) fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match &self.inner {
            ConnInner::Sqlite(c) => Some(c),
            #[cfg(feature = "postgres")]
            ConnInner::Postgres(_) => None,
        }
    }

    /// Whether this is a PostgreSQL connection.
    pub fn is_postgres(&self) -> bool {
        self.sqlite().is_none()
    }

    /// Runs a statement; how many rows it changed. Statements are prepared once per
    /// connection and kept.
    pub fn exec(&self, sql: &str, args: &[Value<'_>]) -> Result<usize> {
        match &self.inner {
            ConnInner::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args))?),
            #[cfg(feature = "postgres")]
            ConnInner::Postgres(c) => c.exec(sql, args),
        }
    }

    /// The first row of a query, read by `f`; `Error::NoRow` when there is none.
    pub fn row<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        match &self.inner {
            ConnInner::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(args))?;
                match rows.next()? {
                    Some(r) => f(&Row {
                        inner: RowInner::Sqlite(r),
                    }),
                    None => Err(Error::NoRow),
                }
            }
            #[cfg(feature = "postgres")]
            ConnInner::Postgres(c) => match c.query(sql, args)?.first() {
                Some(r) => f(&Row {
                    inner: RowInner::Postgres(r),
                }),
                None => Err(Error::NoRow),
            },
        }
    }

    /// Every row of a query, each read by `f`.
    pub fn rows<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match &self.inner {
            ConnInner::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row {
                        inner: RowInner::Sqlite(r),
                    })?);
                }
                Ok(out)
            }
            #[cfg(feature = "postgres")]
            ConnInner::Postgres(c) => c
                .query(sql, args)?
                .iter()
                .map(|r| {
                    f(&Row {
                        inner: RowInner::Postgres(r),
                    })
                })
                .collect(),
        }
    }

    /// Runs `f` in a transaction of its own (SQLite's takes the write lock first): committed
    /// when it returns `Ok`, rolled back otherwise.
    pub fn transaction<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&Conn) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.batch(if self.is_postgres() {
            "BEGIN"
        } else {
            "BEGIN IMMEDIATE"
        })?;
        match f(self) {
            Ok(v) => {
                if let Err(e) = self.batch("COMMIT") {
                    let _ = self.batch("ROLLBACK");
                    return Err(e.into());
                }
                Ok(v)
            }
            Err(e) => {
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs statements separated by `;`, with no parameters.
    pub fn batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            ConnInner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            #[cfg(feature = "postgres")]
            ConnInner::Postgres(c) => c.batch(sql),
        }
    }
}

#[cfg(feature = "postgres")]
pub(crate) use pg::PgConn;

#[cfg(feature = "postgres")]
mod pg {
    use super::{Conn, ConnInner, Error, Result, Value};
    use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// A PostgreSQL client and the statements it has prepared, by their SQL as written.
    pub(crate) struct PgConn {
        /// `None` only once dropped (see `Drop`).
        client: RefCell<Option<postgres::Client>>,
        prepared: RefCell<HashMap<String, postgres::Statement>>,
    }

    /// The sync client closes its connection by blocking on a runtime of its own, which tokio
    /// forbids on a thread driving a runtime (a server shutting down drops its pool there): such
    /// a client is closed on a thread of its own.
    impl Drop for PgConn {
        fn drop(&mut self) {
            if let Some(client) = self.client.get_mut().take() {
                if tokio::runtime::Handle::try_current().is_ok() {
                    let _ = std::thread::Builder::new()
                        .name("flare-pg-close".into())
                        .spawn(move || drop(client));
                } else {
                    drop(client);
                }
            }
        }
    }

    impl PgConn {
        pub(crate) fn connect(url: &str) -> std::result::Result<Conn, postgres::Error> {
            let client = postgres::Client::connect(url, postgres::NoTls)?;
            Ok(Conn {
                inner: ConnInner::Postgres(Box::new(PgConn {
                    client: RefCell::new(Some(client)),
                    prepared: RefCell::new(HashMap::new()),
                })),
            })
        }

        fn client(&self) -> std::cell::RefMut<'_, postgres::Client> {
            std::cell::RefMut::map(self.client.borrow_mut(), |c| {
                c.as_mut()
                    .expect("a PostgreSQL client is used only until dropped")
            })
        }

        fn statement(&self, sql: &str) -> Result<postgres::Statement> {
            if let Some(st) = self.prepared.borrow().get(sql) {
                return Ok(st.clone());
            }
            let st = self.client().prepare(&dollar_params(sql))?;
            self.prepared
                .borrow_mut()
                .insert(sql.to_owned(), st.clone());
            Ok(st)
        }

        pub(super) fn exec(&self, sql: &str, args: &[Value<'_>]) -> Result<usize> {
            let st = self.statement(sql)?;
            let params: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
            Ok(self.client().execute(&st, &params)? as usize)
        }

        pub(super) fn query(&self, sql: &str, args: &[Value<'_>]) -> Result<Vec<postgres::Row>> {
            let st = self.statement(sql)?;
            let params: Vec<&(dyn ToSql + Sync)> =
                args.iter().map(|a| a as &(dyn ToSql + Sync)).collect();
            Ok(self.client().query(&st, &params)?)
        }

        pub(super) fn batch(&self, sql: &str) -> Result<()> {
            Ok(self.client().batch_execute(sql)?)
        }

        pub(crate) fn is_closed(&self) -> bool {
            self.client.borrow().as_ref().is_none_or(|c| c.is_closed())
        }
    }

    impl Conn {
        pub(crate) fn postgres(&self) -> Option<&PgConn> {
            match &self.inner {
                ConnInner::Postgres(c) => Some(c),
                ConnInner::Sqlite(_) => None,
            }
        }
    }

    /// `?1` → `$1`, outside quoted strings.
    pub(super) fn dollar_params(sql: &str) -> String {
        let mut out = String::with_capacity(sql.len());
        let mut quoted = false;
        for ch in sql.chars() {
            match ch {
                '\'' => {
                    quoted = !quoted;
                    out.push(ch);
                }
                '?' if !quoted => out.push('$'),
                _ => out.push(ch),
            }
        }
        out
    }

    /// Column `i` of a PostgreSQL row, by its type.
    pub(super) fn cell(r: &postgres::Row, i: usize) -> Result<Value<'_>> {
        let ty = r
            .columns()
            .get(i)
            .ok_or_else(|| Error::Column(format!("no column {i}")))?
            .type_()
            .clone();
        let cell = match ty {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r
                .try_get::<_, Option<i32>>(i)?
                .map(|n| Value::Int(n.into())),
            Type::INT2 => r
                .try_get::<_, Option<i16>>(i)?
                .map(|n| Value::Int(n.into())),
            Type::BOOL => r
                .try_get::<_, Option<bool>>(i)?
                .map(|b| Value::Int(b.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => r
                .try_get::<_, Option<f32>>(i)?
                .map(|f| Value::Real(f.into())),
            Type::BYTEA => r.try_get::<_, Option<&[u8]>>(i)?.map(Value::Blob),
            _ => r.try_get::<_, Option<&str>>(i)?.map(Value::Text),
        };
        Ok(cell.unwrap_or(Value::Null))
    }

    impl ToSql for Value<'_> {
        fn to_sql(
            &self,
            ty: &Type,
            out: &mut bytes::BytesMut,
        ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
            match *self {
                Value::Null => Ok(IsNull::Yes),
                Value::Int(i) => match *ty {
                    Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                    Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                    Type::BOOL => (i != 0).to_sql(ty, out),
                    Type::FLOAT8 => (i as f64).to_sql(ty, out),
                    Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                    _ => i.to_sql(ty, out),
                },
                Value::Real(f) => match *ty {
                    Type::FLOAT4 => (f as f32).to_sql(ty, out),
                    _ => f.to_sql(ty, out),
                },
                Value::Text(s) => s.to_sql(ty, out),
                Value::Blob(b) => b.to_sql(ty, out),
            }
        }

        fn accepts(_: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn placeholders_become_dollars_outside_strings() {
            assert_eq!(
                super::dollar_params("SELECT '?1' || ?1 WHERE a = ?12"),
                "SELECT '?1' || $1 WHERE a = $12"
            );
        }
    }
}
