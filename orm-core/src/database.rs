//! `Database`: one handle over a pooled PostgreSQL or SQLite database. Every method checks out
//! a connection context at one choke point, [`Database::run`], which knows whether the call
//! reads or writes; the work itself is a method of [`Conn`].

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc;
use std::time::Instant;

use diesel::dsl::{Filter, Limit, Select};
use diesel::query_dsl::methods::{ExecuteDsl, FilterDsl, LimitDsl, LoadQuery, SelectDsl};
use diesel::r2d2::R2D2Connection;
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
use crate::pool::{node_pool, BackendPool, Checkout, NodePool, PoolConfig, PoolState};
use crate::projection::Projection;
use crate::url::DatabaseUrl;

#[cfg(feature = "postgres")]
use diesel::pg::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::sqlite::SqliteConnection;

struct Inner {
    url: DatabaseUrl,
    primary: NodePool,
}

/// A handle to one database: cheap to clone, safe to share between threads.
///
/// Built from a URL: `postgres://user@host:5432/db`, `sqlite::memory:` (a private in-memory
/// database, one connection), or a SQLite file path (`sqlite://app.db`, `app.db`), with
/// [`Database::connect`] (the default pool) or [`Database::builder`] (a [`PoolConfig`]).
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

/// Settings for a [`Database`] before it connects: from [`Database::builder`], finished by
/// [`DatabaseBuilder::connect`].
///
/// ```
/// use orm_core::{Database, PoolConfig};
/// # fn main() -> orm_core::Result<()> {
/// let db = Database::builder("sqlite::memory:")
///     .pool(PoolConfig { leak_threshold: Some(std::time::Duration::from_secs(10)), ..PoolConfig::default() })
///     .connect()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `.connect()`"]
pub struct DatabaseBuilder {
    url: String,
    pool: PoolConfig,
}

impl DatabaseBuilder {
    /// How to pool the connections; [`PoolConfig::default`] if not called.
    pub fn pool(mut self, config: PoolConfig) -> Self {
        self.pool = config;
        self
    }

    /// Check the settings, then open the database: [`Error::InvalidUrl`] or
    /// [`Error::InvalidConfig`] before anything connects. For PostgreSQL one connection is
    /// made at once, so a wrong URL, host or password fails here with an error that names the
    /// URL (password redacted).
    pub fn connect(self) -> Result<Database> {
        let url = DatabaseUrl::parse(&self.url)?;
        let primary = node_pool(&url, &self.pool)?;
        tracing::debug!(url = %url.redacted, "database opened");
        Ok(Database {
            inner: Arc::new(Inner { url, primary }),
        })
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
    /// Open the database at `url` with the default [`PoolConfig`]:
    /// `Database::builder(url).connect()`.
    pub fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect()
    }

    /// Settings for opening the database at `url`: `.pool(config)`, then `.connect()`.
    pub fn builder(url: &str) -> DatabaseBuilder {
        DatabaseBuilder {
            url: url.to_owned(),
            pool: PoolConfig::default(),
        }
    }

