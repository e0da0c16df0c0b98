//! Pool configuration against real servers: size and overflow, the checkout timeout and its
//! numbers, no pool, recycle, pre-ping, statement timeout, leak detection, metrics, SQLite files,
//! invalid settings, and PgBouncer in transaction mode.
//!
//! Durations are kept short so the suite is quick; assertions are about outcomes (which
//! connection, which error, which counts), with only generous bounds on time. Connections are
//! counted on the server too (`pg_stat_activity`, by the `application_name` a test puts in its
//! URL), not only as the pool reports them.

use crate::common;

use orm::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::dsl::sql;
use diesel::sql_types::Integer;
use orm::pool::PoolState;
use orm::{Database, Error, Model, PoolConfig};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = pool_items)]
pub struct Item {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
    pub count: i32,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A PostgreSQL database in a fresh schema for `test`, opened with `config`.
fn postgres(test: &str, config: PoolConfig) -> Option<Database> {
    let url = common::postgres_url(test)?;
    Some(
        Database::builder(&url)
            .pool(config)
            .connect()
            .expect("connect with the pool configuration"),
    )
}

/// The server process serving the connection a call gets: which connection it was.
fn backend_pid(db: &Database) -> orm::Result<i32> {
    db.load(sql::<Integer>("SELECT pg_backend_pid()"))
        .map(|pids| pids[0])
}

fn state(db: &Database) -> PoolState {
    db.pool_state().remove(0)
}

/// Waits (up to `limit`) until the pool's state satisfies `done`, and returns that state.
fn wait_for(db: &Database, limit: Duration, done: impl Fn(&PoolState) -> bool) -> PoolState {
    let start = Instant::now();
    loop {
        let now = state(db);
        if done(&now) {
            return now;
        }
        assert!(
            start.elapsed() < limit,
            "the pool did not reach the state wanted within {limit:?}: {now:?}"
        );
        std::thread::sleep(ms(20));
    }
}

/// `n` connections held by `n` threads, each inside a call, until released.
struct Holders {
    release: Vec<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Holders {
    /// Returns once all `n` threads hold their connection.
    fn start(db: &Database, n: usize) -> Self {
        let ready = Arc::new(Barrier::new(n + 1));
        let (mut release, mut threads) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let (tx, rx) = channel::<()>();
            let (db, ready) = (db.clone(), ready.clone());
            threads.push(std::thread::spawn(move || {
                db.with_connection(|_| {
                    ready.wait();
                    let _ = rx.recv();
                    Ok(())
                })
                .expect("a holder got its connection");
            }));
            release.push(tx);
        }
        ready.wait();
        Self { release, threads }
    }

