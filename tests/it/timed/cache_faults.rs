//! A cache outage never fails a read: Redis stopped, hung (SIGSTOP) or answering errors while
//! threads read through the cache, and foreign bytes under its keys; what a hang costs each read
//! and how often the circuit breaker lets a call through. Each test starts its own
//! `redis-server` on a spare port in 6390–6399 and kills it when done; the shared Redis is
//! never touched.

use crate::common;

use orm::prelude::*;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use orm::cache::{Cache, CacheConfig, CachedReads, Redis, RedisConfig};
use orm::{Database, Model};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = items)]
pub struct Item {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub label: String,
    pub qty: i64,
}

/// The test that times each read runs alone; the others share the machine with each other.
static TIMING: RwLock<()> = RwLock::new(());

fn alongside_others() -> RwLockReadGuard<'static, ()> {
    TIMING.read().unwrap_or_else(|e| e.into_inner())
}

fn alone() -> RwLockWriteGuard<'static, ()> {
    TIMING.write().unwrap_or_else(|e| e.into_inner())
}

/// A `redis-server` of this test's own, killed on drop (resumed first if paused).
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    /// A server on the next free port in 6390–6399.
    fn start() -> Self {
        static NEXT: AtomicU16 = AtomicU16::new(0);
        for _ in 0..10 {
            let port = 6390 + NEXT.fetch_add(1, Ordering::SeqCst) % 10;
            if TcpListener::bind(("127.0.0.1", port)).is_ok() {
                let mut redis = Self { port, child: None };
                redis.restart();
                return redis;
            }
        }
        panic!("no free port in 6390-6399 for a test redis-server");
    }

    /// Start the server (again) on its port; waits until it answers.
    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/services installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.cli(&["PING"]).trim() != "PONG" {
            assert!(Instant::now() < deadline, "test redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let ok = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "kill {signal}");
        }
    }

    /// Kill the server (as a crash would).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.stop();
    }
}

/// A cache over `redis` with short timeouts and backoff, so the test runs in seconds.
fn cache_on(redis: &OwnRedis) -> Cache {
    let backend = Redis::new(
        &redis.url(),
        RedisConfig {
            connect_timeout: Duration::from_millis(100),
            command_timeout: Duration::from_millis(100),
            ..RedisConfig::default()
        },
    )
    .unwrap();
    Cache::new(
        backend,
        CacheConfig {
            backoff: Duration::from_millis(200),
            ..CacheConfig::default()
        },
    )
}

/// PostgreSQL when available (as the shared servers are), else SQLite in memory when this
/// build has it.
fn database(test: &str) -> Option<Database> {
    let db = common::postgres(test).or_else(|| {
        cfg!(feature = "sqlite").then(|| Database::connect("sqlite::memory:").unwrap())
    })?;
    db.create_table::<Item>().unwrap();
    Some(db)
}

fn seed(db: &Database, n: usize) -> Vec<Item> {
    (0..n)
        .map(|i| {
            db.insert::<Item>(&NewItem {
                label: format!("item {i}"),
                qty: i as i64,
            })
            .unwrap()
        })
        .collect()
}

