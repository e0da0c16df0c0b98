//! The cache: a backend behind a circuit breaker, single-flight loads, and the write
//! listener that bumps table generations after every committed write of an attached database.

use std::iter;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orm_core::{Database, WriteListener, Written};

use crate::backend::{CacheBackend, InProcess, Lookup, Redis, RedisConfig, Tiered, ALL_TABLES};
use crate::breaker::Breaker;
use crate::codec::{decode_exact, encode_entry, open_entry, CacheRow, One, Payload};
use crate::flight::{Flights, Leader, Role};
use crate::key::CacheKey;
use crate::stats::{CacheStats, Counters};

/// How a [`Cache`] behaves. Every field documents its default.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// How long an entry lives when neither the read (`.ttl(…)`) nor the model
    /// (`#[orm(cache(ttl = …))]`) says. Default 10 minutes.
    pub default_ttl: Duration,
    /// Up to this fraction of each TTL is taken off at random, so entries stored together do
    /// not expire together. Default 0.1.
    pub ttl_jitter: f64,
    /// After a backend failure, reads skip the backend (and load from the database) for this
    /// long; then one call at a time probes it until one is answered. Default 1 s.
    pub backoff: Duration,
    /// At most one warning per this interval while the backend fails. Default 30 s.
    pub warn_interval: Duration,
    /// A short cross-process lock on a missed key: the first process to miss loads, others
    /// wait up to this long for its entry before loading themselves. `None` (the default):
    /// one loader per key per process only.
    pub lock: Option<Duration>,
    /// Bytes the in-process backend holds at most ([`Cache::in_process`], [`Cache::tiered`]).
    /// Default 64 MiB.
    pub memory_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(600),
            ttl_jitter: 0.1,
            backoff: Duration::from_secs(1),
            warn_interval: Duration::from_secs(30),
            lock: None,
            memory_bytes: 64 << 20,
        }
    }
}

/// A query-result cache. Cheap to clone; clones share everything.
///
/// Reads: `db.cached(&cache).find::<User>(7)` (see [`CachedReads`](crate::CachedReads)), or
/// [`Cache::get_or_load`] for anything else. Invalidation: the first cached read through a
/// [`Database`] attaches the cache to it ([`Cache::attach`]); from then on every write through
/// that database, its clones, sessions and transactions bumps, after commit, the generation of
/// each table it wrote, and entries computed under older generations are not served.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<CacheInner>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.inner.backend.name())
            .field("stats", &self.stats())
            .finish()
    }
}

struct CacheInner {
    backend: Box<dyn CacheBackend>,
    config: CacheConfig,
    breaker: Breaker,
    flights: Flights,
    counters: Counters,
}

impl Cache {
    /// A cache over `backend`.
    pub fn new(backend: impl CacheBackend, config: CacheConfig) -> Self {
        let breaker = Breaker::new(config.backoff, config.warn_interval);
        Self {
            inner: Arc::new(CacheInner {
                backend: Box::new(backend),
                config,
                breaker,
                flights: Flights::default(),
                counters: Counters::default(),
            }),
        }
    }

    /// An in-process cache with the default settings: no server, bounded, per-entry TTL.
    /// Only writes made through this process invalidate it.
    pub fn in_process() -> Self {
        let config = CacheConfig::default();
        Self::new(InProcess::new(config.memory_bytes), config)
    }

    /// A cache in the Redis server at `url`, with the default settings. Nothing connects
    /// here; a server that is down is bypassed until it answers.
    pub fn redis(url: &str) -> crate::Result<Self> {
        Ok(Self::new(
            Redis::new(url, RedisConfig::default())?,
            CacheConfig::default(),
        ))
    }

    /// Redis at `url` when given, else the in-process cache: the embedded default.
    pub fn from_url(url: Option<&str>) -> crate::Result<Self> {
        match url {
            Some(url) => Self::redis(url),
            None => Ok(Self::in_process()),
        }
    }

