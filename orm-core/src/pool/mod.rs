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
mod manager;
mod metrics;
mod overflow;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod socket;

use std::panic::Location;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::r2d2::{ManageConnection, Pool, R2D2Connection};

pub use config::PoolConfig;
pub use metrics::PoolState;

use crate::call::Node;
use crate::error::{Error, Result};
use crate::url::{DatabaseUrl, Target};
use deadline::{Liveness, Watch};
use leak::{LeakTracker, Ticket};
pub(crate) use manager::PooledConn;
use manager::{LogScrubbed, Manager, ManagerError, Open, Setup};
use metrics::{NoteConnects, PoolMetrics, UnpooledUse};
use overflow::{Lent, QueuePool, SharedManager, TimedOut};

#[cfg(feature = "postgres")]
use diesel::pg::PgConnection;
#[cfg(feature = "sqlite")]
use diesel::sqlite::SqliteConnection;

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

/// A connection checked out of a [`NodePool`] for one call. Dropping it (or
/// [`Checkout::release`]) returns the connection to the pool (or, with no pool, closes it),
/// then records the return for leak detection.
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
        conn: manager::BoxedConn<C>,
        _in_use: UnpooledUse<'p>,
    },
    /// Given back by [`Checkout::release`].
    Released,
}

impl<C: R2D2Connection + Send + 'static> Checkout<'_, C> {
    /// Gives the connection back now, in place: the checkout (a few hundred bytes) is not
    /// moved to be dropped. It derefs to no connection afterwards.
    #[inline]
    pub(crate) fn release(&mut self) {
        self.conn = Held::Released;
        self._ticket = None;
    }
}

impl<C: R2D2Connection + Send + 'static> std::ops::Deref for Checkout<'_, C> {
    type Target = PooledConn<C>;

    fn deref(&self) -> &PooledConn<C> {
        match &self.conn {
            Held::Pooled(c) => c,
            Held::Unpooled { conn, .. } => conn,
            Held::Released => unreachable!("a released checkout holds no connection"),
        }
    }
}

impl<C: R2D2Connection + Send + 'static> std::ops::DerefMut for Checkout<'_, C> {
    fn deref_mut(&mut self) -> &mut PooledConn<C> {
        match &mut self.conn {
            Held::Pooled(c) => c,
            Held::Unpooled { conn, .. } => conn,
            Held::Released => unreachable!("a released checkout holds no connection"),
        }
    }
}

impl NodePool {
    /// A connection for one call made by the code at `at`: from the pool (waiting up to
    /// `timeout`, then [`Error::PoolTimeout`]), or newly opened with no pool. The time it took
    /// is counted in the pool's metrics whatever the outcome.
    #[inline]
    pub(crate) fn checkout<'p, C: R2D2Connection + Send + 'static>(
        &'p self,
        connections: &'p Connections<C>,
        at: &'static Location<'static>,
    ) -> Result<Checkout<'p, C>> {
        let began = Instant::now();
        let waiting = self.metrics.wait();
        let conn = match connections {
            Connections::Pooled(pool) => {
                match manager::checkout_at(began, || self.get(pool, began)) {
                    Ok(conn) => {
                        // Found idle at once and not pinged (a ping marks it used after
                        // `began`): a wait of well under a microsecond, counted as none, so
                        // that the common checkout reads the clock once.
                        let waited = if conn.at_once && conn.last_used < began {
                            Duration::ZERO
                        } else {
                            began.elapsed()
                        };
                        self.metrics.checked_out(waited);
                        Held::Pooled(conn)
                    }
                    Err(error) => {
                        match error {
                            Error::PoolTimeout { .. } => self.metrics.timed_out(began.elapsed()),
                            _ => self.metrics.failed(began.elapsed()),
                        }
                        return Err(error);
                    }
                }
            }
            Connections::Unpooled(manager) => match manager.connect() {
                Ok(conn) => {
                    self.metrics.checked_out(began.elapsed());
                    Held::Unpooled {
                        conn,
                        _in_use: self.metrics.unpooled_use(),
                    }
                }
                Err(e) => {
                    self.metrics.failed(began.elapsed());
                    return Err(connect_error(&self.url, &e));
                }
            },
        };
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
    ///
    /// `began` is when the checkout started (read by the caller): the first wait counts from
    /// it, so a connection found idle costs no clock read here.
    #[inline]
    fn get<'p, C: R2D2Connection + Send + 'static>(
        &self,
        pool: &'p QueuePool<C>,
        began: Instant,
    ) -> Result<Lent<'p, C>> {
        let timeout = self.config.timeout;
        let (Some(deadline), Some(liveness)) = (self.config.deadline, &self.liveness) else {
            return pool
                .get(began, timeout)
                .map_err(|TimedOut| self.timeout_error(pool.counts()));
        };
        let (mut from, mut within) = (began, timeout.min(deadline));
        loop {
            match deadline::checkout_by(from, within, || pool.get(from, within)) {
                Ok(conn) => return Ok(conn),
                Err(TimedOut) if began.elapsed() >= timeout => {
                    return Err(self.timeout_error(pool.counts()))
                }
                Err(TimedOut) if liveness.alive_within(deadline) => {
                    let now = Instant::now();
                    manager::checkout_read_clock(now);
                    let left = timeout.saturating_sub(now.saturating_duration_since(began));
                    (from, within) = (now, left.min(deadline));
                }
                Err(TimedOut) => return Err(self.deadline_error(false)),
            }
        }
    }

    /// How long a call on this node may go without a sign of life from the server; `None`
    /// for SQLite, or with no deadline configured.
    #[inline]
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
