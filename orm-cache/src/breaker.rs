//! The circuit breaker: after a backend failure, stop trying for a backoff period, then let
//! ONE call through as a probe, so an outage costs one timeout per period rather than one per
//! read (or one per thread); warn at most once per interval.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Closed (every call goes to the backend), open (none does) until a deadline after each
/// failure, then half-open: one call at a time goes through as a probe, the others bypass
/// the backend without waiting for it.
#[derive(Debug)]
pub(crate) struct Breaker {
    backoff: Duration,
    warn_interval: Duration,
    start: Instant,
    /// Nanoseconds since `start` until which the backend is not tried; 0 when closed.
    open_until: AtomicU64,
    /// A probe is in flight (only looked at once the backoff has run out).
    probing: AtomicBool,
    /// Failures so far: a call that began before the latest failure does not close the
    /// breaker when it succeeds, since its answer says nothing about the backend since then.
    failures: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    /// A bump failed: entries written before it may be stale in the backend, so before the
    /// next read from it, every entry is invalidated (the global generation is bumped).
    lost_bump: AtomicBool,
}

/// Leave to make one backend call, from [`Breaker::admit`]; report how it went with
/// [`Breaker::succeeded`] or [`Breaker::failed`] before dropping it. A probe's pass lets the
/// next probe through when dropped.
#[derive(Debug)]
pub(crate) struct Pass<'a> {
    breaker: &'a Breaker,
    /// [`Breaker::failures`] when the call was admitted.
    failures_seen: u64,
    probe: bool,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, SeqCst);
        }
    }
}

impl Breaker {
    pub fn new(backoff: Duration, warn_interval: Duration) -> Self {
        Self {
            backoff,
            warn_interval,
            start: Instant::now(),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            failures: AtomicU64::new(0),
            last_warning: Mutex::new(None),
            lost_bump: AtomicBool::new(false),
        }
    }

    /// When the breaker was made: a clock origin.
    pub fn started(&self) -> Instant {
        self.start
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Whether one backend call may be made now: always when closed; never while open; when
    /// the backoff has run out, to the one caller that becomes the probe, until it reports.
    /// Never waits.
    pub fn admit(&self) -> Option<Pass<'_>> {
        // Read before `open_until`: `failed` writes them in the other order.
        let failures_seen = self.failures.load(SeqCst);
        let until = self.open_until.load(SeqCst);
        if until == 0 {
            return Some(Pass {
                breaker: self,
                failures_seen,
                probe: false,
            });
        }
        if self.now() < until || self.probing.swap(true, SeqCst) {
            return None;
        }
        // This caller is the probe, unless the last probe failed (and re-opened the breaker)
        // between the check above and the swap.
        let pass = Pass {
            breaker: self,
            failures_seen: self.failures.load(SeqCst),
            probe: true,
        };
        let until = self.open_until.load(SeqCst);
        (until == 0 || self.now() >= until).then_some(pass)
    }

    /// The call `pass` admitted was answered: close, unless another call failed since it
    /// was admitted.
    pub fn succeeded(&self, pass: &Pass<'_>) {
        let until = self.open_until.load(SeqCst);
        if until == 0 || self.failures.load(SeqCst) != pass.failures_seen {
            return;
        }
        // A failure in between writes another deadline, and the breaker stays open.
        if self
            .open_until
            .compare_exchange(until, 0, SeqCst, SeqCst)
            .is_ok()
        {
            tracing::info!("query cache backend answers again; caching resumes");
        }
    }

