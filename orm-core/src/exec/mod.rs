//! The executor: one trait, [`Executor`], that runs a unit of work on a connection context
//! ([`Conn`]) with a declared [`Access`], and every operation of `orm` written once over it.
//! [`Database`](crate::Database) (and its pinned and session handles), a transaction's
//! `&mut Conn`, the backend handles and any handle of your own get the whole API from it.
//! [`BackendExecutor`] is the same for queries only one backend runs.

mod backend;

use std::borrow::Borrow;

use diesel::dsl::{Filter, Limit, Select};
use diesel::query_dsl::methods::{FilterDsl, LimitDsl, SelectDsl};

pub use backend::BackendExecutor;

use crate::bulk::{BulkOptions, BulkReport};
use crate::call::Intent;
use crate::conn::{
    BackendConn, Conn, ExecuteOnEveryBackend, FindAsQuery, LoadAllQuery, LoadOnEveryBackend,
    RawConnection, StreamOnEveryBackend,
};
use crate::ddl;
use crate::error::Result;
use crate::meta::TableMeta;
use crate::model::{Model, PatchValues, ReadModel};
use crate::projection::Projection;
use crate::schema::{
    create_indexes_sql, create_view_on, drop_index_sql, drop_view_sql, explain_on, index_report_on,
    refresh_waiting, ConcurrentRefresh, ExplainOnEveryBackend, IndexDdl, IndexReport,
    MaterializedView, Plan, Refreshed, SchemaDifference,
};

/// Runs `$body` with `$b` bound to the [`BackendConn`] of `$conn`, on whichever backend it is.
macro_rules! on_backend {
    ($conn:expr, $b:ident => $body:expr) => {{
        let conn: &mut Conn<'_> = $conn;
        let (call, counter) = (&mut *conn.call, conn.counter);
        match &mut conn.raw {
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(c) => {
                #[allow(unused_mut)]
                let mut $b = BackendConn::new(&mut **c, call, counter);
                $body
            }
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(c) => {
                #[allow(unused_mut)]
                let mut $b = BackendConn::new(&mut **c, call, counter);
                $body
            }
        }
    }};
}

/// What a unit of work handed to an [`Executor`] declares about itself: whether it only reads,
/// and which tables it writes. The executor records the declared tables as written once the
/// work has sent a statement, so an operation never records its writes itself.
///
/// `Intent::Read` and `Intent::Write` convert into it: `db.run(Intent::Write, |conn| …)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    intent: Intent,
    tables: &'static [&'static str],
    primary: bool,
}

impl Access {
    /// Work that only reads: it may go to a replica.
    pub const READ: Access = Access {
        intent: Intent::Read,
        tables: &[],
        primary: false,
    };

    /// Work that may write tables it does not name (a transaction, SQL text, Diesel
    /// statements). Unless what it runs records its tables itself (the model operations of a
    /// transaction body do), a call with this access that sent a statement is reported to
    /// write listeners as a write of unknown tables, so caches are invalidated conservatively.
    pub const WRITE: Access = Access {
        intent: Intent::Write,
        tables: &[],
        primary: false,
    };

    /// Work that writes `tables`: recorded as written when the work has sent a statement (a
    /// write that may have happened counts as one), whether it then succeeds or fails.
    pub const fn writes(tables: &'static [&'static str]) -> Access {
        Access {
            intent: Intent::Write,
            tables,
            primary: false,
        }
    }

    /// The same access, served by the primary whatever the handle's routing: for a read that
    /// must see the latest data or DDL (the catalog, the statistics views).
    pub const fn on_primary(self) -> Access {
        Access {
            primary: true,
            ..self
        }
    }

    /// Whether the work only reads or may write.
    #[inline]
    pub fn intent(&self) -> Intent {
        self.intent
    }

    /// The tables the work declares it writes.
    #[inline]
    pub fn tables(&self) -> &'static [&'static str] {
        self.tables
    }

    /// Whether the work must run on the primary.
    #[inline]
    pub fn needs_primary(&self) -> bool {
        self.primary
    }
}