    /// Two tiers: entries in this process and in Redis at `url`, generations in Redis.
    pub fn tiered(url: &str, redis: RedisConfig, config: CacheConfig) -> crate::Result<Self> {
        let local = InProcess::new(config.memory_bytes);
        Ok(Self::new(
            Tiered::new(local, Redis::new(url, redis)?),
            config,
        ))
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Attach the cache to `db` (and its clones, sessions, transactions): every write through
    /// it then bumps the generations of the tables written. Done by the first cached read
    /// through `db`; call it yourself for a database that writes but never reads cached.
    /// Attaching twice does nothing.
    pub fn attach(&self, db: &Database) {
        let listener: Arc<dyn WriteListener> = self.inner.clone();
        if !db.has_write_listener(&listener) {
            db.add_write_listener(listener);
        }
    }

    /// Make every entry that read one of `tables` stale, as a write of them would: for writes
    /// made outside `orm` (another program, a migration).
    pub fn invalidate_tables(&self, tables: &[&str]) {
        self.inner.bump(tables);
    }

    /// Make every entry stale.
    pub fn invalidate_all(&self) {
        self.inner.bump(&[ALL_TABLES]);
    }

    /// The value under `key`, or `load()`'s, stored for `ttl` (the default TTL when `None`).
    /// The entry is stale once a table of `key` ([`CacheKey::also_reads`]) is written. A cache
    /// that fails is bypassed: `load` runs and its result is returned. Errors of `load` are
    /// returned and not cached.
    pub fn get_or_load<T: CacheRow, E>(
        &self,
        key: &CacheKey,
        ttl: Option<Duration>,
        load: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        self.fetch_or_load(key, ttl, || load().map(One))
            .map(|one| one.0)
    }

    /// The core of every cached read: one lookup; on a fresh entry, decode it; otherwise load
    /// (one loader per key and generations in this process) and store under the generations
    /// read BEFORE the load, so a write that commits during the load leaves the entry stale.
    pub(crate) fn fetch_or_load<P: Payload, E>(
        &self,
        key: &CacheKey,
        ttl: Option<Duration>,
        load: impl FnOnce() -> Result<P, E>,
    ) -> Result<P, E> {
        let inner = &*self.inner;
        let tables: Vec<&str> = iter::once(ALL_TABLES)
            .chain(key.tables().iter().map(|t| t.as_ref()))
            .collect();
        // A backend that fails or is bypassed here is tried no more in this read.
        let Some(found) = inner.lookup(key.as_str(), &tables) else {
            return inner.timed(load);
        };
        if let Some(value) = inner.fresh::<P>(&found) {
            Counters::add(&inner.counters.hits);
            return Ok(value);
        }
        let generations = found.generations;
        match inner.flights.join(key.as_str(), &generations) {
            Role::Follower(flight) => {
                if let Some(value) = flight.wait().and_then(|bytes| decode_entry::<P>(&bytes)) {
                    Counters::add(&inner.counters.hits);
                    return Ok(value);
                }
                inner.load_and_store(key, &tables, &generations, ttl, None, load)
            }
            Role::Leader(leader) => {
                inner.load_and_store(key, &tables, &generations, ttl, Some(leader), load)
            }
            Role::Alone => inner.load_and_store(key, &tables, &generations, ttl, None, load),
        }
    }
}

/// The payload of `found`'s entry, if it is one this version wrote, computed under the
/// generations found with it.
fn fresh_entry<P: Payload>(found: &Lookup) -> Option<P> {
    let entry = open_entry(found.entry.as_deref()?).ok()?;
    if entry.generations != found.generations {
        return None;
    }
    decode_exact(entry.payload).ok()
}

/// The payload of a whole entry, if it is one this version wrote.
fn decode_entry<P: Payload>(bytes: &[u8]) -> Option<P> {
    let entry = open_entry(bytes).ok()?;
    decode_exact(entry.payload).ok()
}

/// What a backend call made through the circuit breaker came to.
enum Called<T> {
    /// The backend answered.
    Answered(T),
    /// The backend failed: counted, and the breaker is open.
    Failed,
    /// The breaker did not let the call through: the backend was not tried.
    Bypassed,
}

/// With the cross-process lock on, what a reader that missed found before loading.
enum LockWait<P> {
    /// It took the lock: load, store, then unlock.
    Locked,
    /// Another process stored a fresh entry meanwhile.
    Stored(P),
    /// No lock (the lease ran out, or the breaker bypassed the backend): load and store.
    NotLocked,
    /// The backend failed: load, and try it no more in this read.
    Failed,
}

impl CacheInner {
    /// One backend call, if the breaker lets it through (never waiting for it), reported to
    /// the breaker. A call to Redis ends within its command timeout, so a hung backend costs
    /// each call that timeout at most, and a bypassed call nothing.
    fn call<T>(
        &self,
        what: &str,
        call: impl FnOnce(&dyn CacheBackend) -> crate::Result<T>,
    ) -> Called<T> {
        let Some(pass) = self.breaker.admit() else {
            return Called::Bypassed;
        };
        match call(&*self.backend) {
            Ok(value) => {
                self.breaker.succeeded(&pass);
                Called::Answered(value)
            }
            Err(e) => {
                // Reported while the pass is held: the next probe waits for the new backoff.
                self.failed(what, &e);
                Called::Failed
            }
        }
    }

