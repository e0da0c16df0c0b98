//! Connection pooling: one [`NodePool`] per database server, built by [`node_pool`] from a URL
//! and a [`PoolConfig`].
//!
//! r2d2 does the pooling of the `size` connections: the idle stack, opening connections in the
//! background, check-out validation. What it cannot do is written here:
//!
//! - SQLAlchemy's sizing, `size` connections kept open and overflow opened only for a caller
//!   that would otherwise wait, closed after `overflow_idle` ([`overflow`]);
//! - no pool at all ([`PoolConfig::none`]): r2d2 always keeps what it opens, so that mode
//!   connects on each checkout through the same [`Manager`] and closes on return;
//! - a jittered lifetime: r2d2's `max_lifetime` is the same for every connection, so a pool
//!   whose connections were opened together replaces them all at once; each connection here
//!   draws its own deadline, checked when it is checked out and returned;
//! - a pre-ping only for connections idle a while: r2d2's `test_on_check_out` pings every
//!   checkout; [`Manager::is_valid`] pings only when the connection has sat unused;
//! - counting callers waiting for a connection, and naming the pool's numbers when a checkout
//!   times out (r2d2's error says only "timed out");
//! - leak detection ([`leak`]), which needs the caller's code location.

mod config;
pub(crate) mod deadline;
mod leak;
mod metrics;
mod overflow;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod socket;

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::r2d2::{ConnectionManager, ManageConnection, Pool, R2D2Connection};
use diesel::QueryResult;

pub use config::PoolConfig;
pub use metrics::PoolState;

use crate::call::{Node, StatementCounter};
use crate::error::{Error, Result};
use crate::url::{DatabaseUrl, Target};
use deadline::{Liveness, Watch};
use leak::{LeakTracker, Ticket};
use metrics::{NoteConnects, PoolMetrics, UnpooledUse};
use overflow::{Lent, QueuePool, SharedManager, TimedOut};

#[cfg(feature = "postgres")]
use diesel::pg::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::sqlite::SqliteConnection;

/// A connection as the pool keeps it.
pub(crate) struct PooledConn<C> {
    /// The deadline keeper of the connection's calls. First, so it drops before `conn`: the
    /// watchdog must let go of the socket before the connection closes it.
    pub(crate) watch: Watch,
    /// The backend's own connection.
    pub(crate) conn: C,
    /// Statements this connection has run since it was made.
    pub(crate) statements: Arc<StatementCounter>,
    /// When the connection is to be replaced (`recycle`, jittered).
    expires: Option<Instant>,
    /// Set when the driver reported the connection closed.
    closed: Arc<AtomicBool>,
    /// When the last call on this connection ended (or it was opened): set by the database's
    /// call path, read by the pre-ping.
    pub(crate) last_used: Instant,
}

impl<C> PooledConn<C> {
    fn expired(&self) -> bool {
        self.expires.is_some_and(|at| Instant::now() >= at)
    }
}

/// The instrumentation installed on every connection: it feeds the connection's counter, and
/// notes when the driver reports the connection closed (server restarted, connection killed).
/// Diesel's `is_broken` only looks at the transaction state, so without this a dead connection
/// would go back to the pool and fail every call that gets it.
struct CountStatements {
    statements: Arc<StatementCounter>,
    closed: Arc<AtomicBool>,
    disconnects: Arc<Disconnects>,
}

/// When a connection of the pool was last found closed by the server. A server that restarts
/// closes every connection at once, but each one only finds out on its next query: after the
/// first is seen closed, every connection last used before that moment is pinged before its
/// next call, however recently it was used, so a restart costs only the calls in flight.
#[derive(Debug)]
pub(crate) struct Disconnects {
    since: Instant,
    /// Nanoseconds after `since` of the latest disconnect seen; 0: none.
    latest: AtomicU64,
}

impl Disconnects {
    fn new() -> Self {
        Self {
            since: Instant::now(),
            latest: AtomicU64::new(0),
        }
    }

