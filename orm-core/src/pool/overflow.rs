//! [`QueuePool`]: the connections of one node, sized as SQLAlchemy's `QueuePool` sizes them.
//! `size` connections are kept open; up to `max_overflow` more are opened only for a caller
//! that would otherwise wait, and closed once idle for `overflow_idle`.
//!
//! Why r2d2 alone cannot do this: r2d2 0.8 has one number, `min_idle`, for both the idle
//! connections it keeps ready and the floor its reaper closes idle connections down to. With
//! `max_size(size + max_overflow)` and `min_idle(size)` it keeps `size` connections *idle*, so
//! as soon as calls hold some it opens more in the background, before anyone waits, up to
//! `size + max_overflow`; with a lower `min_idle` its reaper would close the `size` connections
//! too. And its reaper runs every 30 s (a crate-private setting), so a shorter `overflow_idle`
//! could not be honoured.
//!
//! So the `size` connections are an r2d2 pool of exactly `size` (`max_size` = `min_idle` =
//! `size`: opened when the pool is built, reopened in the background when one is closed, never
//! more), and the overflow connections are kept here, beside it:
//!
//! 1. a caller takes an idle connection of r2d2's, else an idle overflow connection;
//! 2. if neither is idle and r2d2 holds all `size`, the caller opens an overflow connection
//!    itself, as SQLAlchemy does, if fewer than `max_overflow` are open;
//! 3. otherwise it waits for a connection of either kind to come back, until `timeout`.
//!
//! r2d2 wakes only its own waiters when a connection comes back, so each return of either kind
//! bumps a counter here ([`Returns`]) once the connection is back on its idle stack; a waiter
//! reads the counter before it looks, and sleeps only while the counter is unchanged, so it
//! cannot miss a return. While r2d2 is still opening one of its `size` connections (when the
//! pool starts, or after one was closed) a caller does not open overflow for a connection that
//! is on its way: it waits inside r2d2, which hands it the new connection as soon as it is
//! filed, for [`REFILL_POLL`] at a time, then looks at both kinds again.
//!
//! A thread per pool, started with the first overflow connection, closes the overflow
//! connections idle for `overflow_idle`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Once, PoisonError};
use std::time::{Duration, Instant};

use diesel::r2d2::{ManageConnection, Pool, PooledConnection, R2D2Connection};
use r2d2::HandleError;

use super::manager::{self, BoxedConn, LogScrubbed, Manager, PooledConn};

/// How long a caller waits inside r2d2 at a time, while r2d2 opens one of the `size`
/// connections, before it looks at the overflow again.
const REFILL_POLL: Duration = Duration::from_millis(10);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counts stay consistent whatever panicked while holding them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The pool of one node: r2d2 for the `size` connections, the overflow beside it.
pub(crate) struct QueuePool<C: R2D2Connection + Send + 'static> {
    /// The `size` connections; `None` when `size` is 0 (r2d2 cannot hold none): every
    /// connection is then an overflow connection.
    base: Option<Pool<SharedManager<C>>>,
    /// Opens every connection, r2d2's and the overflow's.
    manager: Arc<Manager<C>>,
    size: u32,
    max_overflow: u32,
    overflow_idle: Option<Duration>,
    overflow: Arc<Overflow<C>>,
    /// Logs failures to open or check overflow connections, and notes connect errors for
    /// [`Error::PoolTimeout`](crate::Error::PoolTimeout), as for r2d2's own.
    errors: LogScrubbed,
    /// Starts the thread that closes idle overflow connections, with the first one opened.
    closer: Once,
}

/// r2d2's manager for the `size` connections: the node's [`Manager`], which the overflow
/// shares (r2d2 owns its manager and does not lend it out).
pub(crate) struct SharedManager<C: R2D2Connection + 'static>(pub(crate) Arc<Manager<C>>);

impl<C: R2D2Connection + Send + 'static> ManageConnection for SharedManager<C> {
    type Connection = BoxedConn<C>;
    type Error = <Manager<C> as ManageConnection>::Error;

    fn connect(&self) -> Result<Self::Connection, Self::Error> {
        self.0.connect()
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.0.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        self.0.has_broken(conn)
    }
}

