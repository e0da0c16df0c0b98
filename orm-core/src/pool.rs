//! The pooled connection: a Diesel connection made by r2d2, with the per-connection state the
//! connection context reads (how many statements it has run).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel::r2d2::{ConnectionManager, ManageConnection, R2D2Connection};
use diesel::QueryResult;

/// A connection as the pool keeps it.
pub(crate) struct PooledConn<C> {
    /// The backend's own connection.
    pub(crate) conn: C,
    /// Statements this connection has run since it was made.
    pub(crate) statements: Arc<StatementCounter>,
}

/// Counts the statements a connection runs. Installed on each connection as its own Diesel
/// [`Instrumentation`] when the connection is made (never the process-global default), so
/// counting costs one relaxed atomic add per statement and sees every statement, whichever API
/// sent it (`orm`'s methods, Diesel code given the raw connection, `batch_execute`).
#[derive(Debug, Default)]
pub(crate) struct StatementCounter(AtomicU64);

impl StatementCounter {
    /// Statements counted so far.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The instrumentation installed on every connection: it feeds the connection's counter.
struct CountStatements(Arc<StatementCounter>);

impl Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            self.0 .0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// r2d2's connection manager for `orm`: Diesel's own manager, plus the statement counter and a
/// per-backend setup run on each new connection. r2d2 keeps the pooled value as the manager
/// makes it, so a wrapper manager is the one place the counter can live beside the connection.
pub(crate) struct Manager<C: R2D2Connection + 'static> {
    inner: ConnectionManager<C>,
    setup: fn(&mut C) -> QueryResult<()>,
}

impl<C: R2D2Connection + 'static> Manager<C> {
    /// Connections to `url`; `setup` runs on each new connection before it is used.
    pub(crate) fn new(url: impl Into<String>, setup: fn(&mut C) -> QueryResult<()>) -> Self {
        Self {
            inner: ConnectionManager::new(url),
            setup,
        }
    }
}

impl<C: R2D2Connection + Send + 'static> ManageConnection for Manager<C> {
    type Connection = PooledConn<C>;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let mut conn = self.inner.connect()?;
        let statements = Arc::new(StatementCounter::default());
        conn.set_instrumentation(CountStatements(Arc::clone(&statements)));
        (self.setup)(&mut conn).map_err(diesel::r2d2::Error::QueryError)?;
        Ok(PooledConn { conn, statements })
    }

    fn is_valid(&self, pooled: &mut Self::Connection) -> Result<(), Self::Error> {
        self.inner.is_valid(&mut pooled.conn)
    }

    fn has_broken(&self, pooled: &mut Self::Connection) -> bool {
        self.inner.has_broken(&mut pooled.conn)
    }
}
