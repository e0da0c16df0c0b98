//! The connection context: a checked-out connection plus what this call is (read or write, the
//! node serving it, the tables it wrote, the statements it ran). The whole model and query API
//! lives here; [`Database`](crate::Database)'s methods are one-liners over it, and a
//! transaction body gets the same API.

use std::borrow::Borrow;

#[cfg(feature = "sqlite")]
use diesel::connection::DefaultLoadingMode;
use diesel::dsl::{Filter, Limit, Select};
use diesel::query_dsl::methods::{ExecuteDsl, LoadQuery};
use diesel::{Connection, RunQueryDsl};

use crate::bulk::{self, BulkOptions, BulkReport};
use crate::call::{CallInfo, Intent, Node, StatementCounter};
use crate::ddl;
use crate::error::{Error, Result};
use crate::meta::{Backend, TableMeta};
use crate::model::{Crud, Model, PatchValues, ReadModel};
use crate::projection::Projection;
use crate::schema::verify;
use crate::schema::ReadCatalog;
use crate::schema::SchemaDifference;
use crate::values::CheckValues;

#[cfg(feature = "postgres")]
use diesel::pg::{PgConnection, PgRowByRowLoadingMode};
#[cfg(feature = "sqlite")]
use diesel::sqlite::SqliteConnection;

/// The per-call state a [`Conn`] and its nested transactions share.
#[derive(Debug)]
pub(crate) struct CallState {
    intent: Intent,
    node: Node,
    backend: Backend,
    tables_written: Vec<&'static str>,
    unknown_writes: bool,
    statements_at_start: u64,
    /// Whether the call (or work run within it) was declared a write.
    declared_write: bool,
    /// Whether any write was recorded, even one later rolled back.
    recorded: bool,
}

impl CallState {
    #[inline]
    pub(crate) fn new(intent: Intent, node: Node, backend: Backend, statements: u64) -> Self {
        Self {
            intent,
            node,
            backend,
            tables_written: Vec::new(),
            unknown_writes: false,
            statements_at_start: statements,
            declared_write: intent == Intent::Write,
            recorded: false,
        }
    }

    /// Work declared with `intent` begins in this call: a write makes the call a write.
    #[inline]
    pub(crate) fn begin(&mut self, intent: Intent) {
        if intent == Intent::Write {
            self.intent = Intent::Write;
            self.declared_write = true;
        }
    }

    /// Record the tables the work declared it writes.
    #[inline]
    pub(crate) fn record(&mut self, tables: &[&'static str]) {
        for &table in tables {
            self.wrote(table);
        }
    }

    /// The call is over: if it was declared a write, sent statements (`statements_ran`) and
    /// recorded no write at all, it may have written anything, so it reports unknown tables.
    #[inline]
    pub(crate) fn finish(&mut self, statements_ran: bool) {
        if self.declared_write && statements_ran && !self.recorded {
            self.unknown_writes = true;
        }
    }

    fn wrote(&mut self, table: &'static str) {
        self.intent = Intent::Write;
        self.recorded = true;
        if !self.tables_written.contains(&table) {
            self.tables_written.push(table);
        }
    }

    pub(crate) fn wrote_unknown(&mut self) {
        self.intent = Intent::Write;
        self.recorded = true;
        self.unknown_writes = true;
    }

    /// What the call has written so far, to restore with [`CallState::roll_back_to`] when a
    /// transaction started now rolls back.
    fn writes_mark(&self) -> (usize, bool) {
        (self.tables_written.len(), self.unknown_writes)
    }

    /// Forget the writes made since `mark`: they were rolled back. Tables are recorded once,
    /// at their first write, so a table also written before `mark` stays.
    fn roll_back_to(&mut self, (tables, unknown): (usize, bool)) {
        self.tables_written.truncate(tables);
        self.unknown_writes = unknown;
    }

    /// The writes of the call, for the database's write listeners.
    #[inline]
    pub(crate) fn written(&self) -> crate::listen::Written<'_> {
        crate::listen::Written {
            tables: &self.tables_written,
            unknown: self.unknown_writes,
        }
    }

    pub(crate) fn info(&self, counter: &StatementCounter) -> CallInfo {
        CallInfo {
            intent: self.intent,
            node: self.node,
            backend: self.backend,
            statements: counter.get() - self.statements_at_start,
            tables_written: self.tables_written.clone(),
            unknown_writes: self.unknown_writes,
        }
    }
}

