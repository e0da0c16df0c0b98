//! `Database`: one handle over a pooled PostgreSQL or SQLite database. Every method checks out
//! a connection context at one choke point, [`Database::run`], which knows whether the call
//! reads or writes; the work itself is a method of [`Conn`].

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use diesel::dsl::{Filter, Limit, Select};
use diesel::query_dsl::methods::{ExecuteDsl, FilterDsl, LimitDsl, LoadQuery, SelectDsl};
use diesel::r2d2::R2D2Connection;
use diesel::{Connection, RunQueryDsl};

use crate::bulk::{BulkOptions, BulkReport};
use crate::call::{Intent, Node};
use crate::conn::{
    BackendConn, BackendConnection, CallState, Conn, ExecuteOnEveryBackend, FindAsQuery,
    LoadAllQuery, LoadOnEveryBackend, RawConnection, StreamOnEveryBackend,
};
use crate::ddl;
use crate::error::{Error, Result};
use crate::listen::WriteListener;
use crate::meta::{Backend, RedactedUrl, TableMeta};
use crate::model::{Model, ReadModel};
use crate::pool::{node_pool, BackendPool, Checkout, NodePool, PoolConfig, PoolState};
use crate::projection::Projection;
#[cfg(feature = "postgres")]
use crate::route::{LastWrite, ReadPolicy, ReplicaSet, ReplicaStatus, RouterConfig};
use crate::schema::SchemaDifference;
use crate::url::DatabaseUrl;
#[cfg(feature = "postgres")]
use crate::url::Target;

#[cfg(feature = "postgres")]
use diesel::pg::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::sqlite::SqliteConnection;

struct Inner {
    url: DatabaseUrl,
    primary: NodePool,
    /// Told which tables each call wrote, once the writes are durable.
    listeners: RwLock<Vec<Arc<dyn WriteListener>>>,
    /// The read replicas and their router, when the builder was given replica URLs.
    #[cfg(feature = "postgres")]
    replicas: Option<Replicas>,
}

/// The read replicas of a PostgreSQL primary: a pool each, in the order given, and the router
/// whose background monitor keeps their health and lag.
#[cfg(feature = "postgres")]
struct Replicas {
    pools: Vec<NodePool>,
    router: ReplicaSet,
}

/// Where the calls of one [`Database`] handle go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pin {
    /// Reads to a usable replica, the rest to the primary.
    Routed,
    /// Everything to the primary: [`Database::primary`].
    Primary,
    /// Everything to a replica: [`Database::replica`].
    Replica,
}

/// What a session handle ([`Database::session`]) remembers of its own last write.
#[derive(Debug, Default)]
struct Session {
    #[cfg(feature = "postgres")]
    last_write: std::sync::Mutex<Option<LastWrite>>,
}

/// A handle to one database: cheap to clone, safe to share between threads.
///
/// Built from a URL: `postgres://user@host:5432/db`, `sqlite::memory:` (a private in-memory
/// database, one connection), or a SQLite file path (`sqlite://app.db`, `app.db`), with
/// [`Database::connect`] (the default pool) or [`Database::builder`] (a [`PoolConfig`], read
/// replicas).
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
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))] // only replicas read it
    pin: Pin,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    session: Option<Arc<Session>>,
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
#[must_use = "a builder does nothing until `.connect()`"]
pub struct DatabaseBuilder {
    url: String,
    pool: PoolConfig,
    replicas: Vec<String>,
    listeners: Vec<Arc<dyn WriteListener>>,
    #[cfg(feature = "postgres")]
    router: RouterConfig,
    #[cfg(feature = "postgres")]
    policy: Option<StartRouter>,
}

/// Starts the replica router with a read policy of the user's: primary URL, replica URLs,
/// router settings.
#[cfg(feature = "postgres")]
type StartRouter = Box<dyn FnOnce(&str, &[String], RouterConfig) -> Result<ReplicaSet>>;

impl std::fmt::Debug for DatabaseBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = DatabaseUrl::parse(&self.url).map(|u| u.redacted.to_string());
        f.debug_struct("DatabaseBuilder")
            .field("url", &url.as_deref().unwrap_or("(invalid URL)"))
            .field("pool", &self.pool)
            .field("replicas", &self.replicas.len())
            .finish_non_exhaustive()
    }
}

