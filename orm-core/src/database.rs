//! `Database`: one handle over a pooled PostgreSQL or SQLite database. Every method checks out
//! a connection context at one choke point, [`Database::run`], which knows whether the call
//! reads or writes; the work itself is a method of [`Conn`].

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use diesel::dsl::{Filter, Limit, Select};
use diesel::query_dsl::methods::{ExecuteDsl, FilterDsl, LimitDsl, LoadQuery, SelectDsl};
use diesel::r2d2::{Pool, PooledConnection, R2D2Connection};
use diesel::{Connection, RunQueryDsl};

use crate::bulk::{BulkOptions, BulkReport};
use crate::conn::{
    BackendConn, BackendConnection, CallState, Conn, ExecuteOnEveryBackend, FindAsQuery, Intent,
    LoadAllQuery, LoadOnEveryBackend, Node, RawConnection, StreamOnEveryBackend,
};
use crate::ddl;
use crate::error::{Error, Result};
use crate::meta::{Backend, RedactedUrl};
use crate::model::Model;
use crate::pool::{Manager, PooledConn};
use crate::projection::Projection;
use crate::url::{DatabaseUrl, Target};

#[cfg(feature = "postgres")]
use diesel::pg::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::sqlite::SqliteConnection;

enum Pools {
    #[cfg(feature = "postgres")]
    Postgres(Pool<Manager<PgConnection>>),
    #[cfg(feature = "sqlite")]
    Sqlite(Pool<Manager<SqliteConnection>>),
}

struct Inner {
    url: DatabaseUrl,
    pools: Pools,
}

/// A handle to one database: cheap to clone, safe to share between threads.
///
/// Built from a URL: `postgres://user@host:5432/db`, `sqlite::memory:` (a private in-memory
/// database, one connection), or a SQLite file path (`sqlite://app.db`, `app.db`).
///
/// ```
/// # fn main() -> orm_core::Result<()> {
/// let db = orm_core::Database::connect("sqlite::memory:")?;
/// assert_eq!(db.backend(), orm_core::Backend::Sqlite);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("url", &self.inner.url.redacted)
            .field("backend", &self.backend())
            .finish()
    }
}

/// Runs on every new SQLite connection: wait for locks instead of failing at once, enforce
/// foreign keys, and for files write-ahead logging (readers don't block the writer).
#[cfg(feature = "sqlite")]
fn sqlite_setup(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;")
}

#[cfg(feature = "sqlite")]
fn sqlite_file_setup(conn: &mut SqliteConnection) -> diesel::QueryResult<()> {
    use diesel::connection::SimpleConnection;
    sqlite_setup(conn)?;
    conn.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
}

/// Reports the errors of the pool's background connection attempts through `tracing`, with the
/// URL redacted and any password scrubbed from the driver's message (r2d2's default handler
/// writes them to the `log` crate as the driver gave them).
#[derive(Debug)]
struct LogScrubbed(DatabaseUrl);

impl r2d2::HandleError<diesel::r2d2::Error> for LogScrubbed {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        tracing::warn!(
            url = %self.0.redacted,
            error = %self.0.scrub(&error.to_string()),
            "connection attempt failed"
        );
    }
}

/// Runs `work` on `conn`. If it panics, rolls back any transaction it left open and returns the
/// panic, so the connection goes back to the pool usable instead of being discarded (for an
/// in-memory SQLite database, discarding the connection would discard the database).
fn guard_panics<C: Connection, R>(
    conn: &mut C,
    work: impl FnOnce(&mut C) -> R,
) -> std::result::Result<R, Box<dyn std::any::Any + Send>> {
    use diesel::connection::TransactionManager;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut *conn))).inspect_err(|_| {
        while let Ok(Some(_)) =
            C::TransactionManager::transaction_manager_status_mut(conn).transaction_depth()
        {
            if C::TransactionManager::rollback_transaction(conn).is_err() {
                break; // the connection reports itself broken, and the pool discards it
            }
        }
    })
}

