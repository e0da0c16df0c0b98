//! The circuit breaker: after a backend failure, stop trying for a backoff period, so an
//! outage costs one timeout per period rather than one per read; warn at most once per
//! interval.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Open (bypassing the backend) until a deadline after each failure.
#[derive(Debug)]
pub(crate) struct Breaker {
    backoff: Duration,
    warn_interval: Duration,
    start: Instant,
    /// Nanoseconds since `start` until which the backend is not tried; 0 when closed.
    open_until: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
    /// A bump failed: entries written before it may be stale in the backend, so before the
    /// next read from it, every entry is invalidated (the global generation is bumped).
    lost_bump: AtomicBool,
}

impl Breaker {
    pub fn new(backoff: Duration, warn_interval: Duration) -> Self {
        Self {
            backoff,
            warn_interval,
            start: Instant::now(),
            open_until: AtomicU64::new(0),
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

    /// Whether the backend may be tried now.
    pub fn allows(&self) -> bool {
        let until = self.open_until.load(Ordering::Acquire);
        until == 0 || self.now() >= until
    }

    /// The backend answered: close.
    pub fn succeeded(&self) {
        if self.open_until.load(Ordering::Relaxed) != 0 {
            self.open_until.store(0, Ordering::Release);
            tracing::info!("query cache backend answers again; caching resumes");
        }
    }

    /// The backend failed doing `what`: open for the backoff, and warn unless a warning was
    /// given within the interval.
    pub fn failed(&self, what: &str, error: &crate::Error) {
        let until = self
            .now()
            .saturating_add(u64::try_from(self.backoff.as_nanos()).unwrap_or(u64::MAX));
        self.open_until.store(until.max(1), Ordering::Release);
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
        self.lost_bump.store(true, Ordering::Release);
    }

    pub fn has_lost_bump(&self) -> bool {
        self.lost_bump.load(Ordering::Acquire)
    }

    pub fn recovered_bump(&self) {
        self.lost_bump.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_for_the_backoff_then_closes() {
        let breaker = Breaker::new(Duration::from_millis(50), Duration::from_secs(60));
        assert!(breaker.allows());
        let error = crate::Error::Backend {
            backend: "test",
            message: "down".to_owned(),
        };
        breaker.failed("lookup", &error);
        assert!(!breaker.allows());
        std::thread::sleep(Duration::from_millis(60));
        assert!(breaker.allows(), "tried again after the backoff");
        breaker.succeeded();
        assert!(breaker.allows());
        breaker.lose_bump();
        assert!(breaker.has_lost_bump());
        breaker.recovered_bump();
        assert!(!breaker.has_lost_bump());
    }
}