/// The overflow connections, shared with the thread that closes idle ones.
struct Overflow<C> {
    state: Mutex<OverflowState<C>>,
    /// Wakes the closing thread: a connection was returned, or the pool is gone.
    closer: Condvar,
    /// Wakes waiting callers.
    returns: Returns,
}

struct OverflowState<C> {
    /// Most recently returned last.
    idle: Vec<IdleConn<C>>,
    in_use: u32,
    /// Overflow connections open, being opened or being closed: at most `max_overflow`, so
    /// the server never sees more.
    slots: u32,
    /// The pool was dropped: the closing thread ends.
    dropped: bool,
}

struct IdleConn<C> {
    conn: BoxedConn<C>,
    since: Instant,
}

/// Counts connections coming back (of either kind) and overflow slots freed, for callers
/// waiting for one. A call that finds a connection at once touches only the atomics; the mutex
/// is taken only while someone waits.
#[derive(Debug, Default)]
struct Returns {
    returned: AtomicU64,
    /// Callers in [`Returns::wait`]: with none, a return wakes nobody.
    waiters: AtomicU32,
    lock: Mutex<()>,
    changed: Condvar,
}

impl Returns {
    #[inline]
    fn seen(&self) -> u64 {
        self.returned.load(SeqCst)
    }

    /// Called after the connection is back on its idle stack (or its slot free). A waiter
    /// counts itself before it reads `returned` and an announcer counts the return before it
    /// reads `waiters` (all `SeqCst`): either the waiter sees the return, or the announcer
    /// sees the waiter and wakes it under the lock the waiter holds until it sleeps.
    #[inline]
    fn announce(&self) {
        self.returned.fetch_add(1, SeqCst);
        if self.waiters.load(SeqCst) > 0 {
            let _held = lock(&self.lock);
            self.changed.notify_all();
        }
    }

    /// Sleeps until a return after `seen`, or until `until`.
    fn wait(&self, seen: u64, until: Instant) {
        let held = lock(&self.lock);
        self.waiters.fetch_add(1, SeqCst);
        let wait = until.saturating_duration_since(Instant::now());
        drop(
            self.changed
                .wait_timeout_while(held, wait, |_| self.returned.load(SeqCst) == seen)
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.waiters.fetch_sub(1, SeqCst);
    }
}

/// The caller waited `timeout` and got no connection.
pub(crate) struct TimedOut;

/// A connection lent to one call: back to where it came from when dropped.
pub(crate) struct Lent<'p, C: R2D2Connection + Send + 'static> {
    conn: Option<LentConn<C>>,
    pool: &'p QueuePool<C>,
    /// Found idle at the first look: the caller neither waited nor opened a connection.
    pub(crate) at_once: bool,
}

enum LentConn<C: R2D2Connection + Send + 'static> {
    Base(PooledConnection<SharedManager<C>>),
    Overflow(BoxedConn<C>),
}