/// 4 threads read every row through the cache until told to stop; each read must succeed
/// with the row's current value (`expected` is updated by writers) within `max_wait`.
fn read_while<F: FnOnce()>(db: &Database, cache: &Cache, items: &[Item], during: F) -> usize {
    let stop = AtomicBool::new(false);
    let failed = AtomicUsize::new(0);
    let reads = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4 {
            let (stop, failed, reads) = (&stop, &failed, &reads);
            s.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let item = &items[i % items.len()];
                    let started = Instant::now();
                    match db.cached(cache).find::<Item>(item.id) {
                        Ok(found) if found.label == item.label => {}
                        other => {
                            eprintln!("read failed: {other:?}");
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    // A read waits at most one command timeout for the cache, and the
                    // database's own time: 2 s is far beyond both.
                    if started.elapsed() > Duration::from_secs(2) {
                        eprintln!("read took {:?}", started.elapsed());
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    reads.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        during();
        stop.store(true, Ordering::Relaxed);
    });
    assert!(reads.load(Ordering::Relaxed) > 100, "the threads read");
    failed.load(Ordering::Relaxed)
}

/// Hits counted over `period` of reads.
fn hits_during(db: &Database, cache: &Cache, items: &[Item], period: Duration) -> u64 {
    let before = cache.stats().hits;
    let failed = read_while(db, cache, items, || std::thread::sleep(period));
    assert_eq!(failed, 0);
    cache.stats().hits - before
}

#[test]
fn redis_stopped_during_reads_fails_none_and_hits_resume() {
    let _share = alongside_others();
    let mut redis = OwnRedis::start();
    let Some(db) = database("cache_fault_stop") else {
        return;
    };
    let cache = cache_on(&redis);
    let items = seed(&db, 8);
    assert!(hits_during(&db, &cache, &items, Duration::from_millis(300)) > 0);

    let failed = read_while(&db, &cache, &items, || {
        std::thread::sleep(Duration::from_millis(200));
        redis.stop();
        std::thread::sleep(Duration::from_millis(800));
    });
    assert_eq!(failed, 0, "no read failed while Redis was down");
    let down = cache.stats();
    assert!(
        down.errors > 0 && down.bypassed > 0,
        "the outage was seen: {down:?}"
    );

    redis.restart();
    std::thread::sleep(Duration::from_millis(300)); // past the backoff
    let hits = hits_during(&db, &cache, &items, Duration::from_millis(500));
    assert!(
        hits > 0,
        "hits resume once Redis is back: {:?}",
        cache.stats()
    );
}

#[test]
fn redis_hung_reads_return_within_the_timeout_and_no_write_is_lost() {
    let _share = alongside_others();
    let redis = OwnRedis::start();
    let Some(db) = database("cache_fault_hung") else {
        return;
    };
    let cache = cache_on(&redis);
    let mut items = seed(&db, 4);
    assert!(hits_during(&db, &cache, &items, Duration::from_millis(300)) > 0);

    redis.signal("-STOP");
    let failed = read_while(&db, &cache, &items, || {
        std::thread::sleep(Duration::from_millis(800));
    });
    assert_eq!(failed, 0, "reads went to the database within the timeout");
    // A write while Redis hangs: its bump cannot reach Redis, whose entries survive the hang.
    items[0].label = "changed while Redis hung".into();
    db.update(&items[0]).unwrap();
    redis.signal("-CONT");
    std::thread::sleep(Duration::from_millis(300));
    // The entry from before the write is still in Redis under current generations; the lost
    // bump must have invalidated it before it is served.
    assert_eq!(
        db.cached(&cache).find::<Item>(items[0].id).unwrap().label,
        "changed while Redis hung"
    );
    assert!(hits_during(&db, &cache, &items, Duration::from_millis(500)) > 0);
}

#[test]
fn redis_answering_errors_fails_no_read() {
    let _share = alongside_others();
    let redis = OwnRedis::start();
    let Some(db) = database("cache_fault_errors") else {
        return;
    };
    let cache = cache_on(&redis);
    let items = seed(&db, 4);
    // Out of memory: every write command (SET, INCR) is refused with an error reply.
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "1"]).trim(), "OK");
    let failed = read_while(&db, &cache, &items, || {
        std::thread::sleep(Duration::from_millis(600))
    });
    assert_eq!(failed, 0);
    assert!(cache.stats().errors > 0, "{:?}", cache.stats());
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "0"]).trim(), "OK");
    std::thread::sleep(Duration::from_millis(300));
    let _ = hits_during(&db, &cache, &items, Duration::from_millis(300)); // refill
    assert!(hits_during(&db, &cache, &items, Duration::from_millis(300)) > 0);
}

#[test]
fn foreign_or_corrupt_bytes_are_misses() {
    let _share = alongside_others();
    let redis = OwnRedis::start();
    let Some(db) = database("cache_fault_corrupt") else {
        return;
    };
    let cache = cache_on(&redis);
    let items = seed(&db, 1);
    let item = &items[0];
    let key = Item::cache_key(&item.id);
    let mut conn = redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    // A genuine entry, then variations of it.
    db.cached(&cache).find::<Item>(item.id).unwrap();
    let genuine: Vec<u8> = redis::cmd("GET")
        .arg(key.as_str())
        .query(&mut conn)
        .unwrap();
    let mut flipped = genuine.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0xff;
    let candidates: Vec<Vec<u8>> = vec![
        b"not an entry".to_vec(),
        Vec::new(),
        genuine[..genuine.len() / 2].to_vec(),
        flipped,
        vec![0xC7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff],
    ];
    for bytes in candidates {
        redis::cmd("SET")
            .arg(key.as_str())
            .arg(&bytes)
            .query::<()>(&mut conn)
            .unwrap();
        let errors = cache.stats().errors;
        assert_eq!(&db.cached(&cache).find::<Item>(item.id).unwrap(), item);
        assert_eq!(
            cache.stats().errors,
            errors + 1,
            "counted as unreadable: {bytes:?}"
        );
    }
    // After the bad entry was replaced by a load, it is a hit again.
    let hits = cache.stats().hits;
    db.cached(&cache).find::<Item>(item.id).unwrap();
    assert_eq!(cache.stats().hits, hits + 1);
    // A foreign value under a generation key: never equal to an entry's, so a miss.
    redis::cmd("SET")
        .arg("orm:gen:items")
        .arg("not a number")
        .query::<()>(&mut conn)
        .unwrap();
    assert_eq!(&db.cached(&cache).find::<Item>(item.id).unwrap(), item);
    assert_eq!(cache.stats().hits, hits + 1);
}