    /// The lookup a cached read starts with, after making up for any bump lost while the
    /// backend failed (by invalidating everything). `None` when the backend failed or was
    /// bypassed (counted): the read then loads from the database and tries the backend no
    /// more, so it waits for at most one failing call.
    fn lookup(&self, key: &str, tables: &[&str]) -> Option<Lookup> {
        if self.breaker.has_lost_bump() {
            match self.call("bump", |b| b.bump(&[ALL_TABLES])) {
                Called::Answered(()) => {
                    self.breaker.recovered_bump();
                    Counters::add(&self.counters.bumps);
                }
                Called::Failed => return None,
                Called::Bypassed => {
                    Counters::add(&self.counters.bypassed);
                    return None;
                }
            }
        }
        match self.call("lookup", |b| b.lookup(key, tables)) {
            Called::Answered(found) => Some(found),
            Called::Failed => None,
            Called::Bypassed => {
                Counters::add(&self.counters.bypassed);
                None
            }
        }
    }

    fn failed(&self, what: &str, error: &crate::Error) {
        Counters::add(&self.counters.errors);
        self.breaker.failed(what, error);
    }

    /// The entry's value if it is present, readable, and computed under the current
    /// generations; counts the miss, stale entry or unreadable entry otherwise.
    fn fresh<P: Payload>(&self, found: &Lookup) -> Option<P> {
        let Some(bytes) = &found.entry else {
            Counters::add(&self.counters.misses);
            return None;
        };
        let Ok(entry) = open_entry(bytes) else {
            Counters::add(&self.counters.errors);
            Counters::add(&self.counters.misses);
            return None;
        };
        if entry.generations != found.generations {
            Counters::add(&self.counters.stale);
            return None;
        }
        match decode_exact(entry.payload) {
            Ok(value) => Some(value),
            Err(_) => {
                Counters::add(&self.counters.errors);
                Counters::add(&self.counters.misses);
                None
            }
        }
    }

    fn timed<P, E>(&self, load: impl FnOnce() -> Result<P, E>) -> Result<P, E> {
        let started = Instant::now();
        let result = load();
        self.counters.loaded(started.elapsed());
        result
    }