impl Database {
    /// Open the database at `url`. For PostgreSQL one connection is made at once, so a wrong
    /// URL, host or password fails here with an error that names the URL (password redacted).
    pub fn connect(url: &str) -> Result<Self> {
        let url = DatabaseUrl::parse(url)?;
        let pools = match &url.target {
            Target::Postgres { url: raw } => Self::postgres_pool(&url, raw)?,
            Target::SqliteMemory => Self::sqlite_pool(&url, ":memory:", false)?,
            Target::SqliteFile { path } => Self::sqlite_pool(&url, path, true)?,
        };
        tracing::debug!(url = %url.redacted, "database opened");
        Ok(Self {
            inner: Arc::new(Inner { url, pools }),
        })
    }

    #[cfg(feature = "postgres")]
    fn postgres_pool(url: &DatabaseUrl, raw: &str) -> Result<Pools> {
        PgConnection::establish(raw).map_err(|e| Error::Connect {
            url: url.redacted.clone(),
            message: url.scrub(e.to_string().trim()),
        })?;
        let pool = Pool::builder()
            .max_size(10)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(5))
            .test_on_check_out(false)
            .error_handler(Box::new(LogScrubbed(url.clone())))
            .build_unchecked(Manager::new(raw, |_| Ok(())));
        Ok(Pools::Postgres(pool))
    }

    #[cfg(not(feature = "postgres"))]
    fn postgres_pool(url: &DatabaseUrl, _raw: &str) -> Result<Pools> {
        Err(Self::not_compiled_in(url, Backend::Postgres))
    }

    #[cfg(feature = "sqlite")]
    fn sqlite_pool(url: &DatabaseUrl, path: &str, file: bool) -> Result<Pools> {
        // Open one connection first, so a bad path fails at once with SQLite's own message.
        SqliteConnection::establish(path).map_err(|e| Error::Connect {
            url: url.redacted.clone(),
            message: url.scrub(e.to_string().trim()),
        })?;
        // An in-memory database lives and dies with its one connection: keep exactly one, forever.
        let (size, lifetime, setup): (u32, _, fn(&mut SqliteConnection) -> _) = if file {
            (4, Some(Duration::from_secs(1800)), sqlite_file_setup)
        } else {
            (1, None, sqlite_setup)
        };
        Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .idle_timeout(None)
            .max_lifetime(lifetime)
            .connection_timeout(Duration::from_secs(30))
            .test_on_check_out(false)
            .error_handler(Box::new(LogScrubbed(url.clone())))
            .build(Manager::new(path, setup))
            .map(Pools::Sqlite)
            .map_err(|e| Error::Connect {
                url: url.redacted.clone(),
                message: url.scrub(&e.to_string()),
            })
    }

    #[cfg(not(feature = "sqlite"))]
    fn sqlite_pool(url: &DatabaseUrl, _path: &str, _file: bool) -> Result<Pools> {
        Err(Self::not_compiled_in(url, Backend::Sqlite))
    }

    #[allow(dead_code)] // used only when a backend's feature is off
    fn not_compiled_in(url: &DatabaseUrl, backend: Backend) -> Error {
        Error::InvalidUrl {
            url: url.redacted.clone(),
            reason: format!(
                "this build of orm has no {backend} support; enable the `{}` cargo feature",
                backend.name()
            ),
        }
    }

    /// The backend the URL named.
    pub fn backend(&self) -> Backend {
        match self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The URL this database was opened with, password redacted.
    pub fn url(&self) -> &RedactedUrl {
        &self.inner.url.redacted
    }

    /// The one road every call takes: check out a connection, wrap it in a [`Conn`] that knows
    /// the call's intent, node and statement count, and run `work` on it.
    fn run<R>(&self, intent: Intent, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        match &self.inner.pools {
            #[cfg(feature = "postgres")]
            Pools::Postgres(pool) => {
                let pooled = self.checkout(pool)?;
                Self::run_on(
                    pooled,
                    intent,
                    Backend::Postgres,
                    |c| RawConnection::Postgres(c),
                    work,
                )
            }
            #[cfg(feature = "sqlite")]
            Pools::Sqlite(pool) => {
                let pooled = self.checkout(pool)?;
                Self::run_on(
                    pooled,
                    intent,
                    Backend::Sqlite,
                    |c| RawConnection::Sqlite(c),
                    work,
                )
            }
        }
    }

    fn checkout<C: R2D2Connection + Send + 'static>(
        &self,
        pool: &Pool<Manager<C>>,
    ) -> Result<PooledConnection<Manager<C>>> {
        pool.get().map_err(|e| Error::Pool {
            url: self.inner.url.redacted.clone(),
            message: self.inner.url.scrub(&e.to_string()),
        })
    }

    fn run_on<C: R2D2Connection + Send + 'static, R>(
        mut pooled: PooledConnection<Manager<C>>,
        intent: Intent,
        backend: Backend,
        wrap: impl FnOnce(&mut C) -> RawConnection<'_>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let PooledConn { conn, statements } = &mut *pooled;
        let mut call = CallState::new(intent, Node::Primary, backend, statements.get());
        // The pooled connection is returned before a panic from `work` goes on, so the pool
        // sees a clean connection rather than one dropped while unwinding, which it discards.
        let outcome = guard_panics(conn, |c| {
            let result = work(&mut Conn::new(wrap(c), &mut call, statements));
            let info = call.info(statements);
            tracing::trace!(
                intent = ?info.intent,
                node = ?info.node,
                statements = info.statements,
                tables_written = ?info.tables_written,
                unknown_writes = info.unknown_writes,
                ok = result.is_ok(),
                "orm call"
            );
            result
        });
        drop(pooled);
        outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Run `work` on a checked-out connection, with the whole [`Conn`] API and
    /// [`Conn::raw`] for Diesel code. The call counts as a write: it goes to the primary.
    pub fn with_connection<R>(&self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Intent::Write, work)
    }

    /// Run `work` in a transaction: committed when it returns `Ok`, rolled back on `Err`.
    /// Diesel's own errors convert with `?`. The body gets a [`Conn`], which can do everything
    /// `Database` can (nested `conn.transaction` is a savepoint). The connection is checked
    /// out for the whole transaction: don't call `self` again inside `work` (on an in-memory
    /// SQLite database, whose one connection is taken, that call waits for the pool's timeout).
    pub fn transaction<R>(&self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Intent::Write, |conn| conn.transaction(work))
    }

    /// Run SQL text (one or more statements, no parameters, no results).
    pub fn batch_execute(&self, sql: &str) -> Result<()> {
        self.run(Intent::Write, |conn| conn.batch_execute(sql))
    }

    /// Create `M`'s table (and nothing if it exists): column types for this backend, NOT NULL,
    /// primary key, named UNIQUE constraints.
    pub fn create_table<M: Model>(&self) -> Result<()> {
        self.batch_execute(&ddl::create_table_sql(M::TABLE, self.backend()))
    }

    /// Drop `M`'s table if it exists.
    pub fn drop_table<M: Model>(&self) -> Result<()> {
        self.batch_execute(&ddl::drop_table_sql(M::TABLE))
    }

    /// Insert one row and return it as stored, with its generated key.
    pub fn insert<M: Model>(&self, row: &M::New) -> Result<M> {
        self.run(Intent::Write, |conn| conn.insert::<M>(row))
    }

    /// The row with primary key `key`, or [`Error::NotFound`].
    pub fn find<M: Model>(&self, key: M::PrimaryKey) -> Result<M> {
        self.run(Intent::Read, |conn| conn.find::<M>(key))
    }

    /// Write every non-key field of `row` to the row with its primary key, and return the row
    /// as stored; [`Error::NotFound`] if no row has that key.
    pub fn update<M: Model>(&self, row: &M) -> Result<M> {
        self.run(Intent::Write, |conn| conn.update(row))
    }

    /// Delete the row with primary key `key`; [`Error::NotFound`] if there is none.
    pub fn delete<M: Model>(&self, key: M::PrimaryKey) -> Result<()> {
        self.run(Intent::Write, |conn| conn.delete::<M>(key))
    }

    /// Every row a Diesel query returns, on whichever backend this is:
    /// `db.load(users::table.filter(users::name.eq("Ada")))`. The query must compile for every
    /// enabled backend; for one only PostgreSQL runs, use [`Database::postgres`].
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadOnEveryBackend<'q, U>,
    {
        self.run(Intent::Read, |conn| conn.load(query))
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`].
    pub fn first<'q, Q, U>(&self, query: Q) -> Result<U>
    where
        Q: LimitDsl,
        Limit<Q>: LoadOnEveryBackend<'q, U>,
    {
        self.run(Intent::Read, |conn| conn.first(query))
    }

    /// Run a Diesel statement (insert, update, delete) and return the number of rows it touched.
    pub fn execute<Q>(&self, query: Q) -> Result<usize>
    where
        Q: ExecuteOnEveryBackend,
    {
        self.run(Intent::Write, |conn| conn.execute(query))
    }

    /// Stream the rows of a Diesel query through `consume` without holding them all in memory:
    /// PostgreSQL sends them in single-row mode, SQLite steps its cursor. The connection stays
    /// checked out until `consume` returns.
    ///
    /// ```no_run
    /// # use orm_core::Database;
    /// # fn demo(db: &Database) -> orm_core::Result<()> {
    /// use diesel::dsl::sql;
    /// use diesel::sql_types::BigInt;
    /// let total: i64 = db.load_iter(sql::<BigInt>("SELECT 1"), |rows| {
    ///     rows.map(|r| r.unwrap_or(0)).sum()
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn load_iter<'q, Q, U, R>(
        &self,
        query: Q,
        consume: impl FnOnce(&mut dyn Iterator<Item = Result<U>>) -> R,
    ) -> Result<R>
    where
        Q: StreamOnEveryBackend<'q, U> + 'q,
        U: 'q,
    {
        self.run(Intent::Read, |conn| conn.load_iter(query, consume))
    }

    /// The columns of projection `P` for the row with primary key `key`, or
    /// [`Error::NotFound`]. Only `P`'s columns are read.
    pub fn find_as<P>(&self, key: <P::Model as Model>::PrimaryKey) -> Result<P>
    where
        P: Projection,
        <P::Model as Model>::Table: FilterDsl<<P::Model as Model>::KeyFilter>,
        Filter<<P::Model as Model>::Table, <P::Model as Model>::KeyFilter>: SelectDsl<P::Columns>,
        Select<Filter<<P::Model as Model>::Table, <P::Model as Model>::KeyFilter>, P::Columns>:
            LimitDsl,
        FindAsQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        self.run(Intent::Read, |conn| conn.find_as::<P>(key))
    }

    /// Every row of the model's table, reading only projection `P`'s columns. For a filter,
    /// order or limit, use the Diesel DSL: `db.load(users::table.filter(…).select(UserCard::columns()))`.
    pub fn load_all<P>(&self) -> Result<Vec<P>>
    where
        P: Projection,
        <P::Model as Model>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        self.run(Intent::Read, |conn| conn.load_all::<P>())
    }

    /// Insert every row of `rows` (owned or borrowed insert structs), streamed in batches:
    /// binary COPY on PostgreSQL, multi-row INSERT sized to the bind-parameter limit on SQLite.
    /// `User::bulk_insert(&db, rows, options)` calls this.
    ///
    /// On failure, [`Error::Bulk`] names the failing batch, its rows, the database's reason and
    /// exactly how many rows were committed before it.
    pub fn bulk_insert<M, I>(
        &self,
        rows: I,
        options: BulkOptions<'_>,
    ) -> Result<BulkReport<M::PrimaryKey>>
    where
        M: Model,
        I: IntoIterator,
        I::Item: Borrow<M::New>,
    {
        self.run(Intent::Write, |conn| {
            conn.bulk_insert::<M, I>(rows, options)
        })
    }

    /// This database as backend `C`'s, for queries only `C` can run; [`Error::WrongBackend`]
    /// if it is another backend.
    pub fn on<C: BackendConnection>(&self) -> Result<OnBackend<'_, C>> {
        if self.backend() != C::BACKEND {
            return Err(Error::WrongBackend {
                what: format!("a {}-only query", C::BACKEND),
                needed: C::BACKEND,
                actual: self.backend(),
            });
        }
        Ok(OnBackend {
            db: self,
            backend: PhantomData,
        })
    }

    /// This database as a PostgreSQL one, for queries only PostgreSQL runs (`ilike`,
    /// `DISTINCT ON`, jsonb operators); [`Error::WrongBackend`] on SQLite.
    ///
    /// ```no_run
    /// # use orm_core::Database;
    /// # diesel::table! { users (id) { id -> BigInt, name -> Text } }
    /// # fn demo(db: &Database) -> orm_core::Result<()> {
    /// use diesel::prelude::*;
    /// let names: Vec<String> = db
    ///     .postgres()?
    ///     .load(users::table.filter(users::name.ilike("%ada%")).select(users::name))?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "postgres")]
    pub fn postgres(&self) -> Result<OnBackend<'_, PgConnection>> {
        self.on::<PgConnection>()
    }

    /// This database as a SQLite one, for queries only SQLite runs; [`Error::WrongBackend`]
    /// on PostgreSQL.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(&self) -> Result<OnBackend<'_, SqliteConnection>> {
        self.on::<SqliteConnection>()
    }
}