    fn release(self) {
        drop(self.release);
        for t in self.threads {
            t.join().unwrap();
        }
    }
}

#[test]
fn impossible_settings_are_typed_errors_before_connecting() {
    // Nothing listens on port 1: a setting error must come first, without a connection attempt.
    let url = "postgres://app@127.0.0.1:1/db";
    for (config, field) in [
        (
            PoolConfig {
                size: 0,
                max_overflow: 0,
                ..PoolConfig::default()
            },
            "size",
        ),
        (
            PoolConfig {
                timeout: Duration::ZERO,
                ..PoolConfig::default()
            },
            "timeout",
        ),
        (
            PoolConfig {
                recycle: Some(Duration::ZERO),
                ..PoolConfig::default()
            },
            "recycle",
        ),
        (
            PoolConfig {
                overflow_idle: Some(Duration::ZERO),
                ..PoolConfig::default()
            },
            "overflow_idle",
        ),
        (
            PoolConfig {
                statement_timeout: Some(Duration::ZERO),
                ..PoolConfig::none()
            },
            "statement_timeout",
        ),
    ] {
        match Database::builder(url).pool(config).connect() {
            Err(Error::InvalidConfig { field: f, reason }) => {
                assert_eq!(f, field, "{reason}");
                let text = Error::InvalidConfig { field: f, reason }.to_string();
                assert!(text.contains(field), "{text}");
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    if cfg!(feature = "sqlite") {
        // Without a pool each call would get a new, empty in-memory database.
        let err = Database::builder("sqlite::memory:")
            .pool(PoolConfig::none())
            .connect()
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::InvalidConfig {
                    field: "pooled",
                    ..
                }
            ),
            "{err}"
        );
        // Any size is fine: an in-memory database keeps its one connection.
        let db = Database::builder("sqlite::memory:")
            .pool(PoolConfig {
                size: 20,
                max_overflow: 5,
                ..PoolConfig::default()
            })
            .connect()
            .unwrap();
        db.batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1)")
            .unwrap();
        let s = state(&db);
        assert_eq!((s.open, s.in_use), (1, 0), "{s:?}");
    }
}

#[test]
#[cfg(feature = "sqlite")]
fn a_sqlite_file_is_pooled_as_configured() {
    let path = std::env::temp_dir().join(format!("orm-pool-{}.db", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let url = format!("sqlite://{}", path.display());
    let db = Database::builder(&url)
        .pool(PoolConfig {
            size: 2,
            max_overflow: 1,
            timeout: Duration::from_secs(10),
            ..PoolConfig::default()
        })
        .connect()
        .unwrap();
    db.create_table::<Item>().unwrap();
    std::thread::scope(|s| {
        for t in 0..4 {
            let db = &db;
            s.spawn(move || {
                for i in 0..20 {
                    let item = db
                        .insert::<Item>(&NewItem {
                            name: format!("{t}-{i}"),
                            count: i,
                        })
                        .unwrap();
                    assert_eq!(db.find::<Item>(item.id).unwrap(), item);
                }
            });
        }
    });
    let s = state(&db);
    assert!(s.open <= 3 && s.in_use == 0, "{s:?}");
    assert_eq!(s.checkouts, 1 + 4 * 20 * 2, "{s:?}");
    assert_eq!(db.load::<_, Item>(pool_items::table).unwrap().len(), 80);

    // The same file without a pool: a connection per call, none left open.
    let unpooled = Database::builder(&url)
        .pool(PoolConfig::none())
        .connect()
        .unwrap();
    assert_eq!(
        unpooled.load::<_, Item>(pool_items::table).unwrap().len(),
        80
    );
    let s = state(&unpooled);
    assert_eq!((s.open, s.idle, s.checkouts), (0, 0, 1), "{s:?}");
    drop((db, unpooled));
    let _ = std::fs::remove_file(&path);
}

#[test]
fn size_and_overflow_are_honored() {
    let config = PoolConfig {
        size: 2,
        max_overflow: 2,
        timeout: ms(300),
        ..PoolConfig::default()
    };
    let Some(db) = postgres("size_and_overflow", config) else {
        return;
    };
    // `size` connections are opened at once and kept idle.
    let s = wait_for(&db, Duration::from_secs(10), |s| s.idle == 2);
    assert_eq!((s.open, s.in_use), (2, 0), "{s:?}");

    // Under load the pool grows to `size + max_overflow` and no further.
    let holders = Holders::start(&db, 4);
    let s = state(&db);
    assert_eq!((s.open, s.in_use, s.idle), (4, 4, 0), "{s:?}");
    let err = backend_pid(&db).unwrap_err();
    assert!(matches!(err, Error::PoolTimeout { in_use: 4, .. }), "{err}");
    holders.release();

    let s = state(&db);
    assert_eq!((s.open, s.in_use, s.idle), (4, 0, 4), "{s:?}");
}

/// A PostgreSQL database in a fresh schema for `test`, opened with `config`, whose connections
/// the server lists under the `application_name` returned.
fn postgres_named(test: &str, config: PoolConfig) -> Option<(Database, String)> {
    let url = common::postgres_url(test)?;
    let name = format!("orm_{test}_{}", std::process::id());
    let db = Database::builder(&format!("{url}&application_name={name}"))
        .pool(config)
        .connect()
        .expect("connect with the pool configuration");
    Some((db, name))
}

/// The connections open on the server under `application_name`, counted by `admin`.
fn server_connections(admin: &Database, application_name: &str) -> i32 {
    admin
        .load(sql::<Integer>(&format!(
            "SELECT count(*)::int FROM pg_stat_activity WHERE application_name = '{application_name}'"
        )))
        .expect("count connections in pg_stat_activity")[0]
}

/// Waits (up to `limit`) until the server lists `n` connections under `application_name`. A
/// connection closed by the client leaves the list a moment later, when its server process
/// ends.
fn wait_for_server_connections(
    admin: &Database,
    application_name: &str,
    n: i32,
    limit: Duration,
    db: &Database,
) {
    let start = Instant::now();
    loop {
        let open = server_connections(admin, application_name);
        if open == n {
            return;
        }
        assert!(
            start.elapsed() < limit,
            "{open} connections on the server, not {n}, after {limit:?}: {:?}",
            state(db)
        );
        std::thread::sleep(ms(50));
    }
}

/// Runs `work` on another thread and calls `sample` every 10 ms until it is done; a panic in
/// `work` fails the test.
fn sample_while(work: impl FnOnce() + Send, mut sample: impl FnMut()) {
    std::thread::scope(|s| {
        let running = s.spawn(work);
        while !running.is_finished() {
            sample();
            std::thread::sleep(ms(10));
        }
        if let Err(panic) = running.join() {
            std::panic::resume_unwind(panic);
        }
    });
}

#[test]
fn no_more_than_size_connections_while_no_call_waits() {
    let Some(admin) = common::postgres("size_bound_admin") else {
        return;
    };
    let config = PoolConfig {
        size: 5,
        max_overflow: 10,
        ..PoolConfig::default()
    };
    let (db, name) = postgres_named("size_bound", config).unwrap();
    db.create_table::<Item>().unwrap();
    let item = db
        .insert::<Item>(&NewItem {
            name: "found".to_owned(),
            count: 7,
        })
        .unwrap();

    // 4 threads of back-to-back finds for 3 s: a pool of 5 always has one idle, so no call
    // waits and no overflow connection is opened.
    // The pool's 5, and no longer the connection that checked the URL.
    wait_for_server_connections(&admin, &name, 5, Duration::from_secs(15), &db);
    let before = state(&db).checkouts;
    let finds = AtomicU64::new(0);
    let (mut most, mut samples) = (0, 0);
    sample_while(
        || {
            std::thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        let start = Instant::now();
                        while start.elapsed() < Duration::from_secs(3) {
                            assert_eq!(db.find::<Item>(item.id).unwrap(), item);
                            finds.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
        },
        || {
            most = most.max(server_connections(&admin, &name));
            samples += 1;
        },
    );
    let finds = finds.into_inner();
    assert!(
        samples >= 20 && finds >= 100,
        "{samples} samples, {finds} finds"
    );
    assert!(
        (4..=5).contains(&most),
        "at most {most} connections seen on the server"
    );
    let s = state(&db);
    assert!(s.open <= 5 && s.timeouts == 0, "{s:?}");
    assert_eq!(s.checkouts, before + finds, "{s:?}");
}

#[test]
fn overflow_opens_for_waiting_calls_and_closes_after_overflow_idle() {
    let Some(admin) = common::postgres("overflow_admin") else {
        return;
    };
    let config = PoolConfig {
        size: 5,
        max_overflow: 10,
        overflow_idle: Some(Duration::from_secs(1)),
        timeout: Duration::from_secs(30),
        ..PoolConfig::default()
    };
    let (db, name) = postgres_named("overflow", config).unwrap();
    wait_for_server_connections(&admin, &name, 5, Duration::from_secs(15), &db);

    // 20 threads, each holding its connection 50 ms per call: more callers than connections.
    let mut most = 0;
    sample_while(
        || {
            std::thread::scope(|s| {
                for _ in 0..20 {
                    s.spawn(|| {
                        for _ in 0..10 {
                            let one: Vec<i32> = db
                                .transaction(|conn| {
                                    conn.load(sql::<Integer>("SELECT 1 FROM pg_sleep(0.05)"))
                                })
                                .unwrap();
                            assert_eq!(one, [1]);
                        }
                    });
                }
            });
        },
        || most = most.max(server_connections(&admin, &name)),
    );
    assert_eq!(
        most, 15,
        "size + max_overflow connections at most, and reached"
    );
    let s = state(&db);
    assert_eq!((s.checkouts, s.timeouts, s.in_use), (200, 0, 0), "{s:?}");

    // Idle for `overflow_idle`, the overflow connections are closed; the `size` ones stay.
    // (15 s is a generous bound for 1 s; r2d2's reaper alone would take up to 30 s.)
    wait_for_server_connections(&admin, &name, 5, Duration::from_secs(15), &db);
    let s = state(&db);
    assert_eq!((s.open, s.idle), (5, 5), "{s:?}");
    backend_pid(&db).unwrap();
    assert_eq!(server_connections(&admin, &name), 5);
}

#[test]
fn size_zero_keeps_only_overflow_connections() {
    let Some(admin) = common::postgres("size_zero_admin") else {
        return;
    };
    let config = PoolConfig {
        size: 0,
        max_overflow: 2,
        overflow_idle: Some(ms(500)),
        ..PoolConfig::default()
    };
    let (db, name) = postgres_named("size_zero", config).unwrap();
    // The connection opened to check the URL is closed: none stays open.
    wait_for_server_connections(&admin, &name, 0, Duration::from_secs(15), &db);
    let first = backend_pid(&db).unwrap();
    assert_eq!(
        backend_pid(&db).unwrap(),
        first,
        "reused while not idle long"
    );
    let s = state(&db);
    assert_eq!((s.open, s.idle), (1, 1), "{s:?}");
    let s = wait_for(&db, Duration::from_secs(15), |s| s.open == 0);
    assert_eq!(s.idle, 0, "{s:?}");
    wait_for_server_connections(&admin, &name, 0, Duration::from_secs(15), &db);
    assert_ne!(backend_pid(&db).unwrap(), first, "a new connection");
}

#[test]
fn checkout_times_out_with_the_pools_numbers() {
    let config = PoolConfig {
        size: 1,
        max_overflow: 1,
        timeout: ms(300),
        ..PoolConfig::default()
    };
    let Some(db) = postgres("checkout_times_out", config) else {
        return;
    };
    let holders = Holders::start(&db, 2);
    let start = Instant::now();
    let err = backend_pid(&db).unwrap_err();
    let waited = start.elapsed();
    holders.release();

    match &err {
        Error::PoolTimeout {
            url,
            timeout,
            size,
            max_overflow,
            in_use,
            waiting,
            last_error,
        } => {
            assert!(url.as_str().contains("127.0.0.1"), "{url}");
            assert_eq!(*timeout, ms(300));
            assert_eq!((*size, *max_overflow, *in_use, *waiting), (1, 1, 2, 1));
            assert_eq!(last_error, &None);
        }
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("within 300ms: 2 of 2 in use (1 + 1 overflow), 1 waiting"),
        "{text}"
    );
    assert!(
        waited >= ms(250) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    // The pool serves again once connections come back.
    backend_pid(&db).unwrap();
}

#[test]
fn no_pool_opens_a_connection_per_call() {
    let Some(unpooled) = postgres("no_pool", PoolConfig::none()) else {
        return;
    };
    let first = backend_pid(&unpooled).unwrap();
    let second = backend_pid(&unpooled).unwrap();
    assert_ne!(first, second, "each call has its own connection");
    let s = state(&unpooled);
    assert_eq!(
        (s.open, s.idle, s.in_use, s.checkouts),
        (0, 0, 0, 2),
        "{s:?}"
    );

    let pooled = postgres(
        "no_pool",
        PoolConfig {
            size: 1,
            max_overflow: 0,
            ..PoolConfig::default()
        },
    )
    .unwrap();
    let first = backend_pid(&pooled).unwrap();
    assert_eq!(backend_pid(&pooled).unwrap(), first, "the pool reuses it");
}

#[test]
fn recycle_replaces_a_connection_after_its_lifetime() {
    let config = PoolConfig {
        size: 1,
        max_overflow: 0,
        recycle: Some(ms(400)),
        pre_ping: false,
        ..PoolConfig::default()
    };
    let Some(db) = postgres("recycle", config) else {
        return;
    };
    let first = backend_pid(&db).unwrap();
    assert_eq!(backend_pid(&db).unwrap(), first, "not yet expired");
    std::thread::sleep(ms(600));
    let second = backend_pid(&db).unwrap();
    assert_ne!(first, second, "the old connection was replaced");
}

/// Ends the server process `pid` and waits until it is gone.
fn terminate(admin: &Database, pid: i32) {
    let ended: Vec<bool> = admin
        .load(sql::<diesel::sql_types::Bool>(&format!(
            "SELECT pg_terminate_backend({pid}, 5000)"
        )))
        .unwrap();
    assert_eq!(ended, [true]);
}

#[test]
fn pre_ping_replaces_a_killed_idle_connection() {
    let Some(admin) = common::postgres("pre_ping_admin") else {
        return;
    };
    let config = |pre_ping| PoolConfig {
        size: 1,
        max_overflow: 0,
        pre_ping,
        pre_ping_idle: ms(100),
        ..PoolConfig::default()
    };
    let db = postgres("pre_ping", config(true)).unwrap();
    let first = backend_pid(&db).unwrap();
    terminate(&admin, first);
    std::thread::sleep(ms(200));
    let second = backend_pid(&db).expect("the dead connection was replaced before the call");
    assert_ne!(first, second);

    // A connection used within `pre_ping_idle` is not pinged: the same connection comes back.
    assert_eq!(backend_pid(&db).unwrap(), second);

    // Without the pre-ping the call gets the dead connection and fails; the next one works.
    let db = postgres("pre_ping", config(false)).unwrap();
    let first = backend_pid(&db).unwrap();
    terminate(&admin, first);
    std::thread::sleep(ms(200));
    assert!(backend_pid(&db).is_err(), "the dead connection was used");
    assert_ne!(backend_pid(&db).unwrap(), first);
}

#[test]
fn statement_timeout_cancels_a_long_statement() {
    let config = PoolConfig {
        statement_timeout: Some(ms(200)),
        ..PoolConfig::default()
    };
    let Some(db) = postgres("statement_timeout", config) else {
        return;
    };
    let err = db.batch_execute("SELECT pg_sleep(5)").unwrap_err();
    assert!(err.to_string().contains("statement timeout"), "{err}");
    // The connection is still good.
    db.batch_execute("SELECT pg_sleep(0.01)").unwrap();
}

#[test]
fn leak_detection_logs_where_a_held_connection_was_checked_out() {
    // Warnings and errors only.
    let warnings = common::Logs::capture(|meta| *meta.level() <= tracing::Level::WARN);
    let config = PoolConfig {
        leak_threshold: Some(ms(100)),
        ..PoolConfig::default()
    };
    let Some(db) = postgres("leak_detection", config) else {
        return;
    };
    // Returned late: logged when it comes back, with the line of the call.
    let line = line!() + 1;
    db.with_connection(|_| {
        std::thread::sleep(ms(300));
        Ok(())
    })
    .unwrap();
    let here = format!("tests/it/pool.rs:{line}:");
    let late = warnings.lines_about(&here);
    assert_eq!(late.len(), 1, "{late:?}");
    assert!(late[0].contains("returned after being held"), "{late:?}");
    assert!(
        late[0].contains("orm_t_leak_detection"),
        "the URL: {late:?}"
    );

    // Never returned (yet): the background check logs it while it is held.
    let (release, held) = channel::<()>();
    let holder = {
        let db = db.clone();
        // The holder returns the connection on its own thread: its warning is captured too.
        let scope = tracing::dispatcher::get_default(Clone::clone);
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&scope, || {
                let line = line!() + 1;
                db.with_connection(|_| {
                    let _ = held.recv();
                    Ok(())
                })
                .unwrap();
                line
            })
        })
    };
    let start = Instant::now();
    let still_held = loop {
        let found = warnings.lines_about("not returned yet");
        if let Some(line) = found.iter().find(|l| l.contains("orm_t_leak_detection")) {
            break line.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no warning for the held connection"
        );
        std::thread::sleep(ms(50));
    };
    drop(release);
    let line = holder.join().unwrap();
    let here = format!("tests/it/pool.rs:{line}:");
    assert!(still_held.contains(&here), "{still_held}");
    let returned = warnings.lines_about(&here);
    assert_eq!(returned.len(), 2, "held, then returned: {returned:?}");

    // A call within the threshold logs nothing.
    let line = line!() + 1;
    backend_pid(&db).unwrap();
    assert!(warnings
        .lines_about(&format!("tests/it/pool.rs:{line}:"))
        .is_empty());
}

#[test]
fn metrics_count_checkouts_waits_and_timeouts() {
    let config = PoolConfig {
        size: 1,
        max_overflow: 0,
        timeout: ms(200),
        ..PoolConfig::default()
    };
    let Some(db) = postgres("metrics", config) else {
        return;
    };
    for _ in 0..5 {
        backend_pid(&db).unwrap();
    }
    db.transaction(|conn| {
        conn.batch_execute("SELECT 1")?;
        conn.batch_execute("SELECT 2")
    })
    .unwrap();
    let s = state(&db);
    assert_eq!((s.checkouts, s.timeouts, s.waiting), (6, 0, 0), "{s:?}");
    assert!(s.max_wait <= s.total_wait, "{s:?}");

    let holders = Holders::start(&db, 1);
    assert!(matches!(
        backend_pid(&db),
        Err(Error::PoolTimeout { waiting: 1, .. })
    ));
    // Waiting callers are counted while they wait.
    let waiter = {
        let db = db.clone();
        std::thread::spawn(move || backend_pid(&db))
    };
    wait_for(&db, Duration::from_secs(5), |s| s.waiting == 1);
    holders.release();
    waiter
        .join()
        .unwrap()
        .expect("served once the holder returned");
    let s = state(&db);
    assert_eq!(
        (s.checkouts, s.timeouts, s.waits, s.waiting),
        (8, 1, 9, 0),
        "{s:?}"
    );
    assert!(s.max_wait >= ms(200) && s.max_wait <= s.total_wait, "{s:?}");
}

#[test]
fn timed_out_calls_count_in_the_waits() {
    let config = PoolConfig {
        size: 1,
        max_overflow: 0,
        timeout: ms(300),
        ..PoolConfig::default()
    };
    let Some(db) = postgres("timed_out_waits", config) else {
        return;
    };
    backend_pid(&db).unwrap();
    let holders = Holders::start(&db, 1);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let db = db.clone();
            std::thread::spawn(move || backend_pid(&db))
        })
        .collect();
    for waiter in waiters {
        let result = waiter.join().unwrap();
        assert!(
            matches!(result, Err(Error::PoolTimeout { .. })),
            "{result:?}"
        );
    }
    holders.release();
    let s = state(&db);
    assert_eq!(
        (s.checkouts, s.timeouts, s.waits, s.waiting),
        (2, 3, 5, 0),
        "{s:?}"
    );
    // Each timed-out call waited the whole timeout, and its wait is counted.
    assert!(
        s.max_wait >= ms(300) && s.max_wait < Duration::from_secs(10),
        "{s:?}"
    );
    assert!(s.total_wait >= ms(900), "{s:?}");
}

