//! `Database`: one handle over a pooled PostgreSQL or SQLite database.

use std::sync::Arc;
use std::time::Duration;

use diesel::connection::DefaultLoadingMode;
use diesel::connection::SimpleConnection;
use diesel::dsl::{Filter, Limit, Select};
use diesel::pg::PgConnection;
use diesel::pg::PgRowByRowLoadingMode;
use diesel::query_dsl::methods::{ExecuteDsl, FilterDsl, LimitDsl, LoadQuery, SelectDsl};
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryResult, RunQueryDsl};

use crate::bulk::{self, BulkOptions, BulkReport};
use crate::ddl;
use crate::error::{Error, Result};
use crate::model::{Crud, Model};
use crate::projection::Projection;
use crate::url::{DatabaseUrl, RedactedUrl, Target};

/// The database engine behind a [`Database`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// PostgreSQL, through libpq.
    Postgres,
    /// SQLite, embedded.
    Sqlite,
}

/// A checked-out connection, for work that needs the backend's own connection type.
#[non_exhaustive]
pub enum AnyConnection<'a> {
    /// A PostgreSQL connection.
    Postgres(&'a mut PgConnection),
    /// A SQLite connection.
    Sqlite(&'a mut SqliteConnection),
}

impl AnyConnection<'_> {
    /// Insert one row on this connection (inside a transaction, say) and return it as stored.
    pub fn insert<M: Model>(&mut self, row: &M::New) -> Result<M> {
        match self {
            AnyConnection::Postgres(c) => <M as Crud<PgConnection>>::insert_returning(c, row),
            AnyConnection::Sqlite(c) => <M as Crud<SqliteConnection>>::insert_returning(c, row),
        }
        .map_err(|e| Error::from_model(M::TABLE, e))
    }

    /// The row with primary key `key`, on this connection, or [`Error::NotFound`].
    pub fn find<M: Model>(&mut self, key: &M::PrimaryKey) -> Result<M> {
        match self {
            AnyConnection::Postgres(c) => <M as Crud<PgConnection>>::find_by_key(c, key),
            AnyConnection::Sqlite(c) => <M as Crud<SqliteConnection>>::find_by_key(c, key),
        }
        .map_err(|e| Error::from_model(M::TABLE, e))
    }
}

enum Pools {
    Postgres(Pool<ConnectionManager<PgConnection>>),
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
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

/// Applied to every new SQLite connection: wait for locks instead of failing at once, enforce
/// foreign keys, and write-ahead logging for files (readers don't block the writer).
#[derive(Debug)]
struct SqliteSetup {
    file: bool,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteSetup {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        let mut sql = String::from("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;");
        if self.file {
            sql.push_str(" PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
        }
        conn.batch_execute(&sql)
            .map_err(diesel::r2d2::Error::QueryError)
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
            Target::Postgres { url: raw } => {
                PgConnection::establish(raw).map_err(|e| Error::Connect {
                    url: url.redacted.clone(),
                    message: url.scrub(e.to_string().trim()),
                })?;
                let pool = Pool::builder()
                    .max_size(10)
                    .min_idle(Some(1))
                    .connection_timeout(Duration::from_secs(5))
                    .test_on_check_out(false)
                    .build_unchecked(ConnectionManager::new(raw.clone()));
                Pools::Postgres(pool)
            }
            Target::SqliteMemory => Pools::Sqlite(Self::sqlite_pool(&url, ":memory:", false)?),
            Target::SqliteFile { path } => Pools::Sqlite(Self::sqlite_pool(&url, path, true)?),
        };
        tracing::debug!(url = %url.redacted, "database opened");
        Ok(Self {
            inner: Arc::new(Inner { url, pools }),
        })
    }

    fn sqlite_pool(
        url: &DatabaseUrl,
        path: &str,
        file: bool,
    ) -> Result<Pool<ConnectionManager<SqliteConnection>>> {
        // Open one connection first, so a bad path fails at once with SQLite's own message.
        SqliteConnection::establish(path).map_err(|e| Error::Connect {
            url: url.redacted.clone(),
            message: url.scrub(e.to_string().trim()),
        })?;
        // An in-memory database lives and dies with its one connection: keep exactly one, forever.
        let size = if file { 4 } else { 1 };
        Pool::builder()
            .max_size(size)
            .min_idle(Some(1))
            .idle_timeout(None)
            .max_lifetime(if file {
                Some(Duration::from_secs(1800))
            } else {
                None
            })
            .connection_timeout(Duration::from_secs(30))
            .test_on_check_out(false)
            .connection_customizer(Box::new(SqliteSetup { file }))
            .build(ConnectionManager::new(path))
            .map_err(|e| Error::Connect {
                url: url.redacted.clone(),
                message: url.scrub(&e.to_string()),
            })
    }

