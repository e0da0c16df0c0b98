//! A PostgreSQL primary restarted, then stopped for a while, under load from reader threads
//! and a writer sharing one `Database`: only the calls caught by the outage fail, each with a
//! typed error and within the pool's `timeout`, the same pool serves every thread again once
//! the server is back, and no committed row is lost.
//!
//! Runs against the disposable stand-alone cluster on 5435 (`ORM_TEST_PG_FAULT_PRIMARY_URL`),
//! never the shared primary. A guard starts that cluster again if a test fails midway.
#![cfg(feature = "postgres")]

use crate::common;

use orm::prelude::*;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::result::DatabaseErrorKind;
use diesel::sql_types::{BigInt, Integer, Text};
use diesel::{Connection, RunQueryDsl};
use orm::{Database, Error, Model, PoolConfig};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = restart_rows)]
pub struct Row {
    #[orm(primary_key)]
    pub id: i64,
    pub body: String,
}

/// Rows present before any outage; readers look them up.
const SEEDED: i64 = 200;
/// Reader threads per scenario.
const READERS: usize = 4;
/// Calls each thread must make without a failure once it has succeeded after the outage.
const CLEAN_CALLS: usize = 100;
/// How long after the server is back every thread must have succeeded again.
const RECOVERY: Duration = Duration::from_secs(30);

/// The disposable primary's cluster. Starts it again when dropped if it is not answering, so
/// a test failing midway does not leave it stopped.
struct Restore {
    url: String,
    version: String,
    cluster: String,
}

impl Restore {
    /// The cluster `15/faultprimary` from `ORM_TEST_PG_FAULT_PRIMARY_CLUSTER`, else the
    /// cluster scripts/services names so, of the server's major version, or of the one
    /// PostgreSQL version that has it when the server is down. Started if it is down.
    fn new(url: &str) -> Self {
        let spec = std::env::var("ORM_TEST_PG_FAULT_PRIMARY_CLUSTER").unwrap_or_else(|_| {
            let cluster = "faultprimary";
            let major = PgConnection::establish(url)
                .ok()
                .and_then(|mut conn| {
                    sql::<Integer>("SELECT current_setting('server_version_num')::int / 10000")
                        .get_result::<i32>(&mut conn)
                        .ok()
                })
                .map(|major| major.to_string())
                .or_else(|| {
                    let mut found = std::fs::read_dir("/etc/postgresql")
                        .ok()?
                        .flatten()
                        .filter(|v| v.path().join(cluster).join("postgresql.conf").is_file())
                        .map(|v| v.file_name().to_string_lossy().into_owned());
                    found.next().filter(|_| found.next().is_none())
                })
                .unwrap_or_else(|| panic!("{url} not answering and no single cluster {cluster}"));
            format!("{major}/{cluster}")
        });
        let (version, cluster) = spec.split_once('/').expect("cluster as VERSION/NAME");
        let restore = Self {
            url: url.to_owned(),
            version: version.to_owned(),
            cluster: cluster.to_owned(),
        };
        assert!(
            restore.start_if_down(),
            "{url} not answering, even after pg_ctlcluster start"
        );
        restore
    }

    fn ctl(&self, action: &str) {
        let mut cmd = Command::new("pg_ctlcluster");
        cmd.args([
            "--skip-systemctl-redirect",
            &self.version,
            &self.cluster,
            action,
        ]);
        if action != "start" {
            cmd.args(["-m", "fast"]);
        }
        let status = cmd.status().expect("run pg_ctlcluster");
        assert!(
            status.success(),
            "pg_ctlcluster {} {} {action}: {status}",
            self.version,
            self.cluster
        );
    }

