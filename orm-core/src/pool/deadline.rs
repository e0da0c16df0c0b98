//! Client-side deadlines: a call never waits on a hung server longer than its deadline.
//!
//! A stopped server process (`kill -STOP`, a frozen VM, a stalled disk under the postmaster)
//! never answers, and nothing below the client ends the wait: the server's
//! `statement_timeout` runs in the stopped process; the stopped process's kernel still
//! acknowledges every TCP segment, so TCP keepalives and `tcp_user_timeout` see a healthy
//! connection; and libpq itself has no timeout for a query. So the client keeps the time.
//!
//! Each connection is a [`Watch`]: a call tells it when it starts and ends. One watchdog
//! thread for the process looks at the calls in flight every [`TICK`], and ends a call whose
//! server has shown no sign of life for the call's budget by shutting its socket down
//! ([`socket::shutdown`]): libpq's read returns at once, the call fails, and the connection is
//! closed rather than pooled. A sign of life is the call starting, another call on the same
//! server ending, or the server answering a probe ([`socket::probe`]) that the watchdog sends
//! once a call has run half its budget. So a slow query on a live server runs on, to the
//! server's own `statement_timeout`; only a server that does not answer is given up on.
//! A *hard* budget (the replica monitor's checks, pre-pings, a new connection's setup) ends
//! the call at its budget whatever the server does.

// A SQLite-only build has no server to watch: only `Watch::new(None, …)` is used.
#![cfg_attr(not(feature = "postgres"), allow(dead_code))]

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::socket::{self, Socket};

/// How often the watchdog looks at the calls in flight: a call ends at most this long after
/// its deadline (plus the time the machine takes to schedule the thread).
pub(crate) const TICK: Duration = Duration::from_millis(25);

/// The shortest wait between two probes of one server.
const MIN_PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// What the watchdog knows about one server: when it last showed a sign of life.
#[derive(Debug)]
pub(crate) struct Liveness {
    /// Nanoseconds after [`epoch`] of the last sign of life; 0: none yet.
    alive_at: AtomicU64,
    /// Nanoseconds after [`epoch`] when the last probe started.
    probed_at: AtomicU64,
    probing: AtomicBool,
}

impl Liveness {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            alive_at: AtomicU64::new(0),
            probed_at: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        })
    }

    /// The server answered just now.
    pub(crate) fn alive_now(&self) {
        self.alive_at.fetch_max(now_nanos(), Ordering::Relaxed);
    }

    /// The server answered at `at` (a time the caller read anyway: one clock read less).
    #[inline]
    pub(crate) fn alive_at_instant(&self, at: Instant) {
        self.alive_at.fetch_max(since_epoch(at), Ordering::Relaxed);
    }

    /// Whether the server showed a sign of life within `window` of now.
    pub(crate) fn alive_within(&self, window: Duration) -> bool {
        self.alive_at().is_some_and(|at| at.elapsed() < window)
    }

    /// When the server last showed a sign of life.
    fn alive_at(&self) -> Option<Instant> {
        match self.alive_at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(epoch() + Duration::from_nanos(at)),
        }
    }

    /// Start a probe of `addr` on a thread of its own, unless one is running or one started
    /// less than `interval` ago. A probe that is answered within `timeout` is a sign of life.
    fn probe(self: &Arc<Self>, addr: SocketAddr, interval: Duration, timeout: Duration) {
        let since = now_nanos().saturating_sub(self.probed_at.load(Ordering::Relaxed));
        if since < nanos(interval.max(MIN_PROBE_INTERVAL))
            || self.probing.swap(true, Ordering::AcqRel)
        {
            return;
        }
        self.probed_at.store(now_nanos(), Ordering::Relaxed);
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name("orm-probe".to_owned())
            .spawn(move || {
                if socket::probe(addr, timeout) {
                    me.alive_now();
                }
                me.probing.store(false, Ordering::Release);
            });
        if spawned.is_err() {
            self.probing.store(false, Ordering::Release);
        }
    }
}

/// [`Slot::call`] when no call is in flight.
const IDLE: u64 = 0;
/// [`Slot::call`] once the watchdog has ended the call in flight.
const ENDED: u64 = u64::MAX;
/// The bit of [`Slot::budget`] that marks a hard budget.
const HARD: u64 = 1 << 63;

/// One connection as the watchdog sees it. A call's start and end are two atomic writes, with
/// no lock: the watchdog ends a call only by swapping the very start it read for [`ENDED`]
/// (compare-and-swap), so a call that ended in the meantime, or the next call on the
/// connection, is never ended in its place. The mutex guards only the socket, which the
/// watchdog shuts down and the connection closes when it is dropped.
#[derive(Debug)]
struct Slot {
    /// `None` once the connection is being closed.
    socket: Mutex<Option<Socket>>,
    /// The call in flight: nanoseconds after [`epoch`] when it started (at least 1); [`IDLE`]
    /// or [`ENDED`].
    call: AtomicU64,
    /// The budget of the call in flight in nanoseconds, [`HARD`] set for a hard one: written
    /// before `call`.
    budget: AtomicU64,
    /// Set when the watchdog ends a call; never cleared. An atomic, so that the pool's check of
    /// a returned connection takes no lock.
    timed_out: AtomicBool,
    server: Arc<Liveness>,
}

