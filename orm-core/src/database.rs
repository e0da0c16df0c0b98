//! `Database`: one handle over a pooled PostgreSQL or SQLite database. It is an
//! [`Executor`]: every operation checks out a connection context at one choke point,
//! [`Database::run_call`], which knows what the call declared (read, write, the tables it
//! writes), records it and reports its writes; the operations themselves are written once,
//! over the trait.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use diesel::r2d2::R2D2Connection;
use diesel::Connection;

use crate::bulk::{BulkOptions, BulkReport};
use crate::call::{Intent, Node};
use crate::conn::{BackendConn, BackendConnection, CallState, Conn, RawConnection};
use crate::error::{Error, Result};
use crate::exec::{Access, BackendExecutor, Executor};
use crate::listen::WriteListener;
use crate::meta::{Backend, RedactedUrl};
use crate::model::Model;
use crate::pool::{node_pool, BackendPool, Checkout, NodePool, PoolConfig, PoolState};
#[cfg(feature = "postgres")]
use crate::route::{LastWrite, ReadPolicy, ReplicaSet, ReplicaStatus, RouterConfig};
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
    /// and [`Executor::with_connection`](crate::Executor::with_connection) go to the primary. Replicas are numbered in the order
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
#[inline(always)]
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
    #[inline]
    fn notify_writes(&self, call: &CallState) {
        let written = call.written();
        if written.tables.is_empty() && !written.unknown {
            return;
        }
        self.notify_listeners(written);
    }

    #[inline(never)]
    fn notify_listeners(&self, written: crate::listen::Written<'_>) {
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

    /// The one road every call takes ([`Executor::run`] on a `&Database`): choose the node (a
    /// replica for a read when one is usable, else the primary), check out a connection, wrap
    /// it in a [`Conn`] that knows the call's intent, node and statement count, and run `work`
    /// on it; then record what it declared and report its writes. `#[track_caller]` here
    /// and on every public method that leads here makes [`Location::caller`] the user's call,
    /// which leak detection reports.
    #[track_caller]
    fn run_call<R>(
        &self,
        access: Access,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let at = Location::caller();
        #[cfg(feature = "postgres")]
        if let Some((replicas, index)) = self.route(access)? {
            return self.run_on_replica(replicas, index, access, at, work);
        }
        self.run_on_primary(access, at, work)
    }

    /// Like [`Database::run_call`] for a read whose work can run twice: a read that fails on a
    /// replica for a connection reason is run again on the primary. (Other reads are moved
    /// to the primary only when the replica fails before the query is sent.)
    #[track_caller]
    fn run_read_retrying<R>(&self, work: impl Fn(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        let at = Location::caller();
        #[cfg(feature = "postgres")]
        if let Some((replicas, index)) = self.route(Access::READ)? {
            return match self.run_on_replica(replicas, index, Access::READ, at, &work) {
                Err(e) if self.pin == Pin::Routed && crate::route::is_connection_failure(&e) => {
                    replicas
                        .router
                        .report_failure_because(index, &e.to_string());
                    tracing::debug!(replica = index, error = %e, "read retried on the primary");
                    self.run_on_primary(Access::READ, at, work)
                }
                other => other,
            };
        }
        self.run_on_primary(Access::READ, at, work)
    }

    /// The replica a call with `intent` goes to, or `None` for the primary. No I/O and no
    /// allocation: the router reads the state its monitor keeps.
    #[cfg(feature = "postgres")]
    #[inline]
    fn route(&self, access: Access) -> Result<Option<(&Replicas, usize)>> {
        if access.needs_primary() {
            return Ok(None);
        }
        let Some(replicas) = &self.inner.replicas else {
            return match self.pin {
                Pin::Replica => Err(Error::NoReplica {
                    reasons: "no replica was configured".to_owned(),
                }),
                _ => Ok(None),
            };
        };
        let index = match (self.pin, access.intent()) {
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
        access: Access,
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
        // Matched in place: the checkout is used where it was returned, never moved.
        let mut checkout = pool.checkout(connections, at);
        match checkout {
            Ok(ref mut checkout) => self.run_on(
                pool,
                checkout,
                access,
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
                self.run_on_primary(access, at, work)
            }
            Err(e) => Err(e),
        }
    }

    fn run_on_primary<R>(
        &self,
        access: Access,
        at: &'static Location<'static>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let node = &self.inner.primary;
        match &node.connections {
            #[cfg(feature = "postgres")]
            BackendPool::Postgres(connections) => {
                // Matched in place: the checkout is used where it was returned, never moved.
                let mut checkout = node.checkout(connections, at);
                let checkout = match checkout {
                    Ok(ref mut checkout) => checkout,
                    Err(e) => return Err(e),
                };
                self.run_on(
                    node,
                    checkout,
                    access,
                    Node::Primary,
                    Backend::Postgres,
                    |c| RawConnection::Postgres(c),
                    |conn| {
                        // The result stays where it is: no unwrapping and wrapping again.
                        let result = work(conn);
                        if result.is_ok() {
                            self.remember_write(conn)?;
                        }
                        result
                    },
                )
            }
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite(connections) => {
                let mut checkout = node.checkout(connections, at);
                let checkout = match checkout {
                    Ok(ref mut checkout) => checkout,
                    Err(e) => return Err(e),
                };
                self.run_on(
                    node,
                    checkout,
                    access,
                    Node::Primary,
                    Backend::Sqlite,
                    |c| RawConnection::Sqlite(c),
                    work,
                )
            }
        }
    }

    /// After a session's call wrote on the primary (and committed: a call is a transaction at
    /// most), remember where its reads must find the write.
    #[cfg(feature = "postgres")]
    #[inline]
    fn remember_write(&self, conn: &mut Conn<'_>) -> Result<()> {
        let (Some(session), Some(replicas)) = (&self.session, &self.inner.replicas) else {
            return Ok(());
        };
        if conn.intent() != Intent::Write {
            return Ok(());
        }
        self.remember_session_write(session, replicas, conn)
    }

    #[cfg(feature = "postgres")]
    #[inline(never)]
    fn remember_session_write(
        &self,
        session: &Session,
        replicas: &Replicas,
        conn: &mut Conn<'_>,
    ) -> Result<()> {
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
        checkout: &mut Checkout<'_, C>,
        access: Access,
        node: Node,
        backend: Backend,
        wrap: impl FnOnce(&mut C) -> RawConnection<'_>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        let began = checkout.began;
        let pooled = &mut **checkout;
        let statements = &pooled.statements;
        let statements_at_start = statements.get();
        let mut call = CallState::new(access.intent(), node, backend, statements_at_start);
        let deadline = pool.call_deadline();
        if let Some(d) = deadline {
            pooled.watch.begin_at(began, d, false);
        }
        // The pooled connection is returned before a panic from `work` goes on, so the pool
        // sees a clean connection rather than one dropped while unwinding, which it discards.
        let outcome = guard_panics(&mut pooled.conn, |c| {
            let result = Conn::new(wrap(c), &mut call, statements).run(access, work);
            call.finish(statements.get() > statements_at_start);
            // The call's summary is built only for a subscriber that wants it.
            if tracing::enabled!(tracing::Level::TRACE) {
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
            }
            result
        });
        // One clock read for both: the call's end, and the last use the pre-ping looks at.
        let ended = Instant::now();
        let late = deadline.is_some() && pooled.watch.end_at(ended);
        // The pre-ping skips a connection used this recently.
        pooled.last_used = ended;
        checkout.release();
        // After the connection is back: a listener's work (a cache's round trip) never holds
        // one. Also after a panic or an error, since a statement may have run before it.
        self.notify_writes(&call);
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            // The watchdog ended the call: whatever error the driver gave, the cause is the
            // silent server. (A call that completed just as it passed its deadline keeps its
            // result; its connection is closed all the same.)
            Ok(Err(_)) if late => Err(pool.deadline_error(access.intent() == Intent::Write)),
            Ok(result) => result,
        }
    }

    /// [`Executor::bulk_insert`], kept as a method of its own so that the derive's
    /// `User::bulk_insert(&db, rows, options)` needs no import.
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
        Executor::bulk_insert::<M, I>(self, rows, options)
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
    /// # use orm_core::{BackendExecutor, Database};
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

/// A [`Database`] known to be of backend `C`: queries that only `C` can run
/// ([`BackendExecutor`]), each through the same choke point as every other call, and the whole
/// [`Executor`] API. From [`Database::postgres`] or [`Database::sqlite`].
pub struct OnBackend<'db, C> {
    db: &'db Database,
    backend: PhantomData<fn() -> C>,
}

impl<C> Clone for OnBackend<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for OnBackend<'_, C> {}

impl<C> std::fmt::Debug for OnBackend<'_, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnBackend").field("db", self.db).finish()
    }
}