    fn record(&self) {
        let at = self.since.elapsed().as_nanos().max(1);
        self.latest
            .fetch_max(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Whether a connection last used at `last_used` may have been closed since.
    fn suspect(&self, last_used: Instant) -> bool {
        let latest = self.latest.load(Ordering::Relaxed);
        latest != 0
            && last_used.saturating_duration_since(self.since) < Duration::from_nanos(latest)
    }
}

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        use diesel::result::{DatabaseErrorKind, Error};
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                self.statements.0.fetch_add(1, Ordering::Relaxed);
            }
            InstrumentationEvent::FinishQuery {
                error:
                    Some(Error::DatabaseError(
                        DatabaseErrorKind::ClosedConnection
                        | DatabaseErrorKind::UnableToSendCommand,
                        _,
                    )),
                ..
            } => {
                self.closed.store(true, Ordering::Relaxed);
                self.disconnects.record();
            }
            _ => {}
        }
    }
}

/// Makes a new connection with Diesel's manager, and its [`Watch`] (for PostgreSQL, over the
/// socket it found: see `postgres::Opener`).
type Open<C> = Box<dyn Fn(&ConnectionManager<C>) -> Result<(C, Watch), ManagerError> + Send + Sync>;

/// Runs on each new connection before it is used: per-backend settings and the configuration's.
type Setup<C> = Box<dyn Fn(&mut C) -> QueryResult<()> + Send + Sync>;

/// r2d2's connection manager for `orm`: Diesel's own manager, plus the statement counter, the
/// connection's deadline and last use, and a setup run on each new connection. r2d2 keeps the
/// pooled value as the manager makes it, so a wrapper manager is the one place this state can
/// live beside the connection.
pub(crate) struct Manager<C: R2D2Connection + 'static> {
    inner: ConnectionManager<C>,
    open: Open<C>,
    setup: Setup<C>,
    /// Lifetime of a connection (`recycle`), before jitter.
    recycle: Option<Duration>,
    /// Ping a connection on checkout when idle at least this long; `None`: never.
    pre_ping_idle: Option<Duration>,
    /// Shared with every connection's instrumentation.
    disconnects: Arc<Disconnects>,
    /// The deadline of the pre-ping (whole, with no probe); `None`: unbounded.
    deadline: Option<Duration>,
}

/// Why the manager could not make or hand out a connection.
#[derive(Debug)]
pub(crate) enum ManagerError {
    /// The driver could not connect.
    Connect(diesel::r2d2::Error),
    /// The new connection's setup failed.
    Setup(diesel::result::Error),
    /// The connection failed its pre-ping: it is replaced.
    Ping(diesel::r2d2::Error),
    /// The connection reached its lifetime: it is replaced.
    Expired,
    /// The server did not answer the pre-ping or a new connection's set-up within the
    /// deadline: the connection is closed.
    Deadline(Duration),
}

impl std::fmt::Display for ManagerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "{e}"),
            Self::Setup(e) => write!(f, "setting up a new connection failed: {e}"),
            Self::Ping(e) => write!(f, "an idle connection failed its pre-ping: {e}"),
            Self::Expired => f.write_str(EXPIRED),
            Self::Deadline(d) => write!(f, "the server did not answer within {d:?}"),
        }
    }
}

const EXPIRED: &str = "connection reached its recycle age";

impl std::error::Error for ManagerError {}

impl<C: R2D2Connection + 'static> Manager<C> {
    fn new(
        url: String,
        config: &PoolConfig,
        one_connection: bool,
        open: Open<C>,
        setup: Setup<C>,
    ) -> Self {
        // The one connection of an in-memory SQLite database is the database: never replaced.
        let keep = |d| if one_connection { None } else { d };
        Self {
            inner: ConnectionManager::new(url),
            open,
            setup,
            recycle: keep(config.recycle),
            pre_ping_idle: keep(config.pre_ping.then_some(config.pre_ping_idle)),
            disconnects: Arc::new(Disconnects::new()),
            deadline: config.deadline,
        }
    }
}

/// `recycle` shortened by a random 0–10%, so connections opened together expire apart.
fn jittered(recycle: Duration) -> Duration {
    use std::hash::{BuildHasher, Hasher, RandomState};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    recycle.mul_f64(1.0 - 0.1 * fraction)
}