    /// The backend the URL named.
    pub fn backend(&self) -> Backend {
        match self.inner.pools {
            Pools::Postgres(_) => Backend::Postgres,
            Pools::Sqlite(_) => Backend::Sqlite,
        }
    }

    /// The URL this database was opened with, password redacted.
    pub fn url(&self) -> &RedactedUrl {
        &self.inner.url.redacted
    }

    fn pool_error(&self, e: r2d2::Error) -> Error {
        Error::Pool {
            url: self.inner.url.redacted.clone(),
            message: self.inner.url.scrub(&e.to_string()),
        }
    }

    fn pg(
        &self,
        pool: &Pool<ConnectionManager<PgConnection>>,
    ) -> Result<PooledConnection<ConnectionManager<PgConnection>>> {
        pool.get().map_err(|e| self.pool_error(e))
    }

    fn sqlite(
        &self,
        pool: &Pool<ConnectionManager<SqliteConnection>>,
    ) -> Result<PooledConnection<ConnectionManager<SqliteConnection>>> {
        pool.get().map_err(|e| self.pool_error(e))
    }

    /// Run `work` on a pooled connection of whichever backend this is. Every operation of
    /// `Database` goes through here.
    pub fn with_connection<R>(
        &self,
        work: impl FnOnce(AnyConnection<'_>) -> QueryResult<R>,
    ) -> Result<R> {
        self.try_with_connection(|conn| work(conn).map_err(Error::from))
    }

    fn try_with_connection<R>(
        &self,
        work: impl FnOnce(AnyConnection<'_>) -> Result<R>,
    ) -> Result<R> {
        // The pooled connection is returned before a panic from `work` goes on, so the pool
        // sees a clean connection rather than one dropped while unwinding, which it discards.
        let outcome = match &self.inner.pools {
            Pools::Postgres(pool) => {
                let mut conn = self.pg(pool)?;
                guard_panics(&mut *conn, |c| work(AnyConnection::Postgres(c)))
            }
            Pools::Sqlite(pool) => {
                let mut conn = self.sqlite(pool)?;
                guard_panics(&mut *conn, |c| work(AnyConnection::Sqlite(c)))
            }
        };
        outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }

    /// Run `work` in a transaction: committed when it returns `Ok`, rolled back on `Err`.
    /// Diesel's own errors convert with `?`. The connection is checked out for the whole
    /// transaction: don't call `self` again inside `work` (on an in-memory SQLite database,
    /// whose one connection is taken, that call waits for the pool's timeout).
    pub fn transaction<R>(&self, work: impl FnOnce(AnyConnection<'_>) -> Result<R>) -> Result<R> {
        self.try_with_connection(|conn| match conn {
            AnyConnection::Postgres(c) => c.transaction(|c| work(AnyConnection::Postgres(c))),
            AnyConnection::Sqlite(c) => c.transaction(|c| work(AnyConnection::Sqlite(c))),
        })
    }

    /// Run SQL text (one or more statements, no parameters, no results).
    pub fn batch_execute(&self, sql: &str) -> Result<()> {
        self.with_connection(|conn| match conn {
            AnyConnection::Postgres(c) => c.batch_execute(sql),
            AnyConnection::Sqlite(c) => c.batch_execute(sql),
        })
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
        self.try_with_connection(|mut conn| conn.insert::<M>(row))
    }

    /// The row with primary key `key`, or [`Error::NotFound`].
    pub fn find<M: Model>(&self, key: M::PrimaryKey) -> Result<M> {
        self.try_with_connection(|mut conn| conn.find::<M>(&key))
    }

    /// Write every non-key field of `row` to the row with its primary key, and return the row
    /// as stored; [`Error::NotFound`] if no row has that key.
    pub fn update<M: Model>(&self, row: &M) -> Result<M> {
        let updated = self.model_op::<M, _>(
            |c| <M as Crud<PgConnection>>::update_returning(c, row).transpose(),
            |c| <M as Crud<SqliteConnection>>::update_returning(c, row).transpose(),
        )?;
        updated.ok_or_else(|| Error::Model {
            model: M::TABLE.model,
            message: "has no column besides its primary key, so there is nothing to update"
                .to_owned(),
        })
    }

    /// Delete the row with primary key `key`; [`Error::NotFound`] if there is none.
    pub fn delete<M: Model>(&self, key: M::PrimaryKey) -> Result<()> {
        let deleted = self.model_op::<M, _>(
            |c| <M as Crud<PgConnection>>::delete_by_key(c, &key),
            |c| <M as Crud<SqliteConnection>>::delete_by_key(c, &key),
        )?;
        match deleted {
            0 => Err(Error::NotFound {
                table: M::TABLE.name,
            }),
            _ => Ok(()),
        }
    }

    fn model_op<M: Model, R>(
        &self,
        postgres: impl FnOnce(&mut PgConnection) -> QueryResult<R>,
        sqlite: impl FnOnce(&mut SqliteConnection) -> QueryResult<R>,
    ) -> Result<R> {
        self.try_with_connection(|conn| {
            match conn {
                AnyConnection::Postgres(c) => postgres(c),
                AnyConnection::Sqlite(c) => sqlite(c),
            }
            .map_err(|e| Error::from_model(M::TABLE, e))
        })
    }

    /// Load every row a Diesel query returns, on whichever backend this is:
    /// `db.load(users::table.filter(users::name.eq("Ada")))`.
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadQuery<'q, PgConnection, U> + LoadQuery<'q, SqliteConnection, U>,
    {
        self.with_connection(|conn| match conn {
            AnyConnection::Postgres(c) => query.load(c),
            AnyConnection::Sqlite(c) => query.load(c),
        })
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`].
    pub fn first<'q, Q, U>(&self, query: Q) -> Result<U>
    where
        Q: LimitDsl,
        diesel::dsl::Limit<Q>: LoadQuery<'q, PgConnection, U> + LoadQuery<'q, SqliteConnection, U>,
    {
        let limited = query.limit(1);
        let rows: Vec<U> = self.with_connection(|conn| match conn {
            AnyConnection::Postgres(c) => limited.load(c),
            AnyConnection::Sqlite(c) => limited.load(c),
        })?;
        rows.into_iter()
            .next()
            .ok_or(Error::NotFound { table: "(query)" })
    }

    /// Run a Diesel statement (insert, update, delete) and return the number of rows it touched.
    pub fn execute<Q>(&self, query: Q) -> Result<usize>
    where
        Q: RunQueryDsl<PgConnection>
            + RunQueryDsl<SqliteConnection>
            + ExecuteDsl<PgConnection>
            + ExecuteDsl<SqliteConnection>,
    {
        self.with_connection(|conn| match conn {
            AnyConnection::Postgres(c) => ExecuteDsl::<PgConnection>::execute(query, c),
            AnyConnection::Sqlite(c) => ExecuteDsl::<SqliteConnection>::execute(query, c),
        })
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
        Q: LoadQuery<'q, PgConnection, U, PgRowByRowLoadingMode>
            + LoadQuery<'q, SqliteConnection, U, DefaultLoadingMode>
            + 'q,
        U: 'q,
    {
        self.try_with_connection(|conn| match conn {
            AnyConnection::Postgres(c) => {
                let rows = LoadQuery::<'q, PgConnection, U, PgRowByRowLoadingMode>::internal_load(
                    query, c,
                )?;
                Ok(consume(&mut rows.map(|r| r.map_err(Error::from))))
            }
            AnyConnection::Sqlite(c) => {
                let rows = LoadQuery::<'q, SqliteConnection, U, DefaultLoadingMode>::internal_load(
                    query, c,
                )?;
                Ok(consume(&mut rows.map(|r| r.map_err(Error::from))))
            }
        })
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
        Limit<
            Select<Filter<<P::Model as Model>::Table, <P::Model as Model>::KeyFilter>, P::Columns>,
        >: LoadQuery<'static, PgConnection, P> + LoadQuery<'static, SqliteConnection, P>,
    {
        let table = <P::Model as Model>::Table::default();
        let query = table
            .filter(<P::Model as Model>::key_filter(key))
            .select(P::columns());
        self.first(query).map_err(|e| match e {
            Error::NotFound { .. } => Error::NotFound {
                table: <P::Model as Model>::TABLE.name,
            },
            other => other,
        })
    }

    /// Every row of the model's table, reading only projection `P`'s columns. For a filter,
    /// order or limit, use the Diesel DSL: `db.load(users::table.filter(…).select(UserCard::columns()))`.
    pub fn load_all<P>(&self) -> Result<Vec<P>>
    where
        P: Projection,
        <P::Model as Model>::Table: SelectDsl<P::Columns>,
        Select<<P::Model as Model>::Table, P::Columns>:
            LoadQuery<'static, PgConnection, P> + LoadQuery<'static, SqliteConnection, P>,
    {
        self.load(<P::Model as Model>::Table::default().select(P::columns()))
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
        I::Item: std::borrow::Borrow<M::New>,
    {
        self.try_with_connection(|conn| match conn {
            AnyConnection::Postgres(c) => bulk::run::<M, _, _>(c, rows, options, true),
            AnyConnection::Sqlite(c) => bulk::run::<M, _, _>(c, rows, options, false),
        })
    }
}