    /// The backend the URL named.
    pub fn backend(&self) -> Backend {
        match self.inner.primary.connections {
            #[cfg(feature = "postgres")]
            BackendPool::Postgres(_) => Backend::Postgres,
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The URL this database was opened with, password redacted.
    pub fn url(&self) -> &RedactedUrl {
        &self.inner.url.redacted
    }

    /// The state of each node's pool: connections open, idle and in use, callers waiting,
    /// checkouts, timeouts and waits so far. One entry per node (today the primary).
    pub fn pool_state(&self) -> Vec<PoolState> {
        vec![self.inner.primary.state(Node::Primary)]
    }

    /// The one road every call takes: check out a connection, wrap it in a [`Conn`] that knows
    /// the call's intent, node and statement count, and run `work` on it. `#[track_caller]`
    /// here and on every public method that leads here makes [`Location::caller`] the
    /// user's call, which leak detection reports.
    #[track_caller]
    fn run<R>(&self, intent: Intent, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        let at = Location::caller();
        let node = &self.inner.primary;
        match &node.connections {
            #[cfg(feature = "postgres")]
            BackendPool::Postgres(connections) => Self::run_on(
                node.checkout(connections, at)?,
                intent,
                Backend::Postgres,
                |c| RawConnection::Postgres(c),
                work,
            ),
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite(connections) => Self::run_on(
                node.checkout(connections, at)?,
                intent,
                Backend::Sqlite,
                |c| RawConnection::Sqlite(c),
                work,
            ),
        }
    }

    fn run_on<C: R2D2Connection + Send + 'static, R>(
        mut checkout: Checkout<'_, C>,
        intent: Intent,
        backend: Backend,
        wrap: impl FnOnce(&mut C) -> RawConnection<'_>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let pooled = &mut *checkout;
        let statements = &pooled.statements;
        let mut call = CallState::new(intent, Node::Primary, backend, statements.get());
        // The pooled connection is returned before a panic from `work` goes on, so the pool
        // sees a clean connection rather than one dropped while unwinding, which it discards.
        let outcome = guard_panics(&mut pooled.conn, |c| {
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
        // The pre-ping skips a connection used this recently.
        pooled.last_used = Instant::now();
        drop(checkout);
        outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Run `work` on a checked-out connection, with the whole [`Conn`] API and
    /// [`Conn::raw`] for Diesel code. The call counts as a write: it goes to the primary.
    #[track_caller]
    pub fn with_connection<R>(&self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Intent::Write, work)
    }

    /// Run `work` in a transaction: committed when it returns `Ok`, rolled back on `Err`.
    /// Diesel's own errors convert with `?`. The body gets a [`Conn`], which can do everything
    /// `Database` can (nested `conn.transaction` is a savepoint). The connection is checked
    /// out for the whole transaction: don't call `self` again inside `work` (on an in-memory
    /// SQLite database, whose one connection is taken, that call waits for the pool's timeout).
    #[track_caller]
    pub fn transaction<R>(&self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Intent::Write, |conn| conn.transaction(work))
    }

    /// Run SQL text (one or more statements, no parameters, no results).
    #[track_caller]
    pub fn batch_execute(&self, sql: &str) -> Result<()> {
        self.run(Intent::Write, |conn| conn.batch_execute(sql))
    }

    /// Create `M`'s table (and nothing if it exists): column types for this backend, NOT NULL,
    /// primary key, named UNIQUE constraints.
    #[track_caller]
    pub fn create_table<M: Model>(&self) -> Result<()> {
        self.batch_execute(&ddl::create_table_sql(M::TABLE, self.backend()))
    }

    /// Drop `M`'s table if it exists.
    #[track_caller]
    pub fn drop_table<M: Model>(&self) -> Result<()> {
        self.batch_execute(&ddl::drop_table_sql(M::TABLE))
    }

    /// Insert one row and return it as stored, with its generated key.
    #[track_caller]
    pub fn insert<M: Model>(&self, row: &M::New) -> Result<M> {
        self.run(Intent::Write, |conn| conn.insert::<M>(row))
    }

    /// The row with primary key `key`, or [`Error::NotFound`].
    #[track_caller]
    pub fn find<M: Model>(&self, key: M::PrimaryKey) -> Result<M> {
        self.run(Intent::Read, |conn| conn.find::<M>(key))
    }

    /// Write every non-key field of `row` to the row with its primary key, and return the row
    /// as stored; [`Error::NotFound`] if no row has that key.
    #[track_caller]
    pub fn update<M: Model>(&self, row: &M) -> Result<M> {
        self.run(Intent::Write, |conn| conn.update(row))
    }

    /// Delete the row with primary key `key`; [`Error::NotFound`] if there is none.
    #[track_caller]
    pub fn delete<M: Model>(&self, key: M::PrimaryKey) -> Result<()> {
        self.run(Intent::Write, |conn| conn.delete::<M>(key))
    }

    /// Every row a Diesel query returns, on whichever backend this is:
    /// `db.load(users::table.filter(users::name.eq("Ada")))`. The query must compile for every
    /// enabled backend; for one only PostgreSQL runs, use [`Database::postgres`].
    #[track_caller]
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadOnEveryBackend<'q, U>,
    {
        self.run(Intent::Read, |conn| conn.load(query))
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`].
    #[track_caller]
    pub fn first<'q, Q, U>(&self, query: Q) -> Result<U>
    where
        Q: LimitDsl,
        Limit<Q>: LoadOnEveryBackend<'q, U>,
    {
        self.run(Intent::Read, |conn| conn.first(query))
    }

    /// Run a Diesel statement (insert, update, delete) and return the number of rows it touched.
    #[track_caller]
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
    #[track_caller]
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
    #[track_caller]
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
    #[track_caller]
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
    #[track_caller]
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
    #[track_caller]
    fn run<R>(
        &self,
        intent: Intent,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R> {
        self.db.run(intent, |conn| work(&mut conn.on::<C>()?))
    }

    /// Run `work` on a checked-out connection of this backend (a write, on the primary).
    #[track_caller]
    pub fn with_connection<R>(
        &self,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R> {
        self.run(Intent::Write, work)
    }

    /// Every row a Diesel query returns; the query only has to compile for this backend.
    #[track_caller]
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadQuery<'q, C, U>,
    {
        self.run(Intent::Read, |conn| conn.load(query))
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`].
    #[track_caller]
    pub fn first<'q, Q, U>(&self, query: Q) -> Result<U>
    where
        Q: LimitDsl,
        Limit<Q>: LoadQuery<'q, C, U>,
    {
        self.run(Intent::Read, |conn| conn.first(query))
    }

    /// Run a Diesel statement and return the rows it touched.
    #[track_caller]
    pub fn execute<Q>(&self, query: Q) -> Result<usize>
    where
        Q: ExecuteDsl<C> + RunQueryDsl<C>,
    {
        self.run(Intent::Write, |conn| conn.execute(query))
    }

    /// Stream the rows of a Diesel query through `consume`.
    #[track_caller]
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
    #[track_caller]
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
    #[track_caller]
    pub fn load_all<P>(&self) -> Result<Vec<P>>
    where
        P: Projection,
        <P::Model as Model>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadQuery<'static, C, P>,
    {
        self.run(Intent::Read, |conn| conn.load_all::<P>())
    }
}
