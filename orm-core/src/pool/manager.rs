//! The connection manager r2d2 and the overflow pool open connections through: each
//! connection with its statement counter, its deadline keeper, its jittered lifetime and last
//! use, the pre-ping, and the scrubbed reporting of background errors.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::r2d2::{ConnectionManager, ManageConnection, R2D2Connection};
use diesel::QueryResult;

use super::config::PoolConfig;
use super::deadline::{self, Watch};
use super::metrics::PoolMetrics;
use crate::call::StatementCounter;
use crate::url::DatabaseUrl;

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

thread_local! {
    /// The latest clock reading of the checkout running on this thread: the check of an idle
    /// connection (its age, how long it sat idle) uses it rather than reading the clock again.
    static CHECKOUT_NOW: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Run `checkout` (a pool's `get`) with `now`, read when it began, as its clock reading.
#[inline]
pub(crate) fn checkout_at<T>(now: Instant, checkout: impl FnOnce() -> T) -> T {
    let outer = CHECKOUT_NOW.with(|c| c.replace(Some(now)));
    let result = checkout();
    CHECKOUT_NOW.with(|c| c.set(outer));
    result
}

/// The checkout running on this thread read the clock again (after waiting): checks of idle
/// connections from now on use `now`.
pub(crate) fn checkout_read_clock(now: Instant) {
    CHECKOUT_NOW.with(|c| {
        if c.get().is_some() {
            c.set(Some(now));
        }
    });
}

/// A connection as the pools hold and lend it: boxed once when it is opened, so that a
/// checkout and a return move a pointer, not the whole Diesel connection (several hundred
/// bytes, moved through r2d2, the overflow pool and the checkout on every call).
pub(crate) type BoxedConn<C> = Box<PooledConn<C>>;

impl<C> PooledConn<C> {
    /// Whether the connection is past its recycle age at `now`.
    #[inline]
    fn expired_at(&self, now: Instant) -> bool {
        self.expires.is_some_and(|at| now >= at)
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
    #[inline]
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
pub(crate) type Open<C> =
    Box<dyn Fn(&ConnectionManager<C>) -> Result<(C, Watch), ManagerError> + Send + Sync>;

/// Runs on each new connection before it is used: per-backend settings and the configuration's.
pub(crate) type Setup<C> = Box<dyn Fn(&mut C) -> QueryResult<()> + Send + Sync>;

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
    pub(crate) fn new(
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
    type Connection = BoxedConn<C>;
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
        Ok(Box::new(PooledConn {
            watch,
            conn,
            statements,
            expires: self.recycle.map(|r| now + jittered(r)),
            closed,
            last_used: now,
        }))
    }

    /// Called by r2d2 on every checkout (`test_on_check_out` is on): free for a connection
    /// used within `pre_ping_idle`, one round trip otherwise, and one round trip for a
    /// connection last used before another connection of the pool was found closed (whether
    /// or not pre-ping is on). An error makes r2d2 close the connection and take the next one
    /// (or open one).
    ///
    /// The age and the idle time are measured to the checkout's latest clock reading (when it
    /// began, or last woke from a wait; inside r2d2's own wait for a connection it is opening,
    /// at most 10 ms old), so a connection found idle costs no clock read here.
    fn is_valid(&self, pooled: &mut Self::Connection) -> Result<(), Self::Error> {
        let now = CHECKOUT_NOW.with(Cell::get).unwrap_or_else(Instant::now);
        if pooled.expired_at(now) {
            return Err(ManagerError::Expired);
        }
        let suspect = self.disconnects.suspect(pooled.last_used);
        if let Some(idle) = self.pre_ping_idle.or(suspect.then_some(Duration::ZERO)) {
            // Compared as instants: cheaper than the duration since the last use.
            if suspect
                || pooled
                    .last_used
                    .checked_add(idle)
                    .is_none_or(|at| now >= at)
            {
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
    /// driver found closed, is closed then rather than kept idle. The age is measured to the
    /// end of the call that returns it (its last use, read as the call ended).
    fn has_broken(&self, pooled: &mut Self::Connection) -> bool {
        pooled.expired_at(pooled.last_used)
            || pooled.closed.load(Ordering::Relaxed)
            || pooled.watch.timed_out()
            || self.inner.has_broken(&mut pooled.conn)
    }
}

/// Reports the pool's background errors through `tracing`, with the URL redacted and any
/// password scrubbed from the driver's message (r2d2's default handler writes them to the
/// `log` crate as the driver gave them).
#[derive(Debug)]
pub(crate) struct LogScrubbed(pub(crate) DatabaseUrl, pub(crate) Arc<PoolMetrics>);

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