/// Inserts, finds, loads and updates, in and out of transactions, from `threads` threads at
/// once; the errors and wrong results, as text.
#[cfg(feature = "postgres")]
fn mixed_workload(db: &Database, run: &str, threads: usize, rounds: i32) -> Vec<String> {
    use diesel::prelude::*;
    let check = |ok: bool, what: &str| match ok {
        true => Ok(()),
        false => Err(Error::Model {
            model: "Item",
            message: format!("wrong result: {what}"),
        }),
    };
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (db, errors, check) = (db, &errors, &check);
            s.spawn(move || {
                for i in 0..rounds {
                    let work = || -> orm::Result<()> {
                        let name = format!("{run}-t{t}-{i}");
                        let item = db.insert::<Item>(&NewItem {
                            name: name.clone(),
                            count: i,
                        })?;
                        let found = db.find::<Item>(item.id)?;
                        check(found == item, &format!("found {found:?} for {item:?}"))?;
                        let mine: Vec<Item> =
                            db.load(pool_items::table.filter(pool_items::name.eq(&name)))?;
                        check(
                            mine == [item.clone()],
                            &format!("loaded {mine:?} for {item:?}"),
                        )?;
                        db.update(&Item {
                            count: i + 1,
                            ..item.clone()
                        })?;
                        db.transaction(|conn| {
                            let other = conn.insert::<Item>(&NewItem {
                                name: format!("{name}-tx"),
                                count: 0,
                            })?;
                            let found = conn.find::<Item>(item.id)?;
                            conn.update(&Item {
                                count: found.count + 1,
                                ..found
                            })?;
                            conn.delete::<Item>(other.id)
                        })?;
                        let count = db.find::<Item>(item.id)?.count;
                        check(count == i + 2, &format!("count {count} for {item:?}"))
                    };
                    if let Err(e) = work() {
                        errors.lock().unwrap().push(e.to_string());
                    }
                }
            });
        }
    });
    errors.into_inner().unwrap()
}