impl<C: R2D2Connection + Send + 'static> ManageConnection for Manager<C> {
    type Connection = PooledConn<C>;
    type Error = ManagerError;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let (mut conn, watch) = (self.open)(&self.inner)?;
        let statements = Arc::new(StatementCounter::default());
        let closed = Arc::new(AtomicBool::new(false));
        conn.set_instrumentation(CountStatements {
            statements: Arc::clone(&statements),
            closed: Arc::clone(&closed),
            disconnects: Arc::clone(&self.disconnects),
        });
        let (set, late) = match self.deadline {
            Some(d) => watch.call(d, true, || (self.setup)(&mut conn)),
            None => ((self.setup)(&mut conn), false),
        };
        if late {
            return Err(ManagerError::Deadline(self.deadline.unwrap_or_default()));
        }
        set.map_err(ManagerError::Setup)?;
        let now = Instant::now();
        Ok(PooledConn {
            watch,
            conn,
            statements,
            expires: self.recycle.map(|r| now + jittered(r)),
            closed,
            last_used: now,
        })
    }

    /// Called by r2d2 on every checkout (`test_on_check_out` is on): free for a connection
    /// used within `pre_ping_idle`, one round trip otherwise, and one round trip for a
    /// connection last used before another connection of the pool was found closed (whether
    /// or not pre-ping is on). An error makes r2d2 close the connection and take the next one
    /// (or open one).
    fn is_valid(&self, pooled: &mut Self::Connection) -> Result<(), Self::Error> {
        if pooled.expired() {
            return Err(ManagerError::Expired);
        }
        let suspect = self.disconnects.suspect(pooled.last_used);
        if let Some(idle) = self.pre_ping_idle.or(suspect.then_some(Duration::ZERO)) {
            if suspect || pooled.last_used.elapsed() >= idle {
                // Within the node's deadline, and within what is left of the checkout's: a
                // checkout that finds several stale connections of a hung server pings each.
                let budget = match (self.deadline, deadline::checkout_left()) {
                    (Some(d), Some(left)) => Some(d.min(left)),
                    (d, _) => d,
                };
                let (pinged, late) = match budget {
                    Some(d) if d.is_zero() => (Ok(()), true),
                    Some(d) => pooled
                        .watch
                        .call(d, true, || self.inner.is_valid(&mut pooled.conn)),
                    None => (self.inner.is_valid(&mut pooled.conn), false),
                };
                if late {
                    return Err(ManagerError::Deadline(self.deadline.unwrap_or_default()));
                }
                pinged.map_err(ManagerError::Ping)?;
                pooled.last_used = Instant::now();
            }
        }
        Ok(())
    }

    /// Called by r2d2 when a connection comes back: a connection past its deadline, or one the
    /// driver found closed, is closed then rather than kept idle.
    fn has_broken(&self, pooled: &mut Self::Connection) -> bool {
        pooled.expired()
            || pooled.closed.load(Ordering::Relaxed)
            || pooled.watch.timed_out()
            || self.inner.has_broken(&mut pooled.conn)
    }
}

/// Reports the pool's background errors through `tracing`, with the URL redacted and any
/// password scrubbed from the driver's message (r2d2's default handler writes them to the
/// `log` crate as the driver gave them).
#[derive(Debug)]
struct LogScrubbed(DatabaseUrl, Arc<PoolMetrics>);

impl r2d2::HandleError<ManagerError> for LogScrubbed {
    fn handle_error(&self, error: ManagerError) {
        let url = &self.0.redacted;
        let text = self.0.scrub(&error.to_string());
        if matches!(error, ManagerError::Connect(_) | ManagerError::Setup(_)) {
            self.1.connect_failed(Some(text.clone()));
        }
        match error {
            ManagerError::Expired => tracing::debug!(%url, "connection recycled"),
            ManagerError::Ping(_) | ManagerError::Deadline(_) => {
                tracing::info!(%url, error = %text, "idle connection found dead, replaced")
            }
            ManagerError::Connect(_) | ManagerError::Setup(_) => {
                tracing::warn!(%url, error = %text, "connection attempt failed")
            }
        }
    }
}

