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
    /// long. Default 1 s.
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
        if !inner.backend_usable() {
            Counters::add(&inner.counters.bypassed);
            return inner.timed(load);
        }
        let found = match inner.backend.lookup(key.as_str(), &tables) {
            Ok(found) => {
                inner.breaker.succeeded();
                found
            }
            Err(e) => {
                inner.failed("lookup", &e);
                return inner.timed(load);
            }
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

/// The payload of a whole entry, if it is one this version wrote.
fn decode_entry<P: Payload>(bytes: &[u8]) -> Option<P> {
    let entry = open_entry(bytes).ok()?;
    decode_exact(entry.payload).ok()
}

impl CacheInner {
    /// Whether to try the backend: its breaker is closed, and any bump lost while it failed
    /// has been made up for (by invalidating everything).
    fn backend_usable(&self) -> bool {
        if !self.breaker.allows() {
            return false;
        }
        if self.breaker.has_lost_bump() {
            match self.backend.bump(&[ALL_TABLES]) {
                Ok(()) => {
                    self.breaker.recovered_bump();
                    Counters::add(&self.counters.bumps);
                }
                Err(e) => {
                    self.failed("bump", &e);
                    return false;
                }
            }
        }
        true
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
        let locked = match self.config.lock {
            Some(lease) => match self.wait_for_other_process::<P>(key, tables, lease) {
                Ok(value) => {
                    Counters::add(&self.counters.hits);
                    return Ok(value);
                }
                Err(locked) => locked,
            },
            None => false,
        };
        let result = self.timed(load);
        let entry = result.as_ref().ok().and_then(|value| {
            let entry = encode_entry(generations, value).ok()?;
            let ttl = self.jittered(key, ttl.unwrap_or(self.config.default_ttl));
            if let Err(e) = self.backend.store(key.as_str(), &entry, ttl) {
                self.failed("store", &e);
            }
            Some(Arc::new(entry))
        });
        if let Some(leader) = leader {
            leader.finish(entry);
        }
        if locked {
            if let Err(e) = self.backend.unlock(key.as_str()) {
                self.failed("unlock", &e);
            }
        }
        result
    }

    /// With the cross-process lock on: take it (`Err(true)`: load, then unlock), or wait for
    /// the process holding it to store a fresh entry (`Ok`), or give up after `lease`
    /// (`Err(false)`: load without the lock).
    fn wait_for_other_process<P: Payload>(
        &self,
        key: &CacheKey,
        tables: &[&str],
        lease: Duration,
    ) -> Result<P, bool> {
        match self.backend.try_lock(key.as_str(), lease) {
            Ok(true) => return Err(true),
            Ok(false) => {}
            Err(e) => {
                self.failed("lock", &e);
                return Err(false);
            }
        }
        let deadline = Instant::now() + lease;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5).min(lease));
            match self.backend.lookup(key.as_str(), tables) {
                Ok(found) => {
                    if let Some(bytes) = &found.entry {
                        if let Ok(entry) = open_entry(bytes) {
                            if entry.generations == found.generations {
                                if let Ok(value) = decode_exact(entry.payload) {
                                    return Ok(value);
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    self.failed("lookup", &e);
                    return Err(false);
                }
            }
        }
        Err(false)
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
        if !self.breaker.allows() {
            self.breaker.lose_bump();
            return;
        }
        match self.backend.bump(tables) {
            Ok(()) => {
                Counters::add(&self.counters.bumps);
                self.breaker.succeeded();
            }
            Err(e) => {
                self.breaker.lose_bump();
                self.failed("bump", &e);
            }
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