    /// The backend failed doing `what`: open for the backoff, and warn unless a warning was
    /// given within the interval.
    pub fn failed(&self, what: &str, error: &crate::Error) {
        let until = self
            .now()
            .saturating_add(u64::try_from(self.backoff.as_nanos()).unwrap_or(u64::MAX));
        self.open_until.store(until.max(1), SeqCst);
        self.failures.fetch_add(1, SeqCst);
        let mut last = self.last_warning.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| at.elapsed() >= self.warn_interval) {
            *last = Some(Instant::now());
            tracing::warn!(
                %error,
                backoff = ?self.backoff,
                "query cache backend failed ({what}); reads go to the database until it answers"
            );
        }
    }

    pub fn lose_bump(&self) {
        self.lost_bump.store(true, SeqCst);
    }

    pub fn has_lost_bump(&self) -> bool {
        self.lost_bump.load(SeqCst)
    }

    pub fn recovered_bump(&self) {
        self.lost_bump.store(false, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn down() -> crate::Error {
        crate::Error::Backend {
            backend: "test",
            message: "down".to_owned(),
        }
    }

    #[test]
    fn opens_for_the_backoff_then_lets_one_probe_through() {
        let breaker = Breaker::new(Duration::from_millis(50), Duration::from_secs(60));
        let pass = breaker.admit().expect("closed");
        breaker.failed("lookup", &down());
        drop(pass);
        assert!(breaker.admit().is_none(), "open");
        std::thread::sleep(Duration::from_millis(60));
        let probe = breaker.admit().expect("half-open: a probe");
        assert!(breaker.admit().is_none(), "one probe at a time");
        breaker.succeeded(&probe);
        drop(probe);
        let (a, b) = (breaker.admit(), breaker.admit());
        assert!(a.is_some() && b.is_some(), "closed again");
        breaker.lose_bump();
        assert!(breaker.has_lost_bump());
        breaker.recovered_bump();
        assert!(!breaker.has_lost_bump());
    }

    #[test]
    fn a_call_admitted_before_a_failure_does_not_close_the_breaker() {
        let breaker = Breaker::new(Duration::from_secs(60), Duration::from_secs(60));
        let early = breaker.admit().expect("closed");
        let failing = breaker.admit().expect("closed");
        breaker.failed("lookup", &down());
        drop(failing);
        breaker.succeeded(&early);
        assert!(breaker.admit().is_none(), "still open");
    }

    #[test]
    fn a_failed_probe_reopens_for_the_backoff() {
        let breaker = Breaker::new(Duration::from_millis(50), Duration::from_secs(60));
        breaker.failed("lookup", &down());
        std::thread::sleep(Duration::from_millis(60));
        let probe = breaker.admit().expect("a probe");
        breaker.failed("lookup", &down());
        drop(probe);
        assert!(
            breaker.admit().is_none(),
            "open again after the probe failed"
        );
    }

    /// 16 threads call through a breaker whose backend always fails: while half-open, exactly
    /// one probe is in flight at a time, and probes start at most once per backoff.
    #[test]
    fn many_threads_half_open_admit_exactly_one_probe_at_a_time() {
        let backoff = Duration::from_millis(20);
        let breaker = Breaker::new(backoff, Duration::from_secs(60));
        breaker.failed("lookup", &down());
        let in_flight = AtomicUsize::new(0);
        let most_in_flight = AtomicUsize::new(0);
        let probes = AtomicUsize::new(0);
        let bypassed = AtomicUsize::new(0);
        let period = Duration::from_millis(500);
        let until = Instant::now() + period;
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    while Instant::now() < until {
                        let Some(pass) = breaker.admit() else {
                            bypassed.fetch_add(1, SeqCst);
                            std::hint::spin_loop();
                            continue;
                        };
                        assert!(pass.probe, "the backend never answers: never closed");
                        probes.fetch_add(1, SeqCst);
                        let now = in_flight.fetch_add(1, SeqCst) + 1;
                        most_in_flight.fetch_max(now, SeqCst);
                        std::thread::sleep(Duration::from_millis(2)); // the call's timeout
                        in_flight.fetch_sub(1, SeqCst);
                        breaker.failed("lookup", &down());
                        drop(pass);
                    }
                });
            }
        });
        let probes = probes.load(SeqCst);
        assert_eq!(most_in_flight.load(SeqCst), 1, "one probe at a time");
        assert!(bypassed.load(SeqCst) > 0);
        // A probe starts only once the backoff after the last failure has run out.
        let most = (period.as_nanos() / backoff.as_nanos()) as usize;
        assert!(
            probes >= 1 && probes <= most,
            "{probes} probes (at most {most})"
        );
    }
}