/// The connections of one node, for one backend.
pub(crate) enum Connections<C: R2D2Connection + Send + 'static> {
    /// A pool: r2d2 for the `size` connections, overflow beside it.
    Pooled(QueuePool<C>),
    /// No pool: a connection per checkout.
    Unpooled(Manager<C>),
}

/// A node's connections, of whichever backend its URL names.
pub(crate) enum BackendPool {
    #[cfg(feature = "postgres")]
    Postgres(Connections<PgConnection>),
    #[cfg(feature = "sqlite")]
    Sqlite(Connections<SqliteConnection>),
}

/// A node's connections, and the signs of life of its server (PostgreSQL).
type Built = (BackendPool, Option<Arc<Liveness>>);

/// The pool of one database server (a node): its connections, its configuration as applied,
/// its counters and its leak tracking.
pub(crate) struct NodePool {
    url: DatabaseUrl,
    /// The configuration in force (for an in-memory SQLite database: one connection).
    config: PoolConfig,
    pub(crate) connections: BackendPool,
    /// When the server last showed a sign of life (PostgreSQL); shared with the watchdog.
    liveness: Option<Arc<Liveness>>,
    metrics: Arc<PoolMetrics>,
    leaks: Option<Arc<LeakTracker>>,
}

/// The pool for the server at `url`, configured by `config` (checked first). PostgreSQL
/// connects once before returning, so a wrong URL, host or password fails here with an error
/// naming the URL; so does a SQLite path that cannot be opened.
pub(crate) fn node_pool(url: &DatabaseUrl, config: &PoolConfig) -> Result<NodePool> {
    config.validate()?;
    let metrics = Arc::new(PoolMetrics::default());
    let mut config = config.clone();
    let (connections, liveness) = match &url.target {
        Target::Postgres { url: raw } => postgres(url, raw, &config, &metrics)?,
        Target::SqliteMemory => {
            if !config.pooled {
                return Err(Error::InvalidConfig {
                    field: "pooled",
                    reason: "an in-memory SQLite database lives in its one connection, so \
                             without a pool every call would get a new, empty database; use a \
                             SQLite file, or the default pool"
                        .to_owned(),
                });
            }
            config.size = 1;
            config.max_overflow = 0;
            sqlite(url, ":memory:", &config, &metrics, true)?
        }
        Target::SqliteFile { path } => sqlite(url, path, &config, &metrics, false)?,
    };
    let leaks = config
        .leak_threshold
        .map(|threshold| LeakTracker::start(url.redacted.clone(), threshold));
    Ok(NodePool {
        url: url.clone(),
        config,
        connections,
        liveness,
        metrics,
        leaks,
    })
}

#[cfg(feature = "postgres")]
fn postgres(
    url: &DatabaseUrl,
    raw: &str,
    config: &PoolConfig,
    metrics: &Arc<PoolMetrics>,
) -> Result<Built> {
    use diesel::connection::SimpleConnection;
    let libpq_url = match config.connect_timeout_secs() {
        Some(secs) => url.with_libpq_param("connect_timeout", &secs.to_string()),
        None => raw.to_owned(),
    };
    let statement_timeout = config
        .statement_timeout
        .map(|t| format!("SET statement_timeout = {}", t.as_millis().max(1)));
    let opener = Arc::new(postgres::Opener::new(
        url.redacted.to_string(),
        url.tcp_ports(),
        config.prepared_statements,
    ));
    let liveness = Arc::clone(&opener.liveness);
    let deadline = config.deadline;
    let open: Open<PgConnection> = Box::new(move |inner| {
        use postgres::OpenError;
        match opener.open(deadline, || inner.connect()) {
            Ok(opened) => Ok(opened),
            Err(OpenError::Connect(e)) => Err(ManagerError::Connect(e)),
            Err(OpenError::Setup(e)) => Err(ManagerError::Setup(e)),
            Err(OpenError::Deadline(d)) => Err(ManagerError::Deadline(d)),
        }
    });
    let setup: Setup<PgConnection> = Box::new(move |conn| match &statement_timeout {
        Some(sql) => conn.batch_execute(sql),
        None => Ok(()),
    });
    let manager = Manager::new(libpq_url, config, false, open, setup);
    check_connects(url, &manager)?;
    Ok((
        BackendPool::Postgres(connections(url, config, manager, metrics, false)?),
        Some(liveness),
    ))
}