    /// Polls with a connection attempt until the server answers; the instant it did.
    fn wait_answering(&self, limit: Duration) -> Instant {
        let deadline = Instant::now() + limit;
        loop {
            if PgConnection::establish(&self.url).is_ok() {
                return Instant::now();
            }
            assert!(
                Instant::now() < deadline,
                "{} not answering within {limit:?}",
                self.url
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the cluster if it does not answer; whether it answers within 60 s. Never
    /// panics: it also runs while a failed test unwinds.
    fn start_if_down(&self) -> bool {
        if PgConnection::establish(&self.url).is_ok() {
            return true;
        }
        let _ = Command::new("pg_ctlcluster")
            .args([
                "--skip-systemctl-redirect",
                &self.version,
                &self.cluster,
                "start",
            ])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if PgConnection::establish(&self.url).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        if !self.start_if_down() {
            eprintln!("could not start the fault primary at {} again", self.url);
        }
    }
}

fn connect(url: &str) -> PgConnection {
    PgConnection::establish(url).unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

/// When the running server was started: changes with each restart.
fn started_at(url: &str) -> String {
    sql::<Text>("SELECT pg_postmaster_start_time()::text")
        .get_result(&mut connect(url))
        .unwrap()
}

fn open(url: &str, timeout: Duration) -> Database {
    Database::builder(url)
        .pool(PoolConfig {
            size: 4,
            timeout,
            ..PoolConfig::default()
        })
        .connect()
        .expect("connect to the fault primary")
}

/// A fresh table of `SEEDED` rows.
fn seed(db: &Database) {
    db.drop_table::<Row>().unwrap();
    db.create_table::<Row>().unwrap();
    for id in 1..=SEEDED {
        db.insert::<Row>(&NewRow {
            id,
            body: format!("seeded {id}"),
        })
        .unwrap();
    }
}

/// One call made by a thread, and how it ended.
struct Call {
    start: Instant,
    end: Instant,
    /// `Some(id)` for an insert by the writer.
    inserted: Option<i64>,
    outcome: Result<(), Error>,
}

/// The threads calling one `Database` until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    successes: Vec<Arc<AtomicU64>>,
    threads: Vec<(String, JoinHandle<Vec<Call>>)>,
}

impl Load {
    /// `READERS` readers, each looking up seeded rows in turn, and a writer when `first_id` is
    /// given, inserting rows from that id up.
    fn start(db: &Database, first_id: Option<i64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut load = Self {
            stop: stop.clone(),
            successes: Vec::new(),
            threads: Vec::new(),
        };
        for n in 0..READERS {
            let (db, stop) = (db.clone(), stop.clone());
            let successes = Arc::new(AtomicU64::new(0));
            let ok = successes.clone();
            let thread = std::thread::spawn(move || {
                let mut calls = Vec::new();
                let mut key = n as i64;
                while !stop.load(Ordering::Relaxed) {
                    key = key % SEEDED + 1;
                    let start = Instant::now();
                    // A wrong row would be another call's result: never acceptable.
                    let outcome = db
                        .find::<Row>(key)
                        .map(|row| assert_eq!(row.id, key, "find({key}) returned another row"));
                    if outcome.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    calls.push(Call {
                        start,
                        end: Instant::now(),
                        inserted: None,
                        outcome,
                    });
                    std::thread::sleep(Duration::from_millis(2));
                }
                calls
            });
            load.successes.push(successes);
            load.threads.push((format!("reader {n}"), thread));
        }
        if let Some(first_id) = first_id {
            let (db, stop) = (db.clone(), stop.clone());
            let successes = Arc::new(AtomicU64::new(0));
            let ok = successes.clone();
            let thread = std::thread::spawn(move || {
                let mut calls = Vec::new();
                // An insert that failed may still have committed: the next one takes a new id
                // rather than retrying, so no insert can collide with an earlier one.
                for id in first_id.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let start = Instant::now();
                    let outcome = db
                        .insert::<Row>(&NewRow {
                            id,
                            body: format!("written {id}"),
                        })
                        .map(drop);
                    if outcome.is_ok() {
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                    calls.push(Call {
                        start,
                        end: Instant::now(),
                        inserted: Some(id),
                        outcome,
                    });
                    std::thread::sleep(Duration::from_millis(5));
                }
                calls
            });
            load.successes.push(successes);
            load.threads.push(("writer".to_owned(), thread));
        }
        load
    }

    /// Waits until every thread has succeeded `n` more times than it had at `since` (the
    /// counts given), for at most `limit`.
    fn wait_successes(&self, since: &[u64], n: u64, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let now = self.counts();
            if now.iter().zip(since).all(|(now, then)| now - then >= n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not every thread made {n} successful calls within {limit:?}: {now:?} \
                 successes, {since:?} before"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn counts(&self) -> Vec<u64> {
        self.successes
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .collect()
    }

    /// Stops the threads; each one's calls, in order. A thread that panicked fails the test.
    fn finish(self) -> Vec<(String, Vec<Call>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|(name, thread)| {
                let calls = thread.join().unwrap_or_else(|_| panic!("{name} panicked"));
                (name, calls)
            })
            .collect()
    }
}

/// The outage as the test saw it: when it began to take the server down, and when the
/// server answered again.
struct Outage {
    began: Instant,
    back: Instant,
}

/// What every thread's calls must show around `outage`, checked for each thread in turn:
///
/// - no call that ended before the outage began failed;
/// - every failure is a typed error: `Query` for a connection the server closed, `Connect`
///   or `PoolTimeout`; no call took longer than `longest`;
/// - a call succeeded within `RECOVERY` of the server answering again, and the `CLEAN_CALLS`
///   calls after that first success all succeeded too.
///
/// Returns the number of failed calls of each kind, for the report.
fn check_calls(
    threads: &[(String, Vec<Call>)],
    outage: &Outage,
    longest: Duration,
) -> (usize, usize, usize) {
    let (mut query, mut connect, mut timeout) = (0, 0, 0);
    for (name, calls) in threads {
        for call in calls {
            let took = call.end - call.start;
            assert!(
                took <= longest,
                "{name}: a call took {took:?}, more than {longest:?}"
            );
            let Err(error) = &call.outcome else { continue };
            assert!(
                call.end >= outage.began,
                "{name}: a call failed before the outage began: {error}"
            );
            match error {
                // The kind the pool reads to close the connection rather than keep it.
                Error::Query(diesel::result::Error::DatabaseError(
                    DatabaseErrorKind::ClosedConnection,
                    _,
                )) => query += 1,
                Error::Connect { .. } => connect += 1,
                Error::PoolTimeout { .. } => timeout += 1,
                other => panic!("{name}: a call failed with an unexpected error: {other:?}"),
            }
        }
        let first_back = calls
            .iter()
            .position(|c| c.outcome.is_ok() && c.end >= outage.back)
            .unwrap_or_else(|| panic!("{name}: no call succeeded after the server was back"));
        let after = calls[first_back].end - outage.back;
        assert!(
            after <= RECOVERY,
            "{name}: first success {after:?} after the server was back"
        );
        let next = &calls[first_back + 1..];
        assert!(
            next.len() >= CLEAN_CALLS,
            "{name}: only {} calls after the first success following the outage",
            next.len()
        );
        if let Some((n, call)) = next[..CLEAN_CALLS]
            .iter()
            .enumerate()
            .find(|(_, c)| c.outcome.is_err())
        {
            panic!(
                "{name}: call {} after the first success following the outage failed, {:?} \
                 after the server was back: {}",
                n + 1,
                call.start.saturating_duration_since(outage.back),
                call.outcome.as_ref().unwrap_err()
            );
        }
    }
    (query, connect, timeout)
}

/// Every row the writer was told it inserted, and every seeded row, is in the table.
fn check_rows(url: &str, threads: &[(String, Vec<Call>)]) -> usize {
    let ids: std::collections::BTreeSet<i64> = sql::<BigInt>("SELECT id FROM restart_rows")
        .load(&mut connect(url))
        .unwrap()
        .into_iter()
        .collect();
    let confirmed: Vec<i64> = (1..=SEEDED)
        .chain(threads.iter().flat_map(|(_, calls)| {
            calls
                .iter()
                .filter(|c| c.outcome.is_ok())
                .filter_map(|c| c.inserted)
        }))
        .collect();
    let missing: Vec<i64> = confirmed
        .iter()
        .copied()
        .filter(|id| !ids.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "rows reported committed but missing after the outage: {missing:?}"
    );
    confirmed.len()
}

#[test]
fn a_restarted_primary_fails_only_calls_in_flight_and_the_pool_recovers() {
    let Some(url) = common::server_url("ORM_TEST_PG_FAULT_PRIMARY_URL", "primary_restart") else {
        return;
    };
    let _one_at_a_time = common::fault_primary_lock();
    let server = Restore::new(&url);
    let db = open(&url, Duration::from_secs(5));
    seed(&db);

    let load = Load::start(&db, Some(SEEDED + 1));
    load.wait_successes(&[0; READERS + 1], 20, Duration::from_secs(30));

    let before = started_at(&url);
    let open_before = db.pool_state()[0].open;
    let began = Instant::now();
    server.ctl("restart");
    let back = server.wait_answering(Duration::from_secs(60));
    let outage = Outage { began, back };
    assert_ne!(started_at(&url), before, "the server was not restarted");

    // The same `Database`, never rebuilt, serves every thread again.
    let at_back = load.counts();
    load.wait_successes(&at_back, CLEAN_CALLS as u64 + 1, RECOVERY * 2);
    let threads = load.finish();

    // Only the calls in flight when the server went away fail on a closed connection (one per
    // thread at most): once one connection is found closed, every connection last used before
    // then is pinged before its next call, and replaced if dead.
    let (query, connect, timeout) = check_calls(&threads, &outage, Duration::from_secs(5 + 3));
    assert!(
        query <= 5,
        "{query} calls failed on connections the server closed, more than the 5 calls in \
         flight: a dead connection was handed out after another was found closed"
    );
    let rows = check_rows(&url, &threads);
    eprintln!(
        "restart: server back {:?} after the restart began; {open_before} connections open \
         before; failed calls: {query} query, {connect} connect, {timeout} pool timeout, of {} \
         calls; {rows} committed rows all present",
        back - began,
        threads.iter().map(|(_, c)| c.len()).sum::<usize>()
    );
    drop(server);
}

#[test]
fn a_stopped_primary_fails_calls_fast_and_the_pool_recovers_when_it_starts() {
    let Some(url) = common::server_url("ORM_TEST_PG_FAULT_PRIMARY_URL", "primary_stopped") else {
        return;
    };
    let _one_at_a_time = common::fault_primary_lock();
    let server = Restore::new(&url);
    // A short checkout timeout, so calls made while the server is down fail rather than wait
    // for it to come back.
    let timeout = Duration::from_secs(1);
    let db = open(&url, timeout);
    seed(&db);

    let load = Load::start(&db, None);
    load.wait_successes(&[0; READERS], 20, Duration::from_secs(30));

    let open_before = db.pool_state()[0].open;
    let began = Instant::now();
    server.ctl("stop");
    let stopped = Instant::now();
    assert!(
        PgConnection::establish(&url).is_err(),
        "the server still answers after stop"
    );
    std::thread::sleep(Duration::from_secs(3));
    let starting = Instant::now();
    server.ctl("start");
    let back = server.wait_answering(Duration::from_secs(60));
    let outage = Outage { began, back };

    let at_back = load.counts();
    load.wait_successes(&at_back, CLEAN_CALLS as u64 + 1, RECOVERY * 2);
    let threads = load.finish();

    // A call waits at most `timeout` for a connection; opening one to a stopped server is
    // refused at once, and a statement on a connection the server closed fails at once.
    let (query, connect, timeouts) =
        check_calls(&threads, &outage, timeout + Duration::from_secs(2));
    assert!(
        query <= 5,
        "{query} calls failed on closed connections, more than the 5 in flight"
    );
    assert_eq!(db.pool_state()[0].timeouts, timeouts as u64);

    // Calls made entirely while nothing listened all failed, with the pool's numbers.
    for (name, calls) in &threads {
        let down: Vec<&Call> = calls
            .iter()
            .filter(|c| c.start >= stopped && c.end <= starting)
            .collect();
        assert!(
            down.len() >= 2,
            "{name}: only {} calls while the server was down",
            down.len()
        );
        for call in down {
            match &call.outcome {
                Ok(()) => panic!("{name}: a call succeeded while the server was down"),
                Err(Error::Connect { .. }) => {}
                Err(
                    error @ Error::PoolTimeout {
                        timeout: t,
                        size: 4,
                        max_overflow: 10,
                        ..
                    },
                ) if *t == timeout => {
                    let message = error.to_string();
                    assert!(
                        message.contains("of 14 in use (4 + 10 overflow)"),
                        "{message}"
                    );
                }
                Err(other) => panic!("{name}: while the server was down: {other:?}"),
            }
        }
    }
    let rows = check_rows(&url, &threads);
    eprintln!(
        "stop: server down for {:?}, back {:?} after the stop began; {open_before} connections \
         open before; failed calls: {query} query, {connect} connect, {timeouts} pool timeout, \
         of {} calls; {rows} rows present",
        starting - stopped,
        back - began,
        threads.iter().map(|(_, c)| c.len()).sum::<usize>()
    );
    drop(server);
}