/// The backend's own connection, for Diesel code that `orm` does not wrap. Match on the
/// backend: the variants present are those of the enabled cargo features.
#[non_exhaustive]
pub enum RawConnection<'c> {
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Postgres(&'c mut PgConnection),
    /// A SQLite connection.
    #[cfg(feature = "sqlite")]
    Sqlite(&'c mut SqliteConnection),
}

/// A Diesel connection type `orm` runs on: `PgConnection` or `SqliteConnection`.
pub trait BackendConnection: Connection + Send + Sized + 'static {
    /// The backend this connection talks to.
    const BACKEND: Backend;
    /// The loading mode `load_iter` streams with: single-row mode on PostgreSQL, SQLite's
    /// cursor.
    type StreamMode;
    /// This backend's connection inside `raw`, if `raw` is of this backend.
    #[doc(hidden)]
    fn from_raw<'r>(raw: &'r mut RawConnection<'_>) -> Option<&'r mut Self>;
}

#[cfg(feature = "postgres")]
impl BackendConnection for PgConnection {
    const BACKEND: Backend = Backend::Postgres;
    type StreamMode = PgRowByRowLoadingMode;
    #[allow(unreachable_patterns)]
    fn from_raw<'r>(raw: &'r mut RawConnection<'_>) -> Option<&'r mut Self> {
        match raw {
            RawConnection::Postgres(c) => Some(&mut **c),
            _ => None,
        }
    }
}

#[cfg(feature = "sqlite")]
impl BackendConnection for SqliteConnection {
    const BACKEND: Backend = Backend::Sqlite;
    type StreamMode = DefaultLoadingMode;
    #[allow(unreachable_patterns)]
    fn from_raw<'r>(raw: &'r mut RawConnection<'_>) -> Option<&'r mut Self> {
        match raw {
            RawConnection::Sqlite(c) => Some(&mut **c),
            _ => None,
        }
    }
}

/// Declares a bound that must hold on one backend when its feature is on: `$name` requires
/// `$bound` with the feature, and nothing without it.
macro_rules! backend_bound {
    ($feature:literal, $name:ident[$($p:tt),*]: $($bound:tt)+) => {
        #[doc = concat!("`", stringify!($($bound)+), "` when the `", $feature,
            "` feature is on; no bound without it. Implemented for every type that meets it.")]
        #[cfg(feature = $feature)]
        pub trait $name<$($p),*>: $($bound)+ {}
        #[cfg(feature = $feature)]
        impl<$($p,)* T: $($bound)+> $name<$($p),*> for T {}
        #[doc = concat!("`", stringify!($($bound)+), "` when the `", $feature,
            "` feature is on; no bound without it (as in this build).")]
        #[cfg(not(feature = $feature))]
        pub trait $name<$($p),*> {}
        #[cfg(not(feature = $feature))]
        impl<$($p,)* T> $name<$($p),*> for T {}
    };
}