#[cfg(not(feature = "postgres"))]
fn postgres(
    url: &DatabaseUrl,
    _raw: &str,
    _config: &PoolConfig,
    _metrics: &Arc<PoolMetrics>,
) -> Result<Built> {
    Err(not_compiled_in(url, crate::meta::Backend::Postgres))
}

/// SQLite: wait up to `timeout` for another connection's lock instead of failing at once,
/// enforce foreign keys, and for files write-ahead logging (readers don't block the writer).
#[cfg(feature = "sqlite")]
fn sqlite(
    url: &DatabaseUrl,
    path: &str,
    config: &PoolConfig,
    metrics: &Arc<PoolMetrics>,
    memory: bool,
) -> Result<Built> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let mut pragmas = format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON;",
        config.timeout.as_millis().min(i32::MAX as u128)
    );
    if !memory {
        pragmas.push_str(" PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;");
    }
    use diesel::connection::CacheSize;
    let cache = config.prepared_statements != Some(false);
    let setup: Setup<SqliteConnection> = Box::new(move |conn| {
        if !cache {
            conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        }
        conn.batch_execute(&pragmas)
    });
    let open: Open<SqliteConnection> = Box::new(|inner| {
        let conn = inner.connect().map_err(ManagerError::Connect)?;
        Ok((conn, Watch::new(None, Liveness::new())))
    });
    let manager = Manager::new(path.to_owned(), config, memory, open, setup);
    // For a file, open it once now, so a bad path fails at once with SQLite's own message. An
    // in-memory database is checked by the pool's own first connection.
    if !memory {
        check_connects(url, &manager)?;
    }
    Ok((
        BackendPool::Sqlite(connections(url, config, manager, metrics, memory)?),
        None,
    ))
}

#[cfg(not(feature = "sqlite"))]
fn sqlite(
    url: &DatabaseUrl,
    _path: &str,
    _config: &PoolConfig,
    _metrics: &Arc<PoolMetrics>,
    _memory: bool,
) -> Result<Built> {
    Err(not_compiled_in(url, crate::meta::Backend::Sqlite))
}

#[allow(dead_code)] // used only when a backend's feature is off
fn not_compiled_in(url: &DatabaseUrl, backend: crate::meta::Backend) -> Error {
    Error::InvalidUrl {
        url: url.redacted.clone(),
        reason: format!(
            "this build of orm has no {backend} support; enable the `{}` cargo feature",
            backend.name()
        ),
    }
}

/// Opens one connection and closes it: a wrong URL fails now, with the driver's reason.
fn check_connects<C: R2D2Connection + Send + 'static>(
    url: &DatabaseUrl,
    manager: &Manager<C>,
) -> Result<()> {
    manager
        .connect()
        .map(drop)
        .map_err(|e| connect_error(url, &e))
}

fn connect_error(url: &DatabaseUrl, error: &ManagerError) -> Error {
    Error::Connect {
        url: url.redacted.clone(),
        message: url.scrub(error.to_string().trim()),
    }
}

