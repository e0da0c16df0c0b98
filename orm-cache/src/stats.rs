//! Counters of what cached reads did.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// What the cache has done since it was built: [`Cache::stats`](crate::Cache::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Reads served from the cache (including reads that waited for another thread's load of
    /// the same key and took its result).
    pub hits: u64,
    /// Reads that found no entry (or an unreadable one) and loaded from the database.
    pub misses: u64,
    /// Reads that found an entry computed before a write of one of its tables, and loaded.
    pub stale: u64,
    /// Backend failures (timeouts, refused connections, error replies) and unreadable entries;
    /// none of them failed a read.
    pub errors: u64,
    /// Reads that did not try the backend because its circuit breaker was open.
    pub bypassed: u64,
    /// Loads from the database made for cached reads.
    pub loads: u64,
    /// Total time those loads took.
    pub load_time: Duration,
    /// Generation bumps that reached the backend.
    pub bumps: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub stale: AtomicU64,
    pub errors: AtomicU64,
    pub bypassed: AtomicU64,
    pub loads: AtomicU64,
    pub load_nanos: AtomicU64,
    pub bumps: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn loaded(&self, took: Duration) {
        self.loads.fetch_add(1, Relaxed);
        self.load_nanos
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Relaxed),
            misses: self.misses.load(Relaxed),
            stale: self.stale.load(Relaxed),
            errors: self.errors.load(Relaxed),
            bypassed: self.bypassed.load(Relaxed),
            loads: self.loads.load(Relaxed),
            load_time: Duration::from_nanos(self.load_nanos.load(Relaxed)),
            bumps: self.bumps.load(Relaxed),
        }
    }
}