backend_bound!("postgres", PostgresLoad['q, U]: LoadQuery<'q, PgConnection, U>);
backend_bound!("sqlite", SqliteLoad['q, U]: LoadQuery<'q, SqliteConnection, U>);
backend_bound!("postgres", PostgresStream['q, U]:
    LoadQuery<'q, PgConnection, U, PgRowByRowLoadingMode> + RunQueryDsl<PgConnection>);
backend_bound!("sqlite", SqliteStream['q, U]:
    LoadQuery<'q, SqliteConnection, U, DefaultLoadingMode> + RunQueryDsl<SqliteConnection>);
backend_bound!("postgres", PostgresExecute[]: ExecuteDsl<PgConnection> + RunQueryDsl<PgConnection>);
backend_bound!("sqlite", SqliteExecute[]: ExecuteDsl<SqliteConnection> + RunQueryDsl<SqliteConnection>);

backend_bound!("postgres", PostgresSql[]: diesel::query_builder::QueryFragment<diesel::pg::Pg>);
backend_bound!("sqlite", SqliteSql[]: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>);

/// A Diesel query whose SQL can be written for every backend this build supports.
/// Implemented for every such query.
pub trait SqlOnEveryBackend: PostgresSql + SqliteSql {}
impl<T: PostgresSql + SqliteSql> SqlOnEveryBackend for T {}

/// The SQL text of `query` as `backend` runs it, followed by its bound values
/// (`SELECT … WHERE "id" = $1 -- binds: [7]`): what a query cache keys a result by. The same
/// query and values give the same text in every process; floats print exactly (Rust's `Debug`
/// of a float round-trips). [`Error::WrongBackend`] for a backend not compiled in.
pub fn query_text<Q: SqlOnEveryBackend>(query: &Q, backend: Backend) -> Result<String> {
    use std::fmt::Write;
    let mut text = String::new();
    let written = match backend {
        #[cfg(feature = "postgres")]
        Backend::Postgres => write!(text, "{}", diesel::debug_query::<diesel::pg::Pg, _>(query)),
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => write!(
            text,
            "{}",
            diesel::debug_query::<diesel::sqlite::Sqlite, _>(query)
        ),
        #[allow(unreachable_patterns)]
        other => {
            return Err(Error::WrongBackend {
                what: "a query's SQL text".to_owned(),
                needed: other,
                actual: other,
            })
        }
    };
    // Diesel reports a query it cannot write as a formatting error.
    written.map_err(|_| Error::Uncacheable {
        reason: "Diesel could not write the query's SQL".to_owned(),
    })?;
    Ok(text)
}

/// A Diesel query that loads rows of `U` on every backend this build supports. For a query
/// only one backend can run (`ilike`, `DISTINCT ON`, jsonb operators), use the backend's
/// handle: `db.postgres()?.load(query)`. Implemented for every such query; it is the bound of
/// [`Executor::load`](crate::Executor::load).
pub trait LoadOnEveryBackend<'q, U>: PostgresLoad<'q, U> + SqliteLoad<'q, U> {}
impl<'q, U, T: PostgresLoad<'q, U> + SqliteLoad<'q, U>> LoadOnEveryBackend<'q, U> for T {}

/// A Diesel query that streams rows of `U` on every backend this build supports. Implemented
/// for every such query.
pub trait StreamOnEveryBackend<'q, U>: PostgresStream<'q, U> + SqliteStream<'q, U> {}
impl<'q, U, T: PostgresStream<'q, U> + SqliteStream<'q, U>> StreamOnEveryBackend<'q, U> for T {}

/// A Diesel statement that runs on every backend this build supports. Implemented for every
/// such statement.
pub trait ExecuteOnEveryBackend: PostgresExecute + SqliteExecute {}
impl<T: PostgresExecute + SqliteExecute> ExecuteOnEveryBackend for T {}

/// The query `find_as` runs: `SELECT P's columns FROM table WHERE key = $1 LIMIT 1`.
pub type FindAsQuery<P> = Limit<
    Select<
        Filter<
            <<P as Projection>::Model as ReadModel>::Table,
            <<P as Projection>::Model as Model>::KeyFilter,
        >,
        <P as Projection>::Columns,
    >,
>;

/// The query `load_all` runs: `SELECT P's columns FROM table`.
pub type LoadAllQuery<P> =
    Select<<<P as Projection>::Model as ReadModel>::Table, <P as Projection>::Columns>;

/// A checked-out connection and what this call is. `&mut Conn` is an
/// [`Executor`](crate::Executor): the whole model and query API, on whichever backend the
/// database is, runs on this connection (and inside its transaction, if one is open).
///
/// Given by [`Executor::transaction`](crate::Executor::transaction) and
/// [`Executor::with_connection`](crate::Executor::with_connection); every operation of a
/// `Database` runs on one. The connection stays checked out while the `Conn` lives.
///
/// ```
/// # use orm_core::{Database, Executor, Result};
/// # fn main() -> Result<()> {
/// let db = Database::connect("sqlite::memory:")?;
/// let statements = db.with_connection(|conn| {
///     conn.batch_execute("CREATE TABLE t (x INTEGER)")?;
///     Ok(conn.info().statements)
/// })?;
/// assert_eq!(statements, 1);
/// # Ok(()) }
/// ```
pub struct Conn<'c> {
    pub(crate) raw: RawConnection<'c>,
    pub(crate) call: &'c mut CallState,
    pub(crate) counter: &'c StatementCounter,
}

/// A checked-out connection of one backend, `C`: queries only that backend can run, with the
/// same per-call bookkeeping as [`Conn`]. From [`Conn::postgres`], [`Conn::sqlite`] or a
/// database's backend handle ([`Database::postgres`](crate::Database::postgres)).
pub struct BackendConn<'c, C> {
    pub(crate) conn: &'c mut C,
    pub(crate) call: &'c mut CallState,
    pub(crate) counter: &'c StatementCounter,
}

/// A PostgreSQL connection with its call context.
#[cfg(feature = "postgres")]
pub type PostgresConn<'c> = BackendConn<'c, PgConnection>;
/// A SQLite connection with its call context.
#[cfg(feature = "sqlite")]
pub type SqliteConn<'c> = BackendConn<'c, SqliteConnection>;

impl<'c> Conn<'c> {
    #[inline]
    pub(crate) fn new(
        raw: RawConnection<'c>,
        call: &'c mut CallState,
        counter: &'c StatementCounter,
    ) -> Self {
        Self { raw, call, counter }
    }

    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        self.call.backend
    }

    /// What this call is and has done so far: intent, node, statements, tables written.
    pub fn info(&self) -> CallInfo {
        self.call.info(self.counter)
    }

    /// Whether the call has written (or may have): its intent after what it did so far.
    #[cfg(feature = "postgres")]
    #[inline]
    pub(crate) fn intent(&self) -> Intent {
        self.call.intent
    }

    /// The PostgreSQL connection underneath, for the runtime's own bookkeeping queries, which
    /// are not the caller's writes.
    #[cfg(feature = "postgres")]
    #[allow(unreachable_patterns)]
    pub(crate) fn postgres_for_runtime(&mut self) -> Option<&mut PgConnection> {
        match &mut self.raw {
            RawConnection::Postgres(c) => Some(c),
            _ => None,
        }
    }

    /// Statements run on this connection during this call.
    pub fn statements(&self) -> u64 {
        self.counter.get() - self.call.statements_at_start
    }

    /// The backend's own connection, for Diesel code: match on [`RawConnection`]. The call is
    /// counted as a write of tables `orm` cannot name.
    pub fn raw(&mut self) -> RawConnection<'_> {
        self.call.wrote_unknown();
        match &mut self.raw {
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => RawConnection::Postgres(c),
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => RawConnection::Sqlite(c),
        }
    }

    /// The backend's connection for the runtime's own statements, which record what they
    /// declare what they write to the executor: not counted as a write of unknown tables.
    pub(crate) fn raw_for_runtime(&mut self) -> RawConnection<'_> {
        match &mut self.raw {
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => RawConnection::Postgres(c),
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => RawConnection::Sqlite(c),
        }
    }

    /// This connection as backend `C`'s, or [`Error::WrongBackend`].
    pub fn on<C: BackendConnection>(&mut self) -> Result<BackendConn<'_, C>> {
        let actual = self.call.backend;
        match C::from_raw(&mut self.raw) {
            Some(conn) => Ok(BackendConn::new(conn, self.call, self.counter)),
            None => Err(Error::WrongBackend {
                what: format!("a {} connection", C::BACKEND),
                needed: C::BACKEND,
                actual,
            }),
        }
    }

    /// This connection as a PostgreSQL one, for queries only PostgreSQL runs; an error on
    /// SQLite.
    #[cfg(feature = "postgres")]
    pub fn postgres(&mut self) -> Result<PostgresConn<'_>> {
        self.on::<PgConnection>()
    }

    /// This connection as a SQLite one, for queries only SQLite runs; an error on PostgreSQL.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&mut self) -> Result<SqliteConn<'_>> {
        self.on::<SqliteConnection>()
    }

    /// Run `work` in a transaction (a savepoint when one is open already): committed when it
    /// returns `Ok`, rolled back on `Err`.
    pub(crate) fn in_transaction<R>(
        &mut self,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        self.call.intent = Intent::Write;
        let mark = self.call.writes_mark();
        let mut body_failed = false;
        let (call, counter) = (&mut *self.call, self.counter);
        let body = |raw: RawConnection<'_>| {
            let result = work(&mut Conn::new(raw, call, counter));
            body_failed = result.is_err();
            result
        };
        let result = match &mut self.raw {
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => c.transaction(|c| body(RawConnection::Postgres(c))),
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => c.transaction(|c| body(RawConnection::Sqlite(c))),
        };
        // A body that failed was rolled back: its writes never happened. A failed COMMIT
        // may still have committed (the connection can drop after the server did), so
        // those writes are kept.
        if body_failed {
            self.call.roll_back_to(mark);
        }
        result
    }

    /// [`Error::WrongBackend`] unless model `M` can be used on this connection's backend.
    #[inline]
    pub(crate) fn check_model<M: ReadModel>(&self) -> Result<()> {
        let backend = self.call.backend;
        if M::TABLE.supports(backend) {
            return Ok(());
        }
        Err(Error::WrongBackend {
            what: format!("model `{}`", M::TABLE.model),
            needed: M::TABLE.backends.first().copied().unwrap_or(backend),
            actual: backend,
        })
    }
}