/// The pool for `config`, or the no-pool mode.
///
/// The `size` connections are an r2d2 pool, set up so:
/// - `max_size(size)`, and `min_idle` left unset (so `size` too): r2d2 opens `size` connections
///   when it is built, reopens one in the background when one is closed, and never holds more.
///   The overflow connections are not r2d2's ([`overflow`] says why and how they work).
/// - no `idle_timeout`: the `size` connections stay open however long they sit idle, as
///   SQLAlchemy keeps its `pool_size` ones.
/// - `max_lifetime(recycle)`: a backstop for idle connections nobody checks out, closed by
///   r2d2's reaper (every 30 s); the jittered deadline of each connection is checked on
///   checkout and return.
/// - `test_on_check_out(true)`: calls [`Manager::is_valid`], which costs nothing unless the
///   connection is past its deadline or idle long enough to be pinged.
/// - r2d2's own thread pool (3 threads per pool) opens connections. One thread pool shared by
///   every pool would save threads, but a server that does not answer would then hold every
///   shared thread for `connect_timeout` per attempt and starve the other nodes' pools, and
///   r2d2 0.8 never cancels a dropped pool's reaper job on a shared thread pool.
fn connections<C: R2D2Connection + Send + 'static>(
    url: &DatabaseUrl,
    config: &PoolConfig,
    manager: Manager<C>,
    metrics: &Arc<PoolMetrics>,
    one_connection: bool,
) -> Result<Connections<C>> {
    if !config.pooled {
        return Ok(Connections::Unpooled(manager));
    }
    let errors = || LogScrubbed(url.clone(), Arc::clone(metrics));
    let manager = Arc::new(manager);
    let pooled = |base| {
        Connections::Pooled(QueuePool::new(
            base,
            Arc::clone(&manager),
            config.size,
            config.max_overflow,
            config.overflow_idle,
            errors(),
        ))
    };
    if config.size == 0 {
        // r2d2 cannot hold no connection: every connection is then an overflow one.
        return Ok(pooled(None));
    }
    let shared = SharedManager(Arc::clone(&manager));
    let max_lifetime = if one_connection { None } else { config.recycle };
    let builder = Pool::builder()
        .max_size(config.size)
        .idle_timeout(None)
        .max_lifetime(max_lifetime)
        .connection_timeout(config.timeout)
        .test_on_check_out(true)
        .error_handler(Box::new(errors()))
        .event_handler(Box::new(NoteConnects(Arc::clone(metrics))));
    if one_connection {
        // The one connection is the database: the pool must hold it before anything runs.
        let pool = builder.build(shared).map_err(|e| Error::Connect {
            url: url.redacted.clone(),
            message: url.scrub(&e.to_string()),
        })?;
        return Ok(pooled(Some(pool)));
    }
    Ok(pooled(Some(builder.build_unchecked(shared))))
}

/// A connection checked out of a [`NodePool`] for one call. Dropping it returns the
/// connection to the pool (or, with no pool, closes it), then records the return for leak
/// detection.
pub(crate) struct Checkout<'p, C: R2D2Connection + Send + 'static> {
    conn: Held<'p, C>,
    /// When the call started waiting for the connection: its deadline counts from here.
    pub(crate) began: Instant,
    _ticket: Option<Ticket<'p>>,
}

enum Held<'p, C: R2D2Connection + Send + 'static> {
    Pooled(Lent<'p, C>),
    /// Closed, then no longer counted as in use, when dropped.
    Unpooled {
        conn: PooledConn<C>,
        _in_use: UnpooledUse<'p>,
    },
}

impl<C: R2D2Connection + Send + 'static> std::ops::Deref for Checkout<'_, C> {
    type Target = PooledConn<C>;

