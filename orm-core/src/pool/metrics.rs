//! What a pool is doing: [`PoolState`], from the pool's counts (open, idle) and the counters
//! kept here (checkouts, waits, timeouts, callers waiting). Every counter is a relaxed atomic:
//! a checkout costs a few uncontended adds.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crate::call::Node;

/// A snapshot of one node's pool, from [`Database::pool_state`](crate::Database::pool_state).
///
/// `open`, `idle`, `in_use` and `waiting` are as they are now. The counters (`checkouts`,
/// `timeouts`, `waits`, `total_wait`, `max_wait`) run from when the database was opened. A
/// call's *wait* is the time from asking the pool for a connection until it has one or gives
/// up: finding an idle one (and its pre-ping, if due), opening one, or waiting for one to come
/// back; a connection found idle at once, with no pre-ping due, counts as no wait (it takes
/// well under a microsecond, and the common checkout is spared a clock read). With no pool
/// ([`PoolConfig::none`](crate::PoolConfig::none)) it is the time spent connecting.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolState {
    /// The node this pool connects to.
    pub node: Node,
    /// Connections open to the server, idle or in use, overflow included (with no pool: the
    /// connections of calls running now).
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
    /// Calls whose wait is counted in `total_wait`: every checkout, every timeout, and every
    /// call that failed otherwise before it had a connection (its server silent past the call
    /// deadline; with no pool, a failed connection attempt). `total_wait / waits` is the mean
    /// wait.
    pub waits: u64,
    /// The waits of every call counted in `waits`, summed: those that got a connection and
    /// those that timed out (each of those waited the whole `timeout`).
    pub total_wait: Duration,
    /// The longest wait of any call counted in `waits`, a timed-out one included.
    pub max_wait: Duration,
}

/// The counters the pool keeps beside its connections.
#[derive(Debug, Default)]
pub(crate) struct PoolMetrics {
    waiting: AtomicU32,
    /// Connections held by calls, for the no-pool mode (r2d2 counts its own).
    unpooled_in_use: AtomicU32,
    checkouts: AtomicU64,
    timeouts: AtomicU64,
    waits: AtomicU64,
    total_wait_nanos: AtomicU64,
    max_wait_nanos: AtomicU64,
    /// Why the last attempt to open a connection failed, until one is opened again (scrubbed).
    /// r2d2 keeps its own, but hands it to one timed-out caller only.
    last_connect_error: std::sync::Mutex<Option<String>>,
}

impl PoolMetrics {
    /// Counts a call as waiting until the returned guard is dropped: the checkout path holds
    /// it while it looks for a connection.
    #[inline]
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

    /// A call got its connection after waiting `waited`.
    #[inline]
    pub(crate) fn checked_out(&self, waited: Duration) {
        self.checkouts.fetch_add(1, Relaxed);
        self.waited(waited);
    }

    /// A call gave up after waiting `waited` (the pool's `timeout`).
    pub(crate) fn timed_out(&self, waited: Duration) {
        self.timeouts.fetch_add(1, Relaxed);
        self.waited(waited);
    }

    /// A call failed otherwise before it had a connection, after `waited`: past the call
    /// deadline, or with no pool, unable to connect.
    pub(crate) fn failed(&self, waited: Duration) {
        self.waited(waited);
    }

    #[inline]
    fn waited(&self, waited: Duration) {
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.waits.fetch_add(1, Relaxed);
        self.total_wait_nanos.fetch_add(nanos, Relaxed);
        self.max_wait_nanos.fetch_max(nanos, Relaxed);
    }

    /// Counts a connection of the no-pool mode as in use until the guard is dropped.
    pub(crate) fn unpooled_use(&self) -> UnpooledUse<'_> {
        self.unpooled_in_use.fetch_add(1, Relaxed);
        UnpooledUse(self)
    }

    /// The state of a pool whose counts are `open` and `idle`; `None` for the no-pool mode,
    /// where every open connection is in use.
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
            waits: self.waits.load(Relaxed),
            total_wait: Duration::from_nanos(self.total_wait_nanos.load(Relaxed)),
            max_wait: Duration::from_nanos(self.max_wait_nanos.load(Relaxed)),
        }
    }
}

/// A caller counted as waiting for a connection.
pub(crate) struct Waiting<'m>(&'m PoolMetrics);

impl Drop for Waiting<'_> {
    #[inline]
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

/// r2d2's event handler: a connection r2d2 opened clears the last connect error. (r2d2's
/// checkout and timeout events are not used: they see only r2d2's part of a checkout.)
#[derive(Debug)]
pub(crate) struct NoteConnects(pub(crate) Arc<PoolMetrics>);

impl r2d2::HandleEvent for NoteConnects {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        self.0.connect_failed(None);
    }
}