/// A [`Database`] known to be of backend `C`: queries that only `C` can run, each through the
/// same choke point as every other call. From [`Database::postgres`] or [`Database::sqlite`].
pub struct OnBackend<'db, C> {
    db: &'db Database,
    backend: PhantomData<fn() -> C>,
}

impl<C: BackendConnection> OnBackend<'_, C> {
    fn run<R>(
        &self,
        intent: Intent,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R> {
        self.db.run(intent, |conn| work(&mut conn.on::<C>()?))
    }

    /// Run `work` on a checked-out connection of this backend (a write, on the primary).
    pub fn with_connection<R>(
        &self,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R> {
        self.run(Intent::Write, work)
    }

    /// Every row a Diesel query returns; the query only has to compile for this backend.
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadQuery<'q, C, U>,
    {
        self.run(Intent::Read, |conn| conn.load(query))
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`].
    pub fn first<'q, Q, U>(&self, query: Q) -> Result<U>
    where
        Q: LimitDsl,
        Limit<Q>: LoadQuery<'q, C, U>,
    {
        self.run(Intent::Read, |conn| conn.first(query))
    }

    /// Run a Diesel statement and return the rows it touched.
    pub fn execute<Q>(&self, query: Q) -> Result<usize>
    where
        Q: ExecuteDsl<C> + RunQueryDsl<C>,
    {
        self.run(Intent::Write, |conn| conn.execute(query))
    }

    /// Stream the rows of a Diesel query through `consume`.
    pub fn load_iter<'q, Q, U, R>(
        &self,
        query: Q,
        consume: impl FnOnce(&mut dyn Iterator<Item = Result<U>>) -> R,
    ) -> Result<R>
    where
        Q: LoadQuery<'q, C, U, C::StreamMode> + RunQueryDsl<C> + 'q,
        U: 'q,
    {
        self.run(Intent::Read, |conn| conn.load_iter(query, consume))
    }

    /// The columns of projection `P` for the row with primary key `key`, or
    /// [`Error::NotFound`].
    pub fn find_as<P>(&self, key: <P::Model as Model>::PrimaryKey) -> Result<P>
    where
        P: Projection,
        <P::Model as Model>::Table: FilterDsl<<P::Model as Model>::KeyFilter>,
        Filter<<P::Model as Model>::Table, <P::Model as Model>::KeyFilter>: SelectDsl<P::Columns>,
        Select<Filter<<P::Model as Model>::Table, <P::Model as Model>::KeyFilter>, P::Columns>:
            LimitDsl,
        FindAsQuery<P>: LoadQuery<'static, C, P>,
    {
        self.run(Intent::Read, |conn| conn.find_as::<P>(key))
    }

    /// Every row of the model's table, reading only projection `P`'s columns.
    pub fn load_all<P>(&self) -> Result<Vec<P>>
    where
        P: Projection,
        <P::Model as Model>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadQuery<'static, C, P>,
    {
        self.run(Intent::Read, |conn| conn.load_all::<P>())
    }
}
