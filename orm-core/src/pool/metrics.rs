//! What a pool is doing: [`PoolState`], from r2d2's own counts (open, idle) and the counters
//! kept here (checkouts, waits, timeouts, callers waiting). Every counter is a relaxed atomic:
//! a checkout costs a few uncontended adds.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::conn::Node;

/// A snapshot of one node's pool, from [`Database::pool_state`](crate::Database::pool_state).
/// Counters (`checkouts`, `timeouts`, `total_wait`, `max_wait`) run from when the database was
/// opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolState {
    /// The node this pool connects to.
    pub node: Node,
    /// Connections open to the server, idle or in use.
    pub open: u32,
    /// Open connections waiting in the pool for a call.
    pub idle: u32,
    /// Connections held by calls now.
    pub in_use: u32,
    /// Calls waiting for a connection now.
    pub waiting: u32,
    /// Connections handed to calls so far.
    pub checkouts: u64,
    /// Calls that gave up waiting ([`Error::PoolTimeout`](crate::Error::PoolTimeout)).
    pub timeouts: u64,
    /// Time calls spent waiting for their connection, summed over every checkout (with no
    /// pool: the time spent connecting).
    pub total_wait: Duration,
    /// The longest any call waited for its connection.
    pub max_wait: Duration,
}

/// The counters r2d2 does not keep.
#[derive(Debug, Default)]
pub(crate) struct PoolMetrics {
    waiting: AtomicU32,
    /// Connections held by calls, for the no-pool mode (r2d2 counts its own).
    unpooled_in_use: AtomicU32,
    checkouts: AtomicU64,
    timeouts: AtomicU64,
    total_wait_nanos: AtomicU64,
    max_wait_nanos: AtomicU64,
    /// Why the last attempt to open a connection failed, until one is opened again (scrubbed).
    /// r2d2 keeps its own, but hands it to one timed-out caller only.
    last_connect_error: std::sync::Mutex<Option<String>>,
}

impl PoolMetrics {
    /// Counts a call as waiting until the returned guard is dropped. r2d2 does not count the
    /// callers blocked in `Pool::get`, so the checkout path wraps it in this.
    pub(crate) fn wait(&self) -> Waiting<'_> {
        self.waiting.fetch_add(1, Relaxed);
        Waiting(self)
    }

    /// Notes why opening a connection failed (`None`: one was opened).
    pub(crate) fn connect_failed(&self, error: Option<String>) {
        *self
            .last_connect_error
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = error;
    }

    /// Why the last attempt to open a connection failed, if none was opened since.
    pub(crate) fn last_connect_error(&self) -> Option<String> {
        self.last_connect_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Calls waiting now.
    pub(crate) fn waiting(&self) -> u32 {
        self.waiting.load(Relaxed)
    }

    pub(crate) fn checked_out(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.checkouts.fetch_add(1, Relaxed);
        self.total_wait_nanos.fetch_add(nanos, Relaxed);
        self.max_wait_nanos.fetch_max(nanos, Relaxed);
    }

    pub(crate) fn timed_out(&self) {
        self.timeouts.fetch_add(1, Relaxed);
    }

    /// Counts a connection of the no-pool mode as in use until the guard is dropped.
    pub(crate) fn unpooled_use(&self) -> UnpooledUse<'_> {
        self.unpooled_in_use.fetch_add(1, Relaxed);
        UnpooledUse(self)
    }

    /// The state of a pool whose r2d2 counts are `open` and `idle`; `None` for the no-pool
    /// mode, where every open connection is in use.
    pub(crate) fn state(&self, node: Node, counts: Option<(u32, u32)>) -> PoolState {
        let (open, idle) = counts.unwrap_or_else(|| (self.unpooled_in_use.load(Relaxed), 0));
        PoolState {
            node,
            open,
            idle,
            in_use: open.saturating_sub(idle),
            waiting: self.waiting(),
            checkouts: self.checkouts.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            total_wait: Duration::from_nanos(self.total_wait_nanos.load(Relaxed)),
            max_wait: Duration::from_nanos(self.max_wait_nanos.load(Relaxed)),
        }
    }
}

/// A caller counted as waiting for a connection.
pub(crate) struct Waiting<'m>(&'m PoolMetrics);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Relaxed);
    }
}

/// A connection of the no-pool mode, counted as in use.
pub(crate) struct UnpooledUse<'m>(&'m PoolMetrics);

impl Drop for UnpooledUse<'_> {
    fn drop(&mut self) {
        self.0.unpooled_in_use.fetch_sub(1, Relaxed);
    }
}

/// r2d2's event handler: r2d2 times each checkout (from the call to `get` until a connection,
/// validated, is handed out) and reports each timeout; both feed the counters.
#[derive(Debug)]
pub(crate) struct CountEvents(pub(crate) Arc<PoolMetrics>);

impl r2d2::HandleEvent for CountEvents {
    fn handle_checkout(&self, event: r2d2::event::CheckoutEvent) {
        self.0.checked_out(event.duration());
    }

    fn handle_timeout(&self, _: r2d2::event::TimeoutEvent) {
        self.0.timed_out();
    }

    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        self.0.connect_failed(None);
    }
}