impl<'c, C: BackendConnection> BackendConn<'c, C> {
    #[inline]
    pub(crate) fn new(
        conn: &'c mut C,
        call: &'c mut CallState,
        counter: &'c StatementCounter,
    ) -> Self {
        Self {
            conn,
            call,
            counter,
        }
    }

    /// What this call is and has done so far.
    pub fn info(&self) -> CallInfo {
        self.call.info(self.counter)
    }

    /// The backend's own connection, for Diesel code. The call is counted as a write of
    /// tables `orm` cannot name.
    pub fn raw(&mut self) -> &mut C {
        self.call.wrote_unknown();
        self.conn
    }

    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<()> {
        self.call.wrote_unknown();
        Ok(self.conn.batch_execute(sql)?)
    }

    pub(crate) fn insert<M: Model + Crud<C>>(&mut self, row: &M::New) -> Result<M> {
        row.check_values(C::BACKEND)
            .map_err(|r| Error::rejected(M::TABLE, C::BACKEND, r))?;
        M::insert_returning(self.conn, row).map_err(|e| Error::from_model(M::TABLE, e))
    }

    #[inline]
    pub(crate) fn find<M: Model + Crud<C>>(&mut self, key: &M::PrimaryKey) -> Result<M> {
        M::find_by_key(self.conn, key).map_err(|e| Error::from_model(M::TABLE, e))
    }