impl From<Intent> for Access {
    #[inline]
    fn from(intent: Intent) -> Self {
        match intent {
            Intent::Read => Access::READ,
            Intent::Write => Access::WRITE,
        }
    }
}

/// The tables model `M` writes: its own.
fn table_of<M: ReadModel>() -> &'static [&'static str] {
    std::slice::from_ref(&M::TABLE.name)
}

/// Something that runs a unit of work on a connection context: the pool
/// ([`&Database`](crate::Database), which checks out a connection for each call), a connection
/// already checked out (`&mut Conn`, in a transaction or [`Executor::with_connection`]), a
/// backend handle, or a handle of your own. Implement [`Executor::run`] (and, for a handle over
/// a [`Database`](crate::Database), forward [`Executor::run_read`]) and every operation below
/// comes with it: `find`, `insert`, `load`, `transaction`, DDL, views.
///
/// **Invariant: the executor records what a call wrote, never the operation.** An operation
/// declares what it writes in the [`Access`] it hands to `run` (`Access::writes(&["users"])`,
/// or [`Access::WRITE`] for tables it cannot name); the executor at the bottom records those
/// tables once the work has sent a statement, rolls them back with a failed transaction, and
/// reports them to the database's write listeners (a query cache) after the connection is back.
/// A call declared as a write that recorded no table is reported as a write of unknown tables.
/// So an operation of your own, written over `run`, invalidates caches correctly without a
/// line of its own.
///
/// ```
/// use orm_core::{Access, Conn, Database, Executor, Result};
///
/// /// An operation of one's own, over the executor: it works on a `Database`, in a
/// /// transaction, and on any handle.
/// trait Touch: Executor {
///     fn touch(self) -> Result<()> {
///         self.run(Access::writes(&["t"]), |conn| conn.batch_execute("UPDATE t SET x = x + 1"))
///     }
/// }
/// impl<E: Executor> Touch for E {}
///
/// # fn main() -> Result<()> {
/// let db = Database::connect("sqlite::memory:")?;
/// db.batch_execute("CREATE TABLE t (x INTEGER)")?;
/// db.touch()?;
/// db.transaction(|conn: &mut Conn<'_>| conn.touch())?;
/// # Ok(()) }
/// ```
pub trait Executor: Sized {
    /// Run `work` on a connection context whose call is declared by `access` (or an
    /// [`Intent`]), and return its result. The executor chooses the connection (a replica for
    /// a read when one is usable), applies its deadline, counts statements, records the
    /// declared tables and reports the call's writes. On `&mut Conn` the work runs on that
    /// connection, inside whatever transaction is open.
    #[track_caller]
    fn run<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R>;

    /// Run `work`, which only reads and may run twice: on a database with replicas, a read that
    /// fails on a replica for a connection reason is run again on the primary. The default runs
    /// it once, as [`Executor::run`] with [`Access::READ`].
    #[track_caller]
    fn run_read<R>(self, work: impl Fn(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Access::READ, work)
    }