impl DatabaseBuilder {
    /// How to pool the connections of every node; [`PoolConfig::default`] if not called.
    pub fn pool(mut self, config: PoolConfig) -> Self {
        self.pool = config;
        self
    }

    /// A streaming read replica of the PostgreSQL primary (call once per replica). Reads made
    /// outside transactions go to a healthy replica that has caught up; writes, transactions
    /// and [`Database::with_connection`] go to the primary. Replicas are numbered in the order
    /// given: [`Node::Replica`]`(0)` is the first.
    pub fn replica(mut self, url: &str) -> Self {
        self.replicas.push(url.to_owned());
        self
    }

    /// A listener told which tables each call wrote, once the writes are durable (a query
    /// cache's invalidation). None by default; see [`Database::add_write_listener`].
    pub fn write_listener(mut self, listener: Arc<dyn WriteListener>) -> Self {
        self.listeners.push(listener);
        self
    }

    /// How replicas are watched and chosen: lag limits, monitor interval, the built-in read
    /// policy, read-your-writes mode. [`RouterConfig::default`] if not called.
    #[cfg(feature = "postgres")]
    pub fn router(mut self, config: RouterConfig) -> Self {
        self.router = config;
        self
    }

    /// A read policy of your own, in place of the built-in one the router config names.
    #[cfg(feature = "postgres")]
    pub fn read_policy(mut self, policy: impl ReadPolicy) -> Self {
        self.policy = Some(Box::new(move |primary, urls, config| {
            ReplicaSet::start_with_policy(primary, urls, config, policy)
        }));
        self
    }

    /// Check the settings, then open the database: [`Error::InvalidUrl`] or
    /// [`Error::InvalidConfig`] before anything connects. For PostgreSQL one connection is
    /// made at once to the primary and to each replica, so a wrong URL, host or password fails
    /// here with an error that names the URL (password redacted).
    pub fn connect(mut self) -> Result<Database> {
        let url = DatabaseUrl::parse(&self.url)?;
        let listeners = std::mem::take(&mut self.listeners);
        let primary = node_pool(&url, &self.pool)?;
        let replica_count = self.replicas.len();
        #[cfg(feature = "postgres")]
        let replicas = self.connect_replicas(&url)?;
        #[cfg(not(feature = "postgres"))]
        if !self.replicas.is_empty() {
            return Err(Error::InvalidConfig {
                field: "replica",
                reason: "read replicas are PostgreSQL servers; enable the `postgres` feature"
                    .to_owned(),
            });
        }
        tracing::debug!(url = %url.redacted, replicas = replica_count, "database opened");
        Ok(Database {
            inner: Arc::new(Inner {
                url,
                primary,
                listeners: RwLock::new(listeners),
                #[cfg(feature = "postgres")]
                replicas,
            }),
            pin: Pin::Routed,
            session: None,
        })
    }

    #[cfg(feature = "postgres")]
    fn connect_replicas(self, primary: &DatabaseUrl) -> Result<Option<Replicas>> {
        if self.replicas.is_empty() {
            return Ok(None);
        }
        if !matches!(primary.target, Target::Postgres { .. }) {
            return Err(Error::InvalidConfig {
                field: "replica",
                reason: "read replicas are PostgreSQL streaming replicas of a PostgreSQL primary"
                    .to_owned(),
            });
        }
        let mut pools = Vec::with_capacity(self.replicas.len());
        for replica in &self.replicas {
            let url = DatabaseUrl::parse(replica)?;
            if !matches!(url.target, Target::Postgres { .. }) {
                return Err(Error::InvalidUrl {
                    url: url.redacted,
                    reason: "a read replica is a PostgreSQL server: `postgres://…`".to_owned(),
                });
            }
            let pool = PoolConfig {
                deadline: self.router.read_deadline.or(self.pool.deadline),
                ..self.pool.clone()
            };
            pools.push(node_pool(&url, &pool)?);
        }
        let router = match self.policy {
            Some(start) => start(&self.url, &self.replicas, self.router)?,
            None => ReplicaSet::start(&self.url, &self.replicas, self.router)?,
        };
        Ok(Some(Replicas { pools, router }))
    }
}