#[test]
#[cfg(feature = "postgres")]
fn pgbouncer_in_transaction_mode_needs_the_statement_cache_off() {
    let Some(direct) = common::server_url("ORM_TEST_PG_URL", "pgbouncer") else {
        return;
    };
    let Some(bouncer) = common::server_url("ORM_TEST_PGBOUNCER_URL", "pgbouncer") else {
        return;
    };
    // PgBouncer 1.18 refuses the `options` startup parameter that gives the other tests their
    // own schema, so this test's table lives in the public schema under its own name.
    let direct = Database::connect(&direct).unwrap();
    direct.drop_table::<Item>().unwrap();
    direct.create_table::<Item>().unwrap();

    let through = |prepared_statements| {
        Database::builder(&bouncer)
            .pool(PoolConfig {
                size: 8,
                max_overflow: 0,
                prepared_statements,
                ..PoolConfig::default()
            })
            .connect()
            .unwrap()
    };
    let errors = mixed_workload(&through(Some(false)), "uncached", 8, 25);
    assert!(errors.is_empty(), "{} failed: {errors:#?}", errors.len());
    let rows: i64 = direct
        .load(sql::<diesel::sql_types::BigInt>(
            "SELECT count(*) FROM pool_items",
        ))
        .unwrap()[0];
    assert_eq!(rows, 8 * 25);

    // With Diesel's statement cache, a statement prepared on one server connection is run on
    // another, or a second client prepares the same name on the same server connection.
    let errors = mixed_workload(&through(Some(true)), "cached", 8, 25);
    assert!(
        errors.iter().any(|e| e.contains("prepared statement")),
        "expected prepared-statement errors, got {errors:#?}"
    );
    let wrong: Vec<_> = errors
        .iter()
        .filter(|e| e.contains("wrong result"))
        .collect();
    let mut kinds: Vec<&str> = errors
        .iter()
        .map(|e| e.split('"').next().unwrap_or(e))
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    eprintln!(
        "with the statement cache through PgBouncer: {} of {} rounds failed, {} with wrong \
         results; errors: {kinds:?}",
        errors.len(),
        8 * 25,
        wrong.len()
    );
    direct.drop_table::<Item>().unwrap();
}