impl Slot {
    fn socket(&self) -> MutexGuard<'_, Option<Socket>> {
        self.socket.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The deadline keeper of one connection. Declare it before the connection in the struct that
/// holds both: fields drop in order, and dropping the watch takes the socket out of the
/// watchdog's reach before the connection closes it.
#[derive(Debug)]
pub(crate) struct Watch {
    /// `None`: the socket is unknown (a Unix socket, no `/proc`): calls are not bounded.
    slot: Option<Arc<Slot>>,
}

impl Watch {
    /// A watch over `socket`, whose server's signs of life are kept in `server`.
    pub(crate) fn new(socket: Option<Socket>, server: Arc<Liveness>) -> Self {
        let Some(socket) = socket else {
            return Self { slot: None };
        };
        // The epoch predates every call this watch times.
        epoch();
        let slot = Arc::new(Slot {
            socket: Mutex::new(Some(socket)),
            call: AtomicU64::new(IDLE),
            budget: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
            server,
        });
        watchdog().register(&slot);
        Self { slot: Some(slot) }
    }

    /// A call starts: it may last `budget` without a sign of life from the server (`hard`:
    /// `budget` in all).
    pub(crate) fn begin(&self, budget: Duration, hard: bool) {
        self.begin_at(Instant::now(), budget, hard);
    }

    /// A call that started at `started` (before it waited for this connection) goes on here.
    #[inline]
    pub(crate) fn begin_at(&self, started: Instant, budget: Duration, hard: bool) {
        if let Some(slot) = &self.slot {
            let budget = nanos(budget).min(HARD - 1) | if hard { HARD } else { 0 };
            slot.budget.store(budget, Ordering::Relaxed);
            // Release: the watchdog that reads this start reads its budget too.
            slot.call
                .store(since_epoch(started).min(ENDED - 1), Ordering::Release);
        }
    }

    /// The call ended: `true` when the watchdog ended it (the connection is then unusable).
    pub(crate) fn end(&self) -> bool {
        self.end_at(Instant::now())
    }

    /// [`Watch::end`] for a call that ended at `now`, which the caller has read anyway.
    #[inline]
    pub(crate) fn end_at(&self, now: Instant) -> bool {
        let Some(slot) = &self.slot else {
            return false;
        };
        if slot.call.swap(IDLE, Ordering::AcqRel) == ENDED {
            // Set here too, so that the pool sees it however far the watchdog has got.
            slot.timed_out.store(true, Ordering::Release);
            return true;
        }
        slot.server.alive_at_instant(now);
        false
    }

    /// Whether a call on this connection passed its deadline (the socket was shut down).
    pub(crate) fn timed_out(&self) -> bool {
        self.slot
            .as_ref()
            .is_some_and(|slot| slot.timed_out.load(Ordering::Acquire))
    }

    /// Run `work` as one call with a `budget`, returning whether it passed its deadline.
    pub(crate) fn call<T>(
        &self,
        budget: Duration,
        hard: bool,
        work: impl FnOnce() -> T,
    ) -> (T, bool) {
        self.begin(budget, hard);
        let result = work();
        (result, self.end())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Some(slot) = &self.slot {
            *slot.socket() = None;
            slot.call.store(IDLE, Ordering::Release);
        }
    }
}

thread_local! {
    /// When the checkout running on this thread must be done by: the pre-ping of each idle
    /// connection it tries gets what is left, so trying several stale connections of a hung
    /// server one after another still ends at the call's deadline. Kept as a start and a
    /// span, so that a checkout that finds a connection at once never adds them up.
    static CHECKOUT_BY: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
}

/// Run `checkout` (a pool's `get`) with its deadline `within` of `from`, for
/// [`checkout_left`].
#[inline]
pub(crate) fn checkout_by<T>(from: Instant, within: Duration, checkout: impl FnOnce() -> T) -> T {
    let outer = CHECKOUT_BY.with(|c| c.replace(Some((from, within))));
    let result = checkout();
    CHECKOUT_BY.with(|c| c.set(outer));
    result
}

/// What is left of the deadline of the checkout running on this thread, if it has one.
pub(crate) fn checkout_left() -> Option<Duration> {
    CHECKOUT_BY
        .with(Cell::get)
        .map(|(from, within)| within.saturating_sub(from.elapsed()))
}

/// The process's one watchdog thread and the connections it watches.
struct Watchdog {
    slots: Mutex<Vec<Weak<Slot>>>,
}

fn watchdog() -> &'static Watchdog {
    static WATCHDOG: OnceLock<&'static Watchdog> = OnceLock::new();
    WATCHDOG.get_or_init(|| {
        let dog: &'static Watchdog = Box::leak(Box::new(Watchdog {
            slots: Mutex::new(Vec::new()),
        }));
        std::thread::Builder::new()
            .name("orm-deadlines".to_owned())
            .spawn(move || loop {
                std::thread::sleep(TICK);
                dog.tick();
            })
            .expect("the operating system refused to start the orm-deadlines thread");
        dog
    })
}