    pub(crate) fn update<M: Model + Crud<C>>(&mut self, row: &M) -> Result<M> {
        row.check_values(C::BACKEND)
            .map_err(|r| Error::rejected(M::TABLE, C::BACKEND, r))?;
        match M::update_returning(self.conn, row) {
            Some(updated) => updated.map_err(|e| Error::from_model(M::TABLE, e)),
            None => Err(Error::Model {
                model: M::TABLE.model,
                message: "has no column besides its primary key, so there is nothing to update"
                    .to_owned(),
            }),
        }
    }

    pub(crate) fn patch<M: Model + Crud<C>>(
        &mut self,
        key: &M::PrimaryKey,
        patch: &M::Patch,
    ) -> Result<M> {
        if patch.is_empty() {
            return self.find::<M>(key);
        }
        patch
            .check_values(C::BACKEND)
            .map_err(|r| Error::rejected(M::TABLE, C::BACKEND, r))?;
        M::patch_returning(self.conn, key, patch).map_err(|e| Error::from_model(M::TABLE, e))
    }

    pub(crate) fn verify_tables(
        &mut self,
        tables: &[&'static TableMeta],
    ) -> Result<Vec<SchemaDifference>>
    where
        C: ReadCatalog,
    {
        let mut differences = Vec::new();
        for &table in tables {
            let live = self.conn.live_table(table.name)?;
            differences.extend(verify::compare(table, live.as_ref(), C::CATALOG));
        }
        Ok(differences)
    }

    pub(crate) fn create_table(&mut self, table: &'static TableMeta) -> Result<()>
    where
        C: ReadCatalog,
    {
        match self.conn.live_table(table.name)? {
            None => {
                if let Some(column) = table.columns.iter().find(|c| !c.ddl_known) {
                    return Err(Error::DdlUnknown {
                        table: table.name,
                        column: column.name,
                    });
                }
                // Two calls may both find no table: `IF NOT EXISTS` lets the second one pass.
                self.batch_execute(&ddl::create_table_sql(table, C::BACKEND))
            }
            Some(live) => {
                let differences = verify::compare_for_create(table, &live, C::CATALOG);
                if differences.is_empty() {
                    return Ok(());
                }
                Err(Error::SchemaMismatch {
                    model: table.model,
                    table: table.name,
                    differences,
                })
            }
        }
    }

    pub(crate) fn delete<M: Model + Crud<C>>(&mut self, key: &M::PrimaryKey) -> Result<()> {
        match M::delete_by_key(self.conn, key).map_err(|e| Error::from_model(M::TABLE, e))? {
            0 => Err(Error::NotFound {
                table: M::TABLE.name,
            }),
            _ => Ok(()),
        }
    }

    pub(crate) fn bulk_insert<M, I>(
        &mut self,
        rows: I,
        options: BulkOptions<'_>,
    ) -> Result<BulkReport<M::PrimaryKey>>
    where
        M: Model + Crud<C>,
        I: IntoIterator,
        I::Item: Borrow<M::New>,
    {
        bulk::run::<M, C, I>(self.conn, rows, options, C::BACKEND)
    }
}