/// The queries only backend `C` runs. Implemented for the handle itself (not a reference to
/// it), so that `db.postgres()?.load(q)` finds this `load` before [`Executor::load`].
impl<C: BackendConnection> BackendExecutor<C> for OnBackend<'_, C> {
    #[track_caller]
    fn run_on_backend<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut BackendConn<'_, C>) -> Result<R>,
    ) -> Result<R> {
        self.db.run(access, |conn| work(&mut conn.on::<C>()?))
    }
}

/// Every operation, as on the database.
impl<C: BackendConnection> Executor for &OnBackend<'_, C> {
    #[track_caller]
    fn run<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        self.db.run(access, work)
    }

    #[track_caller]
    fn run_read<R>(self, work: impl Fn(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.db.run_read(work)
    }
}

/// The pool: each call checks out a connection of the node it goes to, under that node's
/// deadline, and reports its writes to the write listeners once the connection is back.
impl Executor for &Database {
    #[track_caller]
    fn run<R>(
        self,
        access: impl Into<Access>,
        work: impl FnOnce(&mut Conn<'_>) -> Result<R>,
    ) -> Result<R> {
        self.run_call(access.into(), work)
    }

    #[track_caller]
    fn run_read<R>(self, work: impl Fn(&mut Conn<'_>) -> Result<R>) -> Result<R> {
        self.run_read_retrying(work)
    }
}