impl Watchdog {
    fn register(&self, slot: &Arc<Slot>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.retain(|s| s.strong_count() > 0);
        slots.push(Arc::downgrade(slot));
    }

    fn tick(&self) {
        let live: Vec<Arc<Slot>> = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            slots.retain(|s| s.strong_count() > 0);
            slots.iter().filter_map(Weak::upgrade).collect()
        };
        let now = Instant::now();
        for slot in live {
            let call = slot.call.load(Ordering::Acquire);
            if call == IDLE || call == ENDED {
                continue;
            }
            let budget_bits = slot.budget.load(Ordering::Relaxed);
            let (budget, hard) = (
                Duration::from_nanos(budget_bits & !HARD),
                budget_bits & HARD != 0,
            );
            let started = epoch() + Duration::from_nanos(call);
            let running = now.saturating_duration_since(started);
            // How long the server has shown no sign of life that counts for this call.
            let silent = if hard {
                running
            } else {
                let since = slot.server.alive_at().map_or(started, |a| a.max(started));
                now.saturating_duration_since(since)
            };
            if silent >= budget {
                // Only the call that was read: if it ended meanwhile, it is left alone.
                if slot
                    .call
                    .compare_exchange(call, ENDED, Ordering::AcqRel, Ordering::Relaxed)
                    .is_err()
                {
                    continue;
                }
                slot.timed_out.store(true, Ordering::Release);
                // The socket stays locked while it is shut down: the connection cannot close
                // it (and its number be reused) meanwhile.
                let guard = slot.socket();
                let Some(socket) = *guard else {
                    continue;
                };
                let shut = socket::shutdown(&socket);
                drop(guard);
                tracing::warn!(
                    server = %socket.remote,
                    budget_ms = budget.as_millis() as u64,
                    shut,
                    "the server did not answer within the call's deadline: connection closed"
                );
            } else if !hard && running >= budget / 2 {
                let Some(socket) = *slot.socket() else {
                    continue;
                };
                slot.server.probe(socket.remote, budget / 4, budget / 2);
            }
        }
    }
}

#[inline]
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since [`epoch`], at least 1 (0 means "never").
fn now_nanos() -> u64 {
    nanos(epoch().elapsed()).max(1)
}

/// Nanoseconds from [`epoch`] to `at`, at least 1 (0 means "never").
#[inline]
fn since_epoch(at: Instant) -> u64 {
    nanos(at.saturating_duration_since(epoch())).max(1)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    /// A socket to a listener that accepts and never answers: a hung server.
    fn hung() -> (TcpListener, TcpStream, Socket) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let before = socket::open_sockets();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let socket = socket::new_tcp_sockets(&before)
            .into_iter()
            .find(|s| s.local == client.local_addr().unwrap())
            .unwrap();
        (listener, client, socket)
    }

    #[test]
    fn a_call_to_a_silent_server_ends_at_its_budget() {
        let (_listener, mut client, socket) = hung();
        let watch = Watch::new(Some(socket), Liveness::new());
        let start = Instant::now();
        let (read, timed_out) = watch.call(Duration::from_millis(300), false, || {
            client.read(&mut [0u8; 1])
        });
        assert!(timed_out, "the watchdog ended the call");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the blocked read returned: {read:?}"
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(300),
            "not before its budget: {took:?}"
        );
        assert!(watch.timed_out());
    }

    #[test]
    fn a_call_that_ends_in_time_is_left_alone() {
        let (_listener, _client, socket) = hung();
        let watch = Watch::new(Some(socket), Liveness::new());
        let ((), timed_out) = watch.call(Duration::from_millis(200), true, || ());
        assert!(!timed_out);
        std::thread::sleep(Duration::from_millis(300));
        assert!(!watch.timed_out(), "an idle connection is never shut down");
    }

    #[test]
    fn the_next_call_on_a_connection_keeps_its_own_budget() {
        let (_listener, _client, socket) = hung();
        let watch = Watch::new(Some(socket), Liveness::new());
        // A call with a budget far shorter than a tick ends before the watchdog looks ...
        watch.begin(Duration::from_millis(1), true);
        assert!(!watch.end());
        // ... and the next call, with a long budget, is not ended for the first one's.
        watch.begin(Duration::from_secs(30), true);
        std::thread::sleep(TICK * 6);
        assert!(
            !watch.timed_out(),
            "the watchdog ended a call within its budget"
        );
        assert!(!watch.end());
    }

    #[test]
    fn a_call_that_ends_marks_the_server_alive_at_its_end() {
        let (_listener, _client, socket) = hung();
        let server = Liveness::new();
        let watch = Watch::new(Some(socket), Arc::clone(&server));
        assert!(
            !server.alive_within(Duration::from_secs(60)),
            "no sign of life yet"
        );
        watch.begin(Duration::from_secs(5), false);
        assert!(!watch.end_at(Instant::now()));
        assert!(server.alive_within(Duration::from_secs(60)));
        // An end read long ago is not a recent sign of life.
        let old = Liveness::new();
        old.alive_at_instant(epoch());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!old.alive_within(Duration::from_millis(10)));
    }
}