    fn load_and_store<P: Payload, E>(
        &self,
        key: &CacheKey,
        tables: &[&str],
        generations: &[u64],
        ttl: Option<Duration>,
        leader: Option<Leader<'_>>,
        load: impl FnOnce() -> Result<P, E>,
    ) -> Result<P, E> {
        let lock = match self.config.lock {
            Some(lease) => self.wait_for_other_process::<P>(key, tables, lease),
            None => LockWait::NotLocked,
        };
        if let LockWait::Stored(value) = lock {
            Counters::add(&self.counters.hits);
            return Ok(value);
        }
        let result = self.timed(load);
        let entry = result
            .as_ref()
            .ok()
            .and_then(|value| encode_entry(generations, value).ok())
            .map(Arc::new);
        // The followers in this process take the entry now, without waiting for the store.
        if let Some(leader) = leader {
            leader.finish(entry.clone());
        }
        if let LockWait::Failed = lock {
            return result; // this read has had its one failing call
        }
        let stored = match &entry {
            Some(entry) => {
                let ttl = self.jittered(key, ttl.unwrap_or(self.config.default_ttl));
                self.call("store", |b| b.store(key.as_str(), entry, ttl))
            }
            None => Called::Answered(()),
        };
        if let (LockWait::Locked, Called::Answered(())) = (lock, stored) {
            // Unanswered, the lock runs out with its lease.
            let _ = self.call("unlock", |b| b.unlock(key.as_str()));
        }
        result
    }

    /// With the cross-process lock on: take it, or wait for the process holding it to store
    /// a fresh entry, or give up after `lease`.
    fn wait_for_other_process<P: Payload>(
        &self,
        key: &CacheKey,
        tables: &[&str],
        lease: Duration,
    ) -> LockWait<P> {
        match self.call("lock", |b| b.try_lock(key.as_str(), lease)) {
            Called::Answered(true) => return LockWait::Locked,
            Called::Answered(false) => {}
            Called::Failed => return LockWait::Failed,
            Called::Bypassed => return LockWait::NotLocked,
        }
        let deadline = Instant::now() + lease;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5).min(lease));
            match self.call("lookup", |b| b.lookup(key.as_str(), tables)) {
                Called::Answered(found) => {
                    if let Some(value) = fresh_entry(&found) {
                        return LockWait::Stored(value);
                    }
                }
                Called::Failed => return LockWait::Failed,
                Called::Bypassed => return LockWait::NotLocked,
            }
        }
        LockWait::NotLocked
    }

    /// `ttl` less up to `ttl_jitter` of it, at random.
    fn jittered(&self, key: &CacheKey, ttl: Duration) -> Duration {
        let jitter = self.config.ttl_jitter.clamp(0.0, 1.0);
        if jitter == 0.0 {
            return ttl;
        }
        let nanos = Instant::now()
            .duration_since(self.breaker_start())
            .as_nanos() as u64;
        let random = xxhash_rust::xxh3::xxh3_64_with_seed(key.as_str().as_bytes(), nanos);
        let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
        ttl.mul_f64(1.0 - jitter * fraction)
            .max(Duration::from_millis(1))
    }

    fn breaker_start(&self) -> Instant {
        self.breaker.started()
    }

    /// Bump the generations of `tables` in the backend; when it cannot be reached, remember
    /// that a bump was lost, so everything is invalidated before the backend is read again.
    fn bump(&self, tables: &[&str]) {
        match self.call("bump", |b| b.bump(tables)) {
            Called::Answered(()) => Counters::add(&self.counters.bumps),
            Called::Failed | Called::Bypassed => self.breaker.lose_bump(),
        }
    }
}

impl WriteListener for CacheInner {
    fn tables_written(&self, written: Written<'_>) {
        if written.unknown {
            self.bump(&[ALL_TABLES]);
        } else {
            self.bump(written.tables);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_jittered_within_the_fraction() {
        let cache = Cache::new(
            InProcess::new(1 << 20),
            CacheConfig {
                ttl_jitter: 0.5,
                ..CacheConfig::default()
            },
        );
        let ttl = Duration::from_secs(100);
        let ttls: Vec<Duration> = (0..200)
            .map(|i| {
                let key = CacheKey::for_tables(vec!["t".into()], 0, format!("{i}").as_bytes());
                cache.inner.jittered(&key, ttl)
            })
            .collect();
        assert!(ttls.iter().all(|t| *t <= ttl && *t >= ttl / 2));
        let distinct: std::collections::HashSet<_> = ttls.iter().collect();
        assert!(distinct.len() > 150, "spread, not one value");
    }
}
