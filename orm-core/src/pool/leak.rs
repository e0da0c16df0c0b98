//! Leak detection: a connection held longer than `leak_threshold` is logged with the place in
//! the caller's code that checked it out. r2d2 reports how long a connection was held only
//! once it comes back (`CheckinEvent`), which says nothing about a connection that never
//! does, and it does not know the caller's code location; so checkouts are recorded here,
//! when detection is on, and one thread for the whole process looks at them every second.
//! That thread logs each pool's warnings to the `tracing` subscriber that was current where the
//! pool was built.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, Once, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::meta::RedactedUrl;

/// How often the held connections are looked at.
const SCAN_EVERY: Duration = Duration::from_secs(1);

/// The pools whose checkouts the scanning thread looks at. Pools register when they are built
/// with a threshold and drop out when they are dropped.
static TRACKED: Mutex<Vec<Weak<LeakTracker>>> = Mutex::new(Vec::new());
static SCANNER: Once = Once::new();

/// The checkouts of one pool that are still held.
#[derive(Debug)]
pub(crate) struct LeakTracker {
    url: RedactedUrl,
    threshold: Duration,
    next_id: AtomicU64,
    held: Mutex<HashMap<u64, Held>>,
    /// The subscriber current where the pool was built: the scanner logs to it.
    logs_to: tracing::Dispatch,
}

#[derive(Debug)]
struct Held {
    since: Instant,
    at: &'static Location<'static>,
    /// Whether the scanner has logged it as still held.
    reported: bool,
}

/// One checkout being tracked; dropping it records the connection as returned.
pub(crate) struct Ticket<'t> {
    tracker: &'t LeakTracker,
    id: u64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent whatever panicked while holding them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl LeakTracker {
    /// Tracks the checkouts of the pool at `url`, and starts the process's scanning thread if
    /// this is the first pool that needs it.
    pub(crate) fn start(url: RedactedUrl, threshold: Duration) -> Arc<Self> {
        let tracker = Arc::new(Self {
            url,
            threshold,
            next_id: AtomicU64::new(0),
            held: Mutex::new(HashMap::new()),
            logs_to: tracing::dispatcher::get_default(Clone::clone),
        });
        lock(&TRACKED).push(Arc::downgrade(&tracker));
        SCANNER.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("orm-leak-check".to_owned())
                .spawn(|| loop {
                    std::thread::sleep(SCAN_EVERY);
                    scan();
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "cannot start the connection leak check; only connections returned late will be reported");
            }
        });
        tracker
    }

    /// Records a checkout made by the code at `at`.
    pub(crate) fn checked_out(&self, at: &'static Location<'static>) -> Ticket<'_> {
        let id = self.next_id.fetch_add(1, Relaxed);
        lock(&self.held).insert(
            id,
            Held {
                since: Instant::now(),
                at,
                reported: false,
            },
        );
        Ticket { tracker: self, id }
    }

    /// Logs, once each, the connections held past the threshold.
    fn report_held(&self) {
        let mut held = lock(&self.held);
        for h in held.values_mut() {
            let for_ = h.since.elapsed();
            if !h.reported && for_ >= self.threshold {
                h.reported = true;
                tracing::warn!(
                    url = %self.url,
                    held = ?for_,
                    threshold = ?self.threshold,
                    checked_out_at = %h.at,
                    "connection held past the leak threshold and not returned yet"
                );
            }
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let Some(held) = lock(&self.tracker.held).remove(&self.id) else {
            return;
        };
        let for_ = held.since.elapsed();
        if for_ >= self.tracker.threshold {
            tracing::warn!(
                url = %self.tracker.url,
                held = ?for_,
                threshold = ?self.tracker.threshold,
                checked_out_at = %held.at,
                "connection returned after being held past the leak threshold"
            );
        }
    }
}

/// One pass of the scanning thread over every tracked pool.
fn scan() {
    let trackers: Vec<Arc<LeakTracker>> = {
        let mut tracked = lock(&TRACKED);
        tracked.retain(|t| t.strong_count() > 0);
        tracked.iter().filter_map(Weak::upgrade).collect()
    };
    for tracker in trackers {
        tracing::dispatcher::with_default(&tracker.logs_to, || tracker.report_held());
    }
}