impl<C: R2D2Connection + Send + 'static> QueuePool<C> {
    /// The pool over `base` (`None` if `size` is 0), with up to `max_overflow` more
    /// connections opened by `manager`, the one `base` shares. `errors` is the handler r2d2
    /// was given, for the overflow's errors.
    pub(super) fn new(
        base: Option<Pool<SharedManager<C>>>,
        manager: Arc<Manager<C>>,
        size: u32,
        max_overflow: u32,
        overflow_idle: Option<Duration>,
        errors: LogScrubbed,
    ) -> Self {
        Self {
            base,
            manager,
            size,
            max_overflow,
            overflow_idle,
            overflow: Arc::new(Overflow {
                state: Mutex::new(OverflowState {
                    idle: Vec::new(),
                    in_use: 0,
                    slots: 0,
                    dropped: false,
                }),
                closer: Condvar::new(),
                returns: Returns::default(),
            }),
            errors,
            closer: Once::new(),
        }
    }

    /// A connection, waiting until `within` of `from` for one (see the module's
    /// documentation). The caller reads `from` when the checkout begins, so a connection found
    /// idle costs no clock read here, and the time spent checking idle connections (a
    /// pre-ping to a silent server) counts against the wait.
    #[inline]
    pub(crate) fn get(&self, from: Instant, within: Duration) -> Result<Lent<'_, C>, TimedOut> {
        // The common case, written so that it inlines into the checkout: an idle connection
        // of r2d2's, built where the caller keeps it rather than moved out of a loop.
        if let Some(conn) = self.base.as_ref().and_then(Pool::try_get) {
            return Ok(Lent {
                conn: Some(LentConn::Base(conn)),
                pool: self,
                at_once: true,
            });
        }
        self.get_waiting(from, within)
    }

    /// [`QueuePool::get`] once r2d2 had no idle connection: the overflow, and the waits.
    #[inline(never)]
    fn get_waiting(&self, from: Instant, within: Duration) -> Result<Lent<'_, C>, TimedOut> {
        // A caller opens at most one overflow connection that fails: if the server refuses
        // connections it waits for a connection to come back, rather than retry in a loop.
        let mut may_open = true;
        // When to give up: set at the first look that finds nothing idle.
        let mut give_up = None;
        loop {
            if give_up.is_some() {
                // After a wait: the idle connections found now are checked against now.
                manager::checkout_read_clock(Instant::now());
            }
            let seen = self.overflow.returns.seen();
            if let Some(conn) = self.take_idle() {
                let mut lent = self.lend(conn);
                lent.at_once = give_up.is_none();
                return Ok(lent);
            }
            let give_up_at = *give_up.get_or_insert_with(|| from + within);
            let refilling = self
                .base
                .as_ref()
                .filter(|pool| pool.state().connections < self.size);
            if refilling.is_none() && may_open && self.reserve_slot() {
                match self.open_overflow() {
                    Some(conn) => return Ok(self.lend(LentConn::Overflow(conn))),
                    None => {
                        may_open = false;
                        continue;
                    }
                }
            }
            let now = Instant::now();
            if now >= give_up_at {
                return Err(TimedOut);
            }
            match refilling {
                // r2d2 wakes its own waiters as soon as it files the new connection.
                Some(pool) => {
                    let slice = give_up_at.saturating_duration_since(now).min(REFILL_POLL);
                    if let Ok(conn) = pool.get_timeout(slice) {
                        return Ok(self.lend(LentConn::Base(conn)));
                    }
                }
                None => self.overflow.returns.wait(seen, give_up_at),
            }
        }
    }

    /// An idle connection, r2d2's first; an overflow one that fails its check is closed.
    fn take_idle(&self) -> Option<LentConn<C>> {
        if let Some(conn) = self.base.as_ref().and_then(Pool::try_get) {
            return Some(LentConn::Base(conn));
        }
        loop {
            let mut idle = {
                let mut state = lock(&self.overflow.state);
                let idle = state.idle.pop()?;
                state.in_use += 1;
                idle
            };
            // The same check r2d2 makes on its connections: recycle age, pre-ping.
            match self.manager.is_valid(&mut idle.conn) {
                Ok(()) => return Some(LentConn::Overflow(idle.conn)),
                Err(error) => {
                    self.errors.handle_error(error);
                    lock(&self.overflow.state).in_use -= 1;
                    self.close(idle.conn);
                }
            }
        }
    }

    /// Takes an overflow slot if one is free.
    fn reserve_slot(&self) -> bool {
        let mut state = lock(&self.overflow.state);
        if state.slots < self.max_overflow {
            state.slots += 1;
            true
        } else {
            false
        }
    }

    /// Opens an overflow connection in the slot reserved for it; `None` (slot freed, error
    /// logged and kept for the timeout error) if it cannot be opened.
    fn open_overflow(&self) -> Option<BoxedConn<C>> {
        match self.manager.connect() {
            Ok(conn) => {
                self.errors.1.connect_failed(None);
                lock(&self.overflow.state).in_use += 1;
                if let Some(idle_for) = self.overflow_idle {
                    self.closer.call_once(|| self.start_closer(idle_for));
                }
                Some(conn)
            }
            Err(error) => {
                self.errors.handle_error(error);
                self.release_slot();
                None
            }
        }
    }

    /// Closes an overflow connection, then frees its slot.
    fn close(&self, conn: BoxedConn<C>) {
        drop(conn);
        self.release_slot();
    }

    fn release_slot(&self) {
        lock(&self.overflow.state).slots -= 1;
        self.overflow.returns.announce();
    }

    /// Starts the thread that closes overflow connections idle for `idle_for`.
    fn start_closer(&self, idle_for: Duration) {
        let overflow = Arc::clone(&self.overflow);
        let spawned = std::thread::Builder::new()
            .name("orm-pool-overflow".to_owned())
            .spawn(move || overflow.close_idle(idle_for));
        if let Err(error) = spawned {
            tracing::warn!(url = %self.errors.0.redacted, %error,
                "cannot start the thread that closes idle overflow connections; they stay open");
        }
    }

    #[inline]
    fn lend(&self, conn: LentConn<C>) -> Lent<'_, C> {
        Lent {
            conn: Some(conn),
            pool: self,
            at_once: false,
        }
    }

    /// Takes back an overflow connection: kept idle, or closed if broken or past its age.
    fn give_back(&self, mut conn: BoxedConn<C>) {
        let broken = self.manager.has_broken(&mut conn);
        let mut state = lock(&self.overflow.state);
        state.in_use -= 1;
        if broken {
            drop(state);
            self.close(conn);
            return;
        }
        state.idle.push(IdleConn {
            conn,
            since: Instant::now(),
        });
        drop(state);
        self.overflow.closer.notify_one();
        self.overflow.returns.announce();
    }

    /// Connections open and idle, r2d2's and the overflow's.
    pub(crate) fn counts(&self) -> (u32, u32) {
        let (base_open, base_idle) = self.base.as_ref().map_or((0, 0), |pool| {
            let state = pool.state();
            (state.connections, state.idle_connections)
        });
        let state = lock(&self.overflow.state);
        let idle = u32::try_from(state.idle.len()).unwrap_or(u32::MAX);
        (
            base_open + idle + state.in_use,
            base_idle.saturating_add(idle),
        )
    }
}