/// Whether two listeners are the same allocation (the data pointer; vtables may differ).
fn same_listener(a: &Arc<dyn WriteListener>, b: &Arc<dyn WriteListener>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
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
    #[track_caller]
    pub fn connect(url: &str) -> Result<Self> {
        Self::builder(url).connect()
    }

    /// Settings for opening the database at `url`: `.pool(config)`, `.replica(url)`, then
    /// `.connect()`.
    pub fn builder(url: &str) -> DatabaseBuilder {
        DatabaseBuilder {
            url: url.to_owned(),
            pool: PoolConfig::default(),
            replicas: Vec::new(),
            listeners: Vec::new(),
            #[cfg(feature = "postgres")]
            router: RouterConfig::default(),
            #[cfg(feature = "postgres")]
            policy: None,
        }
    }

    /// Attach `listener` to this database and every clone, session and pinned handle of it:
    /// after each call that wrote, it is told which tables. Returns `false` (and attaches
    /// nothing) when this very listener (the same `Arc` allocation) is attached already.
    pub fn add_write_listener(&self, listener: Arc<dyn WriteListener>) -> bool {
        let mut listeners = self
            .inner
            .listeners
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if listeners.iter().any(|l| same_listener(l, &listener)) {
            return false;
        }
        listeners.push(listener);
        true
    }

    /// Whether `listener` (the same `Arc` allocation) is attached to this database.
    pub fn has_write_listener(&self, listener: &Arc<dyn WriteListener>) -> bool {
        let listeners = self
            .inner
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner());
        listeners.iter().any(|l| same_listener(l, listener))
    }

    /// Tell the listeners what a finished call wrote, if it wrote anything.
    fn notify_writes(&self, call: &CallState) {
        let written = call.written();
        if written.tables.is_empty() && !written.unknown {
            return;
        }
        // A copy, so a listener's round trip never holds the lock `add_write_listener` takes.
        let listeners = self
            .inner
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for listener in &listeners {
            listener.tables_written(written);
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
    /// checkouts, timeouts and waits so far. The primary first, then each replica.
    pub fn pool_state(&self) -> Vec<PoolState> {
        #[allow(unused_mut)]
        let mut states = vec![self.inner.primary.state(Node::Primary)];
        #[cfg(feature = "postgres")]
        if let Some(replicas) = &self.inner.replicas {
            states.extend(
                replicas
                    .pools
                    .iter()
                    .enumerate()
                    .map(|(i, pool)| pool.state(Node::Replica(i))),
            );
        }
        states
    }

    /// What the router knows of each replica now: usable or why not, replay position, lag,
    /// calls in flight. Empty without replicas.
    #[cfg(feature = "postgres")]
    pub fn replica_status(&self) -> Vec<ReplicaStatus> {
        self.inner
            .replicas
            .as_ref()
            .map_or_else(Vec::new, |r| r.router.status())
    }

    /// This handle with every call sent to the primary, reads included: for a read that must
    /// see the latest data (`SELECT … FOR UPDATE` in a transaction goes there anyway).
    pub fn primary(&self) -> Database {
        Database {
            pin: Pin::Primary,
            ..self.clone()
        }
    }

    /// This handle with every call sent to a usable replica, chosen by the read policy:
    /// for raw SQL that only reads. [`Error::NoReplica`] when none is usable (or none was
    /// configured); a write through it fails on the replica, which is read-only.
    pub fn replica(&self) -> Database {
        Database {
            pin: Pin::Replica,
            ..self.clone()
        }
    }

    /// A session handle: this database, plus read-your-writes. After each write made through
    /// the session, its reads go to a replica only once that replica has replayed the write
    /// (or, in the router's window mode, to the primary for the window), so the session never
    /// reads data older than its own writes. Clones of the session share what it remembers.
    /// Without replicas it behaves as the database itself.
    pub fn session(&self) -> Database {
        Database {
            session: Some(Arc::new(Session::default())),
            ..self.clone()
        }
    }

    /// Run `work`, which only reads, on a connection of the node a read goes to (a replica
    /// when one is usable): for several reads on one connection. A write in `work` fails on a
    /// replica, which is read-only; use [`Database::with_connection`] for writes.
    #[track_caller]
    pub fn read<R>(&self, work: impl FnOnce(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run(Intent::Read, work)
    }

    /// The one road every call takes: choose the node (a replica for a read when one is
    /// usable, else the primary), check out a connection, wrap it in a [`Conn`] that knows the
    /// call's intent, node and statement count, and run `work` on it. `#[track_caller]` here
    /// and on every public method that leads here makes [`Location::caller`] the user's call,
    /// which leak detection reports.
    #[track_caller]
    pub(crate) fn run<R>(
        &self,
        intent: Intent,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let at = Location::caller();
        #[cfg(feature = "postgres")]
        if let Some((replicas, index)) = self.route(intent)? {
            return self.run_on_replica(replicas, index, intent, at, work);
        }
        self.run_on_primary(intent, at, work)
    }

    /// Like [`Database::run`] for a read whose work can run twice: a read that fails on a
    /// replica for a connection reason is run again on the primary. (Other reads are moved
    /// to the primary only when the replica fails before the query is sent.)
    #[track_caller]
    fn run_read<R>(&self, work: impl Fn(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        let at = Location::caller();
        #[cfg(feature = "postgres")]
        if let Some((replicas, index)) = self.route(Intent::Read)? {
            return match self.run_on_replica(replicas, index, Intent::Read, at, &work) {
                Err(e) if self.pin == Pin::Routed && crate::route::is_connection_failure(&e) => {
                    replicas
                        .router
                        .report_failure_because(index, &e.to_string());
                    tracing::debug!(replica = index, error = %e, "read retried on the primary");
                    self.run_on_primary(Intent::Read, at, work)
                }
                other => other,
            };
        }
        self.run_on_primary(Intent::Read, at, work)
    }

    /// The replica a call with `intent` goes to, or `None` for the primary. No I/O and no
    /// allocation: the router reads the state its monitor keeps.
    #[cfg(feature = "postgres")]
    fn route(&self, intent: Intent) -> Result<Option<(&Replicas, usize)>> {
        let Some(replicas) = &self.inner.replicas else {
            return match self.pin {
                Pin::Replica => Err(Error::NoReplica {
                    reasons: "no replica was configured".to_owned(),
                }),
                _ => Ok(None),
            };
        };
        let index = match (self.pin, intent) {
            (Pin::Primary, _) | (Pin::Routed, Intent::Write) => None,
            (Pin::Replica, _) => match replicas.router.pick(None)? {
                Some(index) => Some(index),
                None => {
                    return Err(Error::NoReplica {
                        reasons: "no replica is usable now".to_owned(),
                    })
                }
            },
            (Pin::Routed, Intent::Read) => {
                let last_write = self
                    .session
                    .as_ref()
                    .and_then(|s| *s.last_write.lock().unwrap_or_else(|e| e.into_inner()));
                replicas.router.pick_after(last_write)?
            }
        };
        Ok(index.map(|i| (replicas, i)))
    }

    #[cfg(feature = "postgres")]
    fn run_on_replica<R>(
        &self,
        replicas: &Replicas,
        index: usize,
        intent: Intent,
        at: &'static Location<'static>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let pool = &replicas.pools[index];
        #[allow(irrefutable_let_patterns)] // a PostgreSQL-only build has no other kind
        let BackendPool::Postgres(connections) = &pool.connections
        else {
            unreachable!("replicas are checked to be PostgreSQL when the database opens");
        };
        let _in_use = replicas.router.acquire(index);
        match pool.checkout(connections, at) {
            Ok(checkout) => self.run_on(
                pool,
                checkout,
                intent,
                Node::Replica(index),
                Backend::Postgres,
                |c| RawConnection::Postgres(c),
                work,
            ),
            // The query was not sent: the primary can take it.
            Err(e) if self.pin == Pin::Routed && crate::route::is_connection_failure(&e) => {
                replicas
                    .router
                    .report_failure_because(index, &e.to_string());
                tracing::debug!(replica = index, error = %e, "read moved to the primary");
                self.run_on_primary(intent, at, work)
            }
            Err(e) => Err(e),
        }
    }

    fn run_on_primary<R>(
        &self,
        intent: Intent,
        at: &'static Location<'static>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let node = &self.inner.primary;
        match &node.connections {
            #[cfg(feature = "postgres")]
            BackendPool::Postgres(connections) => self.run_on(
                node,
                node.checkout(connections, at)?,
                intent,
                Node::Primary,
                Backend::Postgres,
                |c| RawConnection::Postgres(c),
                |conn| {
                    let result = work(conn)?;
                    self.remember_write(conn)?;
                    Ok(result)
                },
            ),
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite(connections) => self.run_on(
                node,
                node.checkout(connections, at)?,
                intent,
                Node::Primary,
                Backend::Sqlite,
                |c| RawConnection::Sqlite(c),
                work,
            ),
        }
    }

    /// After a session's call wrote on the primary (and committed: a call is a transaction at
    /// most), remember where its reads must find the write.
    #[cfg(feature = "postgres")]
    fn remember_write(&self, conn: &mut Conn<'_>) -> Result<()> {
        let (Some(session), Some(replicas)) = (&self.session, &self.inner.replicas) else {
            return Ok(());
        };
        if conn.intent() != Intent::Write {
            return Ok(());
        }
        let Some(pg) = conn.postgres_for_runtime() else {
            return Ok(());
        };
        let written = replicas.router.read_your_writes().after_commit(pg)?;
        let mut last = session.last_write.lock().unwrap_or_else(|e| e.into_inner());
        *last = Some(match (*last, written) {
            (Some(LastWrite::Lsn(a)), LastWrite::Lsn(b)) => LastWrite::Lsn(a.max(b)),
            (_, newer) => newer,
        });
        Ok(())
    }

    /// Run `work` on `checkout`, a connection of `pool`, under the node's call deadline: a
    /// call whose server goes silent for that long is ended by the watchdog (its connection
    /// is then closed, not pooled) and fails with [`Error::Deadline`].
    #[allow(clippy::too_many_arguments)]
    fn run_on<C: R2D2Connection + Send + 'static, R>(
        &self,
        pool: &NodePool,
        mut checkout: Checkout<'_, C>,
        intent: Intent,
        node: Node,
        backend: Backend,
        wrap: impl FnOnce(&mut C) -> RawConnection<'_>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let began = checkout.began;
        let pooled = &mut *checkout;
        let statements = &pooled.statements;
        let mut call = CallState::new(intent, node, backend, statements.get());
        let deadline = pool.call_deadline();
        if let Some(d) = deadline {
            pooled.watch.begin_at(began, d, false);
        }
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
        let late = deadline.is_some() && pooled.watch.end();
        // The pre-ping skips a connection used this recently.
        pooled.last_used = Instant::now();
        drop(checkout);
        // After the connection is back: a listener's work (a cache's round trip) never holds
        // one. Also after a panic or an error, since a statement may have run before it.
        self.notify_writes(&call);
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            // The watchdog ended the call: whatever error the driver gave, the cause is the
            // silent server. (A call that completed just as it passed its deadline keeps its
            // result; its connection is closed all the same.)
            Ok(Err(_)) if late => Err(pool.deadline_error(intent == Intent::Write)),
            Ok(result) => result,
        }
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

    /// Create `M`'s table: column types for this backend, NOT NULL, defaults, primary key,
    /// named UNIQUE, CHECK and FOREIGN KEY constraints (the SQL is
    /// [`ddl::create_table_sql`]). If a table of that name exists, nothing is changed: `Ok` if
    /// it matches the model (as [`Database::verify_schema`] compares them), else
    /// [`Error::SchemaMismatch`] listing the differences.
    #[track_caller]
    pub fn create_table<M: Model>(&self) -> Result<()> {
        self.run(Intent::Write, |conn| conn.create_table::<M>())
    }

    /// How the live table of `M` differs from the model, read from the catalog of the primary
    /// (`pg_catalog`, through the search path, on PostgreSQL; SQLite's pragmas): missing or
    /// extra columns, types, nullability, primary key, UNIQUE constraints. Empty when they
    /// match.
    #[track_caller]
    pub fn verify_schema<M: Model>(&self) -> Result<Vec<SchemaDifference>> {
        self.verify_tables(&[M::TABLE])
    }

    /// [`Database::verify_schema`] for a list of models' tables in one call:
    /// `db.verify_tables(&[User::TABLE, Post::TABLE])`.
    #[track_caller]
    pub fn verify_tables(&self, tables: &[&'static TableMeta]) -> Result<Vec<SchemaDifference>> {
        // The primary: a replica may not have replayed the latest DDL yet.
        self.primary()
            .run(Intent::Read, |conn| conn.verify_tables(tables))
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
        self.run_read(|conn| conn.find::<M>(key.clone()))
    }

    /// Write every non-key field of `row` (but `server_filled` ones) to the row with its
    /// primary key, and return the row as stored; [`Error::NotFound`] if no row has that key.
    /// Every such column is written, changed or not, so a change made elsewhere since `row`
    /// was read is overwritten: to write only some fields, use [`Database::patch`].
    #[track_caller]
    pub fn update<M: Model>(&self, row: &M) -> Result<M> {
        self.run(Intent::Write, |conn| conn.update(row))
    }

    /// Write the fields of `patch` that are `Some` to the row with primary key `key`, in one
    /// `UPDATE … SET`, and return the row as stored; [`Error::NotFound`] if no row has that
    /// key. Columns left `None` are not written, so changes made to them elsewhere survive:
    /// `db.patch::<User>(7, &UserPatch { name: Some("Ada".into()), ..Default::default() })`.
    #[track_caller]
    pub fn patch<M: Model>(&self, key: M::PrimaryKey, patch: &M::Patch) -> Result<M> {
        self.run(Intent::Write, |conn| conn.patch::<M>(key, patch))
    }

    /// Delete the row with primary key `key`; [`Error::NotFound`] if there is none.
    #[track_caller]
    pub fn delete<M: Model>(&self, key: M::PrimaryKey) -> Result<()> {
        self.run(Intent::Write, |conn| conn.delete::<M>(key))
    }

    /// Every row a Diesel query returns, on whichever backend this is:
    /// `db.load(users::table.filter(users::name.eq("Ada")))`. The query must compile for every
    /// enabled backend; for one only PostgreSQL runs, use [`Database::postgres`].
    ///
    /// The query is `Clone` (Diesel's queries are, but boxed ones) so that a read whose
    /// replica fails or goes silent can run again on the primary. A boxed query loads through
    /// [`Database::read`]: `db.read(|c| c.load(boxed))`, which is not run again.
    #[track_caller]
    pub fn load<'q, Q, U>(&self, query: Q) -> Result<Vec<U>>
    where
        Q: LoadOnEveryBackend<'q, U> + Clone,
    {
        self.run_read(|conn| conn.load(query.clone()))
    }

    /// The first row a Diesel query returns (`LIMIT 1` is added), or [`Error::NotFound`].
    /// Like [`Database::load`], the query is `Clone`.
    #[track_caller]
    pub fn first<'q, Q, U>(&self, query: Q) -> Result<U>
    where
        Q: LimitDsl + Clone,
        Limit<Q>: LoadOnEveryBackend<'q, U>,
    {
        self.run_read(|conn| conn.first(query.clone()))
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
        P::Model: Model,
        <P::Model as ReadModel>::Table: FilterDsl<<P::Model as Model>::KeyFilter>,
        Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>:
            SelectDsl<P::Columns>,
        Select<Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>, P::Columns>:
            LimitDsl,
        FindAsQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        self.run_read(|conn| conn.find_as::<P>(key.clone()))
    }

    /// Every row of the model's table, reading only projection `P`'s columns. For a filter,
    /// order or limit, use the Diesel DSL: `db.load(users::table.filter(…).select(UserCard::columns()))`.
    #[track_caller]
    pub fn load_all<P>(&self) -> Result<Vec<P>>
    where
        P: Projection,
        <P::Model as ReadModel>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadOnEveryBackend<'static, P>,
    {
        self.run_read(|conn| conn.load_all::<P>())
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
        P::Model: Model,
        <P::Model as ReadModel>::Table: FilterDsl<<P::Model as Model>::KeyFilter>,
        Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>:
            SelectDsl<P::Columns>,
        Select<Filter<<P::Model as ReadModel>::Table, <P::Model as Model>::KeyFilter>, P::Columns>:
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
        <P::Model as ReadModel>::Table: SelectDsl<P::Columns>,
        LoadAllQuery<P>: LoadQuery<'static, C, P>,
    {
        self.run(Intent::Read, |conn| conn.load_all::<P>())
    }
}