/// Threads reading at once in [`timed_reads`].
const READERS: usize = 4;

/// [`READERS`] threads call `read` on the items in turn for `period`; every read must return
/// the item it asked for (any other `Ok` or an `Err` fails the test). The duration of each.
fn timed_reads(
    items: &[Item],
    period: Duration,
    read: impl Fn(&Item) -> orm::Result<Item> + Sync,
) -> Vec<Duration> {
    let until = Instant::now() + period;
    let read = &read;
    let mut durations = std::thread::scope(|s| {
        let threads: Vec<_> = (0..READERS)
            .map(|t| {
                s.spawn(move || {
                    let mut durations = Vec::new();
                    let mut i = t;
                    while Instant::now() < until {
                        let item = &items[i % items.len()];
                        let started = Instant::now();
                        let found = read(item);
                        durations.push(started.elapsed());
                        assert_eq!(found.as_ref().ok(), Some(item), "{found:?}");
                        i += 1;
                    }
                    durations
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("reader thread"))
            .collect::<Vec<_>>()
    });
    durations.sort_unstable();
    assert!(durations.len() > 10, "the threads read");
    durations
}

#[test]
fn redis_hung_costs_a_read_at_most_one_command_timeout_and_is_probed_once_per_backoff() {
    let _alone = alone();
    let redis = OwnRedis::start();
    let Some(db) = database("cache_fault_hang_cost") else {
        return;
    };
    // The default settings: command timeout 100 ms, connect timeout 200 ms, backoff 1 s.
    let redis_config = RedisConfig::default();
    let config = CacheConfig::default();
    let command_timeout = redis_config.command_timeout;
    let backoff = config.backoff;
    let cache = Cache::new(Redis::new(&redis.url(), redis_config).unwrap(), config);
    let items = seed(&db, 16);
    let uncached = timed_reads(&items, Duration::from_secs(1), |item| {
        db.find::<Item>(item.id)
    });
    let uncached_median = uncached[uncached.len() / 2];
    let cached = || |item: &Item| db.cached(&cache).find::<Item>(item.id);
    timed_reads(&items, Duration::from_millis(500), cached()); // warm
    assert!(cache.stats().hits > 0, "{:?}", cache.stats());

    let hang = Duration::from_secs(8);
    let before = cache.stats();
    redis.signal("-STOP");
    let stopped = Instant::now();
    let during = timed_reads(&items, hang, cached());
    // Every reader has finished its last read: nothing is in flight.
    let hung_for = stopped.elapsed();
    let after = cache.stats();
    redis.signal("-CONT");

    let errors = after.errors - before.errors;
    let slowest = *during.last().unwrap();
    eprintln!(
        "hung {hung_for:?}: {} reads, uncached median {uncached_median:?}, cached during the \
         hang: median {:?}, slowest {slowest:?}; {errors} errors, {} bypassed",
        during.len(),
        during[during.len() / 2],
        after.bypassed - before.bypassed,
    );
    // A read tries Redis at most once, and that try ends within one command timeout, checkout
    // included: the rest is the database's time.
    let slack = Duration::from_millis(50);
    assert!(
        slowest <= uncached_median + command_timeout + slack,
        "a read during the hang took {slowest:?}: more than one command timeout \
         ({command_timeout:?}) over the uncached median ({uncached_median:?})"
    );
    // Errors: each reader's try in flight when Redis stopped, then one probe per backoff at
    // most (a probe is let through only once the backoff has run out after the last failure).
    let most = READERS as u64 + (hung_for.as_secs_f64() / backoff.as_secs_f64()) as u64;
    assert!(
        errors >= 1 && errors <= most,
        "{errors} errors during a hang of {hung_for:?} (at most {most})"
    );
    assert!(after.bypassed > before.bypassed, "{after:?}");

    // Caching resumes once a probe gets through after the backoff.
    std::thread::sleep(backoff + command_timeout);
    let hits = cache.stats().hits;
    timed_reads(&items, Duration::from_millis(500), cached());
    assert!(cache.stats().hits > hits, "{:?}", cache.stats());
}