    /// Run `work`, which only reads, on a connection of the node a read goes to (a replica
    /// when one is usable): for several reads on one connection. A write in `work` fails on a
    /// replica, which is read-only; use [`Executor::with_connection`] for writes.
    #[track_caller]
    fn read<R>(self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Access::READ, work)
    }

    /// Run `work` on a connection, with the whole [`Conn`] API and [`Conn::raw`] for Diesel
    /// code. The call counts as a write: it goes to the primary.
    #[track_caller]
    fn with_connection<R>(self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Access::WRITE, work)
    }

    /// Run `work` in a transaction (a savepoint when one is open already): committed when it
    /// returns `Ok`, rolled back on `Err`. Diesel's own errors convert with `?`. The body gets
    /// a [`Conn`], which has this whole API. On a database the connection is checked out for
    /// the whole transaction: don't call the database again inside `work` (on an in-memory
    /// SQLite database, whose one connection is taken, that call waits for the pool's timeout).
    #[track_caller]
    fn transaction<R>(self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Access::WRITE, |conn| conn.in_transaction(work))
    }

    /// Run SQL text (one or more statements, no parameters, no results).
    #[track_caller]
    fn batch_execute(self, sql: &str) -> Result<()> {
        self.run(
            Access::WRITE,
            |conn| on_backend!(conn, b => b.batch_execute(sql)),
        )
    }

    /// Create `M`'s table: column types for this backend, NOT NULL, defaults, primary key,
    /// named UNIQUE, CHECK and FOREIGN KEY constraints (the SQL is
    /// [`ddl::create_table_sql`]). If a table of that name exists, nothing is changed: `Ok` if
    /// it matches the model (as [`Executor::verify_schema`] compares them), else
    /// [`Error::SchemaMismatch`](crate::Error::SchemaMismatch) listing the differences.
    #[track_caller]
    fn create_table<M: Model>(self) -> Result<()> {
        self.run(Access::WRITE, |conn| {
            conn.check_model::<M>()?;
            on_backend!(conn, b => b.create_table(M::TABLE))
        })
    }

    /// Drop `M`'s table if it exists.
    #[track_caller]
    fn drop_table<M: Model>(self) -> Result<()> {
        self.batch_execute(&ddl::drop_table_sql(M::TABLE))
    }

    /// How the live table of `M` differs from the model, read from the catalog of the primary
    /// (`pg_catalog`, through the search path, on PostgreSQL; SQLite's pragmas): missing or
    /// extra columns, types, nullability, primary key, UNIQUE constraints. Empty when they
    /// match.
    #[track_caller]
    fn verify_schema<M: Model>(self) -> Result<Vec<SchemaDifference>> {
        self.verify_tables(&[M::TABLE])
    }

    /// [`Executor::verify_schema`] for a list of models' tables in one call:
    /// `db.verify_tables(&[User::TABLE, Post::TABLE])`.
    #[track_caller]
    fn verify_tables(self, tables: &[&'static TableMeta]) -> Result<Vec<SchemaDifference>> {
        // The primary: a replica may not have replayed the latest DDL yet.
        self.run(
            Access::READ.on_primary(),
            |conn| on_backend!(conn, b => b.verify_tables(tables)),
        )
    }

    /// Insert one row and return it as stored, with its generated key.
    #[track_caller]
    fn insert<M: Model>(self, row: &M::New) -> Result<M> {
        self.run(Access::writes(table_of::<M>()), |conn| {
            conn.check_model::<M>()?;
            on_backend!(conn, b => b.insert::<M>(row))
        })
    }

    /// The row with primary key `key`, or [`Error::NotFound`](crate::Error::NotFound).
    #[track_caller]
    fn find<M: Model>(self, key: M::PrimaryKey) -> Result<M> {
        self.run_read(|conn| {
            conn.check_model::<M>()?;
            on_backend!(conn, b => b.find::<M>(&key))
        })
    }

    /// Write every non-key field of `row` (but `server_filled` ones) to the row with its
    /// primary key, and return the row as stored; [`Error::NotFound`](crate::Error::NotFound) if no row has that key.
    /// Every such column is written, changed or not, so a change made elsewhere since `row`
    /// was read is overwritten: to write only some fields, use [`Executor::patch`].
    #[track_caller]
    fn update<M: Model>(self, row: &M) -> Result<M> {
        self.run(Access::writes(table_of::<M>()), |conn| {
            conn.check_model::<M>()?;
            on_backend!(conn, b => b.update::<M>(row))
        })
    }

    /// Write the fields of `patch` that are `Some` to the row with primary key `key`, in one
    /// `UPDATE … SET`, and return the row as stored; [`Error::NotFound`](crate::Error::NotFound) if no row has that
    /// key. Columns left `None` are not written, so changes made to them elsewhere survive:
    /// `db.patch::<User>(7, &UserPatch { name: Some("Ada".into()), ..Default::default() })`.
    /// A patch that sets nothing writes nothing and returns the row.
    #[track_caller]
    fn patch<M: Model>(self, key: M::PrimaryKey, patch: &M::Patch) -> Result<M> {
        if patch.is_empty() {
            return self.find::<M>(key);
        }
        self.run(Access::writes(table_of::<M>()), |conn| {
            conn.check_model::<M>()?;
            on_backend!(conn, b => b.patch::<M>(&key, patch))
        })
    }

    /// Delete the row with primary key `key`; [`Error::NotFound`](crate::Error::NotFound) if there is none.
    #[track_caller]
    fn delete<M: Model>(self, key: M::PrimaryKey) -> Result<()> {
        self.run(Access::writes(table_of::<M>()), |conn| {
            conn.check_model::<M>()?;
            on_backend!(conn, b => b.delete::<M>(&key))
        })
    }

    /// Insert every row of `rows` (owned or borrowed insert structs), streamed in batches:
    /// binary COPY on PostgreSQL, multi-row INSERT sized to the bind-parameter limit on SQLite.
    /// `User::bulk_insert(&db, rows, options)` calls this.
    ///
    /// On failure, [`Error::Bulk`](crate::Error::Bulk) names the failing batch, its rows, the database's reason and
    /// exactly how many rows were committed before it.
    #[track_caller]
    fn bulk_insert<M, I>(
        self,
        rows: I,
        options: BulkOptions<'_>,
    ) -> Result<BulkReport<M::PrimaryKey>>
    where
        M: Model,
        I: IntoIterator,
        I::Item: Borrow<M::New>,
    {
        self.run(Access::writes(table_of::<M>()), |conn| {
            conn.check_model::<M>()?;
            on_backend!(conn, b => b.bulk_insert::<M, I>(rows, options))
        })
    }

    /// Every row a Diesel query returns, on whichever backend this is:
    /// `db.load(users::table.filter(users::name.eq("Ada")))`. The query must compile for every
    /// enabled backend; for one only PostgreSQL runs, use the backend handle
    /// ([`Database::postgres`](crate::Database::postgres), [`Conn::postgres`]).
    ///
    /// The query is `Clone` (Diesel's queries are, but boxed ones) so that a read whose
    /// replica fails or goes silent can run again on the primary. A boxed query loads through
    /// [`Executor::read`]: `db.read(|c| c.load(boxed))`, which is not run again.
    #[track_caller]
    fn load<'q, Q, U>(self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadOnEveryBackend<'q, U> + Clone,
    {
        self.run_read(|conn| on_backend!(conn, b => b.load(query.clone())))
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`](crate::Error::NotFound).
    /// Like [`Executor::load`], the query is `Clone`.
    #[track_caller]
    fn first<'q, Q, U>(self, query: Q) -> Result<U>
    where
        Q: LimitDsl + Clone,
        Limit<Q>: LoadOnEveryBackend<'q, U>,
    {
        self.run_read(|conn| on_backend!(conn, b => b.first(query.clone())))
    }

    /// Run a Diesel statement (insert, update, delete) and return the number of rows it
    /// touched. `orm` cannot name the tables it writes: it counts as a write of unknown tables.
    #[track_caller]
    fn execute<Q>(self, query: Q) -> Result<usize>
    where
        Q: ExecuteOnEveryBackend,
    {
        self.run(
            Access::WRITE,
            |conn| on_backend!(conn, b => b.execute(query)),
        )
    }

    /// Stream the rows of a Diesel query through `consume` without holding them all in memory:
    /// PostgreSQL sends them in single-row mode, SQLite steps its cursor. The connection stays
    /// checked out until `consume` returns.
    ///
    /// ```no_run
    /// # use orm_core::{Database, Executor};
    /// # fn demo(db: &Database) -> orm_core::Result<()> {
    /// use diesel::dsl::sql;
    /// use diesel::sql_types::BigInt;
    /// let total: i64 = db.load_iter(sql::<BigInt>("SELECT 1"), |rows| {
    ///     rows.map(|r| r.unwrap_or(0)).sum()
    /// })?;
    /// # Ok(()) }
    /// ```
    #[track_caller]
    fn load_iter<'q, Q, U, R>(
        self,
        query: Q,
        consume: impl FnOnce(&mut dyn Iterator<Item = Result<U>>) -> R,
    ) -> Result<R>
    where
        Q: StreamOnEveryBackend<'q, U> + 'q,
        U: 'q,
    {
        self.run(
            Access::READ,
            |conn| on_backend!(conn, b => b.load_iter(query, consume)),
        )
    }

    /// The columns of projection `P` for the row with primary key `key`, or
    /// [`Error::NotFound`](crate::Error::NotFound). Only `P`'s columns are read.
    #[track_caller]
    fn find_as<P>(self, key: <P::Model as Model>::PrimaryKey) -> Result<P>
    where
        P: Projection,
        P::Model: Model,
        <P::Model as ReadModel>::Table: FilterDsl<<P::Model as Model>::KeyFilter>,
        Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>:
            SelectDsl<P::Columns>,
        Select<Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>, P::Columns>:
            LimitDsl,
        FindAsQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        self.run_read(|conn| {
            conn.check_model::<P::Model>()?;
            on_backend!(conn, b => b.find_as::<P>(key.clone()))
        })
    }

    /// Every row of the model's table, reading only projection `P`'s columns. For a filter,
    /// order or limit, use the Diesel DSL:
    /// `db.load(users::table.filter(…).select(UserCard::columns()))`.
    #[track_caller]
    fn load_all<P>(self) -> Result<Vec<P>>
    where
        P: Projection,
        <P::Model as ReadModel>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        self.run_read(|conn| {
            conn.check_model::<P::Model>()?;
            on_backend!(conn, b => b.load_all::<P>())
        })
    }

    /// The plan the database chooses for `query` (which is planned, not run): `EXPLAIN (FORMAT
    /// JSON)` on PostgreSQL, `EXPLAIN QUERY PLAN` on SQLite. Then
    /// [`Plan::is_index_only_scan`] says whether an index answers it alone.
    ///
    /// ```
    /// use orm_core::Executor;
    /// # fn main() -> orm_core::Result<()> {
    /// let db = orm_core::Database::connect("sqlite::memory:")?;
    /// db.batch_execute("CREATE TABLE t (a INTEGER, b INTEGER); CREATE INDEX t_a_b ON t (a, b)")?;
    /// let plan = db.explain(diesel::sql_query("SELECT b FROM t WHERE a = 1"))?;
    /// assert!(plan.is_index_only_scan() && plan.uses_index("t_a_b"));
    /// # Ok(()) }
    /// ```
    #[track_caller]
    fn explain<Q: ExplainOnEveryBackend>(self, query: Q) -> Result<Plan> {
        self.run(Access::READ, |conn| explain_on(conn, query))
    }

    /// Create every index declared on `M` that does not exist yet (`IF NOT EXISTS`), one
    /// statement per call.
    #[track_caller]
    fn create_indexes<M: ReadModel>(self) -> Result<()> {
        self.run(Access::WRITE, |conn| {
            run_index_ddl(conn, M::TABLE, IndexDdl::default())
        })
    }

    /// As [`Executor::create_indexes`], with `CREATE INDEX CONCURRENTLY` on PostgreSQL, which
    /// does not block writes to the table while it builds. Each statement is sent on its own:
    /// `CONCURRENTLY` refuses to run in a transaction, and several statements sent together
    /// run as one.
    #[track_caller]
    fn create_indexes_concurrently<M: ReadModel>(self) -> Result<()> {
        self.run(Access::WRITE, |conn| {
            run_index_ddl(conn, M::TABLE, IndexDdl::concurrently())
        })
    }

    /// Drop every index declared on `M` (`DROP INDEX IF EXISTS`).
    #[track_caller]
    fn drop_indexes<M: ReadModel>(self) -> Result<()> {
        self.run(Access::WRITE, |conn| {
            for index in M::TABLE.indexes {
                conn.batch_execute(&drop_index_sql(index))?;
            }
            Ok(())
        })
    }

    /// How the indexes of `tables` are used (scans, size, unused, duplicates) and whether each
    /// partial struct of those models is covered by an index:
    /// `db.index_report(&[User::TABLE, SalesSummary::TABLE])`. Reads the statistics views of
    /// PostgreSQL (`pg_stat_user_indexes`, `pg_index`, `pg_relation_size`) in the current
    /// schema of the primary (a replica counts the scans it serves in its own statistics),
    /// SQLite's `index_list`/`index_xinfo` pragmas (which count no scans).
    #[track_caller]
    fn index_report(self, tables: &[&'static TableMeta]) -> Result<IndexReport> {
        self.run(Access::READ.on_primary(), |conn| {
            index_report_on(conn, tables)
        })
    }

    /// Create view `V` if it does not exist, then its indexes: `CREATE MATERIALIZED VIEW … AS
    /// <query>` on PostgreSQL, which fills it; on SQLite a table of `V`'s columns, filled by a
    /// refresh.
    #[track_caller]
    fn create_view<V: MaterializedView>(self) -> Result<()> {
        self.run(Access::writes(table_of::<V>()), |conn| {
            create_view_on(conn, V::TABLE)?;
            run_index_ddl(conn, V::TABLE, IndexDdl::default())
        })
    }

    /// Drop view `V` if it exists (its indexes go with it).
    #[track_caller]
    fn drop_view<V: MaterializedView>(self) -> Result<()> {
        self.run(Access::writes(table_of::<V>()), |conn| {
            let sql = drop_view_sql(V::TABLE, conn.backend());
            conn.batch_execute(&sql)
        })
    }

    /// Recompute view `V` from its query: `REFRESH MATERIALIZED VIEW` on PostgreSQL, which
    /// blocks readers of the view until it ends; on SQLite, delete and refill in one
    /// transaction (so not inside a transaction of one's own). Waits while another refresh of
    /// `V` runs (in any process), so two never overlap. Cached results of `V` are invalidated,
    /// as after any write: the call records the view's table as written.
    #[track_caller]
    fn refresh<V: MaterializedView>(self) -> Result<Refreshed> {
        self.run(Access::writes(table_of::<V>()), |conn| {
            refresh_waiting(conn, V::TABLE, false)
        })
    }

    /// As [`Executor::refresh`], with `REFRESH MATERIALIZED VIEW CONCURRENTLY` on PostgreSQL
    /// (which refuses it inside a transaction): readers keep reading the old rows until the
    /// new ones are in. Needs a unique index on the view, which the derive checks (see
    /// [`ConcurrentRefresh`]). On SQLite, a refresh's transaction already keeps the old rows
    /// visible to other connections until it commits.
    #[track_caller]
    fn refresh_concurrently<V: ConcurrentRefresh>(self) -> Result<Refreshed> {
        self.run(Access::writes(table_of::<V>()), |conn| {
            refresh_waiting(conn, V::TABLE, true)
        })
    }
}

/// Send the index DDL of `table` on `conn`, one statement at a time.
fn run_index_ddl(conn: &mut Conn<'_>, table: &TableMeta, ddl: IndexDdl) -> Result<()> {
    for statement in create_indexes_sql(table, conn.backend(), ddl) {
        conn.batch_execute(&statement)?;
    }
    Ok(())
}

/// A connection already checked out: the work runs on it, inside whatever transaction is open,
/// and what it declares is recorded in the call the connection serves.
impl Executor for &mut Conn<'_> {
    #[inline]
    fn run<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let access = access.into();
        let before = self.counter.get();
        self.call.begin(access.intent());
        let result = work(&mut *self);
        // A statement was sent: a write that may have happened counts as one.
        if self.counter.get() > before {
            self.call.record(access.tables());
        }
        result
    }
}