    fn deref(&self) -> &PooledConn<C> {
        match &self.conn {
            Held::Pooled(c) => c,
            Held::Unpooled { conn, .. } => conn,
        }
    }
}

impl<C: R2D2Connection + Send + 'static> std::ops::DerefMut for Checkout<'_, C> {
    fn deref_mut(&mut self) -> &mut PooledConn<C> {
        match &mut self.conn {
            Held::Pooled(c) => c,
            Held::Unpooled { conn, .. } => conn,
        }
    }
}

impl NodePool {
    /// A connection for one call made by the code at `at`: from the pool (waiting up to
    /// `timeout`, then [`Error::PoolTimeout`]), or newly opened with no pool. The time it took
    /// is counted in the pool's metrics whatever the outcome.
    pub(crate) fn checkout<'p, C: R2D2Connection + Send + 'static>(
        &'p self,
        connections: &'p Connections<C>,
        at: &'static Location<'static>,
    ) -> Result<Checkout<'p, C>> {
        let began = Instant::now();
        let waiting = self.metrics.wait();
        let conn = match connections {
            Connections::Pooled(pool) => match self.get(pool) {
                Ok(conn) => Held::Pooled(conn),
                Err(error) => {
                    match error {
                        Error::PoolTimeout { .. } => self.metrics.timed_out(began.elapsed()),
                        _ => self.metrics.failed(began.elapsed()),
                    }
                    return Err(error);
                }
            },
            Connections::Unpooled(manager) => match manager.connect() {
                Ok(conn) => Held::Unpooled {
                    conn,
                    _in_use: self.metrics.unpooled_use(),
                },
                Err(e) => {
                    self.metrics.failed(began.elapsed());
                    return Err(connect_error(&self.url, &e));
                }
            },
        };
        self.metrics.checked_out(began.elapsed());
        drop(waiting);
        Ok(Checkout {
            conn,
            began,
            _ticket: self.leaks.as_ref().map(|l| l.checked_out(at)),
        })
    }

    /// A connection from `pool`, waiting up to `timeout`, or less when the server goes silent:
    /// past the call deadline, a caller waits on only while the server shows signs of life
    /// (calls on it ending, probes answered). Otherwise, with every connection stuck on a hung
    /// server and new ones unable to connect, callers would wait the whole `timeout`.
    fn get<'p, C: R2D2Connection + Send + 'static>(
        &self,
        pool: &'p QueuePool<C>,
    ) -> Result<Lent<'p, C>> {
        let timeout = self.config.timeout;
        let (Some(deadline), Some(liveness)) = (self.config.deadline, &self.liveness) else {
            return pool
                .get(timeout)
                .map_err(|TimedOut| self.timeout_error(pool.counts()));
        };
        let start = Instant::now();
        loop {
            let left = timeout.saturating_sub(start.elapsed());
            let wait = left.min(deadline);
            match deadline::checkout_by(Instant::now() + wait, || pool.get(wait)) {
                Ok(conn) => return Ok(conn),
                Err(TimedOut) if start.elapsed() >= timeout => {
                    return Err(self.timeout_error(pool.counts()))
                }
                Err(TimedOut) if liveness.alive_within(deadline) => continue,
                Err(TimedOut) => return Err(self.deadline_error(false)),
            }
        }
    }

    /// How long a call on this node may go without a sign of life from the server; `None`
    /// for SQLite, or with no deadline configured.
    pub(crate) fn call_deadline(&self) -> Option<Duration> {
        self.liveness.as_ref().and(self.config.deadline)
    }

    /// The error of a call that passed this node's deadline.
    pub(crate) fn deadline_error(&self, outcome_unknown: bool) -> Error {
        Error::Deadline {
            url: self.url.redacted.clone(),
            deadline: self.config.deadline.unwrap_or_default(),
            outcome_unknown,
        }
    }

    /// The timeout error, with the pool's numbers as they are now (`open`, `idle`; this caller
    /// still counted as waiting) and the last error met opening a connection, if none was
    /// opened since.
    fn timeout_error(&self, (open, idle): (u32, u32)) -> Error {
        Error::PoolTimeout {
            url: self.url.redacted.clone(),
            timeout: self.config.timeout,
            size: self.config.size,
            max_overflow: self.config.max_overflow,
            in_use: open.saturating_sub(idle),
            waiting: self.metrics.waiting(),
            last_error: self.metrics.last_connect_error(),
        }
    }

    /// This pool's numbers now.
    pub(crate) fn state(&self, node: Node) -> PoolState {
        fn counts<C: R2D2Connection + Send + 'static>(c: &Connections<C>) -> Option<(u32, u32)> {
            match c {
                Connections::Pooled(pool) => Some(pool.counts()),
                Connections::Unpooled(_) => None,
            }
        }
        let counts = match &self.connections {
            #[cfg(feature = "postgres")]
            BackendPool::Postgres(c) => counts(c),
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite(c) => counts(c),
        };
        self.metrics.state(node, counts)
    }
}