impl<C> Overflow<C> {
    /// The closing thread: closes each overflow connection once it has been idle `idle_for`,
    /// sleeping until the next one is due; ends when the pool is dropped.
    fn close_idle(&self, idle_for: Duration) {
        let mut state = lock(&self.state);
        loop {
            if state.dropped {
                return;
            }
            let now = Instant::now();
            // Returned in order, so the connections due are at the front.
            let due = state
                .idle
                .iter()
                .take_while(|idle| now.saturating_duration_since(idle.since) >= idle_for)
                .count();
            if due > 0 {
                let closing: Vec<_> = state.idle.drain(..due).collect();
                drop(state);
                // Closed before their slots are freed: the server never sees more than
                // `max_overflow`.
                drop(closing);
                state = lock(&self.state);
                state.slots -= u32::try_from(due).unwrap_or(u32::MAX);
                drop(state);
                self.returns.announce();
                state = lock(&self.state);
                continue;
            }
            state = match state.idle.first() {
                Some(oldest) => {
                    let wait = (oldest.since + idle_for).saturating_duration_since(now);
                    self.closer
                        .wait_timeout(state, wait)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
                None => self
                    .closer
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
            };
        }
    }
}

impl<C: R2D2Connection + Send + 'static> Drop for QueuePool<C> {
    fn drop(&mut self) {
        lock(&self.overflow.state).dropped = true;
        self.overflow.closer.notify_one();
    }
}

impl<C: R2D2Connection + Send + 'static> std::ops::Deref for Lent<'_, C> {
    type Target = PooledConn<C>;

    fn deref(&self) -> &PooledConn<C> {
        match self.conn.as_ref() {
            Some(LentConn::Base(conn)) => conn,
            Some(LentConn::Overflow(conn)) => conn,
            None => unreachable!("a lent connection is only taken back when dropped"),
        }
    }
}

impl<C: R2D2Connection + Send + 'static> std::ops::DerefMut for Lent<'_, C> {
    fn deref_mut(&mut self) -> &mut PooledConn<C> {
        match self.conn.as_mut() {
            Some(LentConn::Base(conn)) => conn,
            Some(LentConn::Overflow(conn)) => conn,
            None => unreachable!("a lent connection is only taken back when dropped"),
        }
    }
}

impl<C: R2D2Connection + Send + 'static> Drop for Lent<'_, C> {
    fn drop(&mut self) {
        match self.conn.take() {
            Some(LentConn::Base(conn)) => {
                // r2d2 files it (or closes it, and opens another in the background), then
                // waiting callers look again.
                drop(conn);
                self.pool.overflow.returns.announce();
            }
            Some(LentConn::Overflow(conn)) => self.pool.give_back(conn),
            None => {}
        }
    }
}
