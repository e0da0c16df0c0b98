//! Faults as production has them, with the default configuration: PgBouncer in transaction
//! mode in front of the primary, a replica that hangs (`kill -STOP` of every process of its
//! cluster: the kernel still acknowledges TCP, so only a client-side deadline ends a call),
//! and a primary that hangs.
//!
//! The hang tests work only on the disposable servers `scripts/services` keeps for faults
//! (the replica on 5434, the stand-alone primary on 5435), and resume them with a guard even
//! when they fail. The tests of this file run one at a time: a 2-core machine busy with one
//! would blur another's bounds.
#![cfg(feature = "postgres")]

use crate::common;

use orm::prelude::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::dsl::sql;
use diesel::sql_types::BigInt;
use orm::route::{ReplicaState, RouterConfig};
use orm::{Database, Error, Model, PoolConfig};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = fault_rows, partial(RowCard = [id, label]))]
pub struct Row {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub label: String,
    pub hits: i32,
}

/// The tests of this file, one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The label a row with `id` is given, so a read can check it got that row.
fn label(id: i64) -> String {
    format!("row-{id}")
}

/// A tiny deterministic generator (no extra dependency): xorshift.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn behind_pgbouncer_the_default_pool_returns_no_wrong_row_and_no_error() {
    let Some(direct) = common::server_url("ORM_TEST_PG_URL", "faults_pgbouncer") else {
        return;
    };
    let Some(bouncer) = common::server_url("ORM_TEST_PGBOUNCER_URL", "faults_pgbouncer") else {
        return;
    };
    let _serial = one_at_a_time();
    // PgBouncer 1.18 refuses the `options` parameter that gives other tests a schema of their
    // own, so this table lives in the public schema, under a name no other test uses.
    let admin = Database::connect(&direct).unwrap();
    admin.drop_table::<Row>().unwrap();
    admin.create_table::<Row>().unwrap();
    let db = Database::builder(&bouncer)
        .pool(PoolConfig {
            size: 8,
            max_overflow: 0,
            ..PoolConfig::default()
        })
        .connect()
        .unwrap();
    // Rows every thread reads, each with the label of its id.
    let mut shared = Vec::new();
    for _ in 0..50 {
        let row = db
            .insert::<Row>(&NewRow {
                label: String::new(),
                hits: 0,
            })
            .unwrap();
        let row = db
            .update(&Row {
                label: label(row.id),
                ..row
            })
            .unwrap();
        shared.push(row.id);
    }

    let (threads, rounds) = (8u64, 1000);
    let problems = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (db, shared, problems) = (&db, &shared, &problems);
            s.spawn(move || {
                let mut dice = Dice(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
                let mut mine: Vec<i64> = Vec::new();
                for _ in 0..rounds {
                    let outcome = step(db, &mut dice, shared, &mut mine);
                    if let Err(problem) = outcome {
                        problems.lock().unwrap().push(problem);
                    }
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    let wrong = problems.iter().filter(|p| p.starts_with("wrong")).count();
    assert!(
        problems.is_empty(),
        "{} of {} calls failed, {wrong} with a wrong row: {:#?}",
        problems.len(),
        threads * rounds,
        &problems[..problems.len().min(20)]
    );
    admin.drop_table::<Row>().unwrap();
}

/// One call of the mixed workload: a `find` checked against the id it asked for, an insert,
/// an update, a patch, or a transaction; `Err` says what went wrong.
fn step(db: &Database, dice: &mut Dice, shared: &[i64], mine: &mut Vec<i64>) -> Result<(), String> {
    let failed = |e: Error| format!("error: {e}");
    match dice.below(6) {
        0 | 1 => {
            let id = shared[dice.below(shared.len() as u64) as usize];
            let row = db.find::<Row>(id).map_err(failed)?;
            if row.id != id || row.label != label(id) {
                return Err(format!("wrong row: find({id}) gave {row:?}"));
            }
        }
        2 => {
            let row = db
                .insert::<Row>(&NewRow {
                    label: "new".into(),
                    hits: 0,
                })
                .map_err(failed)?;
            if row.label != "new" {
                return Err(format!("wrong row: insert returned {row:?}"));
            }
            let row = db
                .update(&Row {
                    label: label(row.id),
                    ..row
                })
                .map_err(failed)?;
            if row.label != label(row.id) {
                return Err(format!("wrong row: update returned {row:?}"));
            }
            mine.push(row.id);
        }
        3 if !mine.is_empty() => {
            let id = mine[dice.below(mine.len() as u64) as usize];
            let hits = dice.below(1000) as i32;
            let row = db
                .patch::<Row>(
                    id,
                    &RowPatch {
                        hits: Some(hits),
                        ..RowPatch::default()
                    },
                )
                .map_err(failed)?;
            if row.id != id || row.hits != hits || row.label != label(id) {
                return Err(format!("wrong row: patch({id}, hits {hits}) gave {row:?}"));
            }
        }
        _ => {
            let id = shared[dice.below(shared.len() as u64) as usize];
            let checked = db.transaction(|conn| {
                let row = conn.find::<Row>(id)?;
                let extra = conn.insert::<Row>(&NewRow {
                    label: "tx".into(),
                    hits: 1,
                })?;
                conn.delete::<Row>(extra.id)?;
                Ok(row)
            });
            let row = checked.map_err(failed)?;
            if row.id != id || row.label != label(id) {
                return Err(format!(
                    "wrong row: find({id}) in a transaction gave {row:?}"
                ));
            }
        }
    }
    Ok(())
}

/// How many of this connection's statements are named (Diesel's `__diesel_stmt_N`).
fn named_statements(db: &Database, probe_id: i64) -> i64 {
    db.with_connection(|conn| {
        conn.find::<Row>(probe_id)?;
        let count: Vec<i64> = conn.load(sql::<BigInt>(
            "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE '\\_\\_diesel\\_stmt\\_%'",
        ))?;
        Ok(count[0])
    })
    .unwrap()
}

#[test]
fn a_direct_connection_keeps_named_statements_unless_told_otherwise() {
    let Some(url) = common::postgres_url("faults_named") else {
        return;
    };
    let _serial = one_at_a_time();
    let db = Database::connect(&url).unwrap();
    db.create_table::<Row>().unwrap();
    let row = db
        .insert::<Row>(&NewRow {
            label: "x".into(),
            hits: 0,
        })
        .unwrap();
    assert!(
        named_statements(&db, row.id) > 0,
        "a connection shown direct prepares each statement once"
    );
    let unnamed = Database::builder(&url)
        .pool(PoolConfig {
            prepared_statements: Some(false),
            ..PoolConfig::default()
        })
        .connect()
        .unwrap();
    assert_eq!(named_statements(&unnamed, row.id), 0, "the override wins");
}

/// Every process of a PostgreSQL cluster stopped with SIGSTOP, the postmaster first (so it
/// forks no new one); continued when dropped, whatever happened.
struct Frozen {
    pids: Vec<u32>,
}

impl Frozen {
    /// Stop the cluster serving `url` (its data directory's `postmaster.pid` names the
    /// postmaster; its children are the other processes).
    fn stop(url: &str) -> Self {
        let admin = Database::builder(url)
            .pool(PoolConfig::none())
            .connect()
            .unwrap();
        let dir: Vec<String> = admin
            .load(sql::<diesel::sql_types::Text>(
                "SELECT current_setting('data_directory')",
            ))
            .unwrap();
        drop(admin);
        let pid_file = std::fs::read_to_string(format!("{}/postmaster.pid", dir[0])).unwrap();
        let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
        signal("-STOP", postmaster);
        let mut pids = vec![postmaster];
        pids.extend(children(postmaster));
        for &pid in &pids[1..] {
            signal("-STOP", pid);
        }
        Self { pids }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in self.pids.iter().rev() {
            signal("-CONT", pid);
        }
    }
}

fn signal(which: &str, pid: u32) {
    let _ = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status();
}

/// The processes whose parent is `parent` (from `/proc/*/stat`).
fn children(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`; comm may hold spaces, so read after the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            found.push(pid);
        }
    }
    found
}

fn with_schema(base: &str, test: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3Dorm_t_{test}")
}

fn wait_for_state(db: &Database, what: &str, limit: Duration, done: impl Fn(ReplicaState) -> bool) {
    let start = Instant::now();
    while !done(db.replica_status()[0].state) {
        assert!(
            start.elapsed() < limit,
            "not within {limit:?}: {what}; {:#?}",
            db.replica_status()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hung_replica_costs_no_read_and_no_read_waits_past_the_read_deadline() {
    let Some(primary) = common::postgres_url("faults_replica") else {
        return;
    };
    let Some(fault_url) = common::server_url("ORM_TEST_PG_FAULT_REPLICA_URL", "faults_replica")
    else {
        return;
    };
    let _serial = one_at_a_time();
    let _fault_replica = common::fault_replica_lock();
    let router = RouterConfig::default();
    let read_deadline = router.read_deadline.unwrap();
    let check_timeout = router.check_timeout;
    let db = Database::builder(&primary)
        .replica(&with_schema(&fault_url, "faults_replica"))
        .router(router)
        .connect()
        .unwrap();
    db.create_table::<Row>().unwrap();
    let mut ids = Vec::new();
    for i in 0..50 {
        let row = db
            .insert::<Row>(&NewRow {
                label: String::new(),
                hits: i,
            })
            .unwrap();
        db.update(&Row {
            label: label(row.id),
            ..row.clone()
        })
        .unwrap();
        ids.push(row.id);
    }
    // The replica has the rows, and takes reads.
    wait_for_state(&db, "replica healthy", Duration::from_secs(30), |s| {
        s == ReplicaState::Healthy
    });
    let start = Instant::now();
    loop {
        let on_replica = db.read(|c| {
            let n: Vec<i64> = c.load(sql::<BigInt>(
                "SELECT count(*) FROM fault_rows WHERE label LIKE 'row-%'",
            ))?;
            Ok((c.info().node, n[0]))
        });
        if on_replica
            .as_ref()
            .is_ok_and(|(node, n)| *node == orm::exec::Node::Replica(0) && *n == 50)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "replica never caught up: {on_replica:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let stop = AtomicBool::new(false);
    let slowest = Mutex::new((Duration::ZERO, String::new()));
    let failures = Mutex::new(Vec::<String>::new());
    let reads = std::sync::atomic::AtomicU64::new(0);
    let bound = read_deadline + Duration::from_millis(250);
    let mut ejected_after = None;
    let mut reason = None;
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (db, ids, stop, slowest, failures, reads) =
                (&db, &ids, &stop, &slowest, &failures, &reads);
            s.spawn(move || {
                let mut dice = Dice(0x2545_f491_4f6c_dd1d ^ (t + 7));
                while !stop.load(Ordering::Relaxed) {
                    let id = ids[dice.below(ids.len() as u64) as usize];
                    let kind = dice.below(3);
                    let began = Instant::now();
                    let checked: Result<(), String> = match kind {
                        0 => db
                            .find::<Row>(id)
                            .map_err(|e| e.to_string())
                            .and_then(|r| check_row(&r, id)),
                        1 => db
                            .load_all::<RowCard>()
                            .map_err(|e| e.to_string())
                            .and_then(|rows| {
                                let labelled =
                                    rows.iter().filter(|r| r.label == label(r.id)).count();
                                if labelled == 50 {
                                    Ok(())
                                } else {
                                    Err(format!("wrong rows: {labelled} of 50 labelled"))
                                }
                            }),
                        _ => {
                            use diesel::prelude::*;
                            db.load::<_, Row>(fault_rows::table.filter(fault_rows::id.eq(id)))
                                .map_err(|e| e.to_string())
                                .and_then(|rows| match rows.as_slice() {
                                    [row] => check_row(row, id),
                                    other => Err(format!("wrong rows for {id}: {other:?}")),
                                })
                        }
                    };
                    let took = began.elapsed();
                    reads.fetch_add(1, Ordering::Relaxed);
                    let mut worst = slowest.lock().unwrap();
                    if took > worst.0 {
                        *worst = (took, ["find", "load_all", "load"][kind as usize].to_owned());
                    }
                    drop(worst);
                    if let Err(e) = checked {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        {
            let _frozen = Frozen::stop(&fault_url);
            let hung_at = Instant::now();
            // New reads stop going to the replica within the monitor's check timeout (a
            // read's own deadline may eject it first), and its status says why.
            while hung_at.elapsed() < Duration::from_secs(10) {
                let status = &db.replica_status()[0];
                if ejected_after.is_none() && status.state != ReplicaState::Healthy {
                    ejected_after = Some(hung_at.elapsed());
                    reason = status.reason.clone();
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // Continued: readmitted by the monitor.
        wait_for_state(
            &db,
            "replica readmitted after SIGCONT",
            Duration::from_secs(40),
            |s| s == ReplicaState::Healthy,
        );
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    let failures = failures.into_inner().unwrap();
    let (worst, kind) = slowest.into_inner().unwrap();
    eprintln!(
        "hung replica: {} reads, {} failed, slowest {worst:?} ({kind}), out of service after \
         {ejected_after:?}: {reason:?}",
        reads.load(Ordering::Relaxed),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} reads failed: {failures:#?}",
        failures.len()
    );
    assert!(
        worst <= bound,
        "the slowest read ({kind}) took {worst:?}, past the read deadline {read_deadline:?} + 250 ms"
    );
    let ejected_after = ejected_after.expect("the hung replica was never taken out of service");
    assert!(
        ejected_after <= check_timeout + Duration::from_millis(250),
        "reads stopped going to the hung replica only after {ejected_after:?}"
    );
    let reason = reason.unwrap_or_default();
    assert!(
        reason.contains("did not answer within"),
        "the status says why: {reason:?}"
    );
    assert!(reads.into_inner() > 100, "the readers kept reading");
}

fn check_row(row: &Row, id: i64) -> Result<(), String> {
    if row.id == id && row.label == label(id) {
        Ok(())
    } else {
        Err(format!("wrong row: asked for {id}, got {row:?}"))
    }
}

#[test]
fn a_hung_primary_fails_each_call_within_its_deadline_then_serves_again() {
    let Some(base) = common::server_url("ORM_TEST_PG_FAULT_PRIMARY_URL", "faults_primary") else {
        return;
    };
    let _serial = one_at_a_time();
    let _fault_primary = common::fault_primary_lock();
    let url = {
        let admin = Database::builder(&base)
            .pool(PoolConfig::none())
            .connect()
            .unwrap();
        admin
            .batch_execute("DROP SCHEMA IF EXISTS orm_t_faults_primary CASCADE; CREATE SCHEMA orm_t_faults_primary;")
            .unwrap();
        with_schema(&base, "faults_primary")
    };
    let config = PoolConfig::default();
    let deadline = config.deadline.unwrap();
    let db = Database::builder(&url).pool(config).connect().unwrap();
    db.create_table::<Row>().unwrap();
    let first = db
        .insert::<Row>(&NewRow {
            label: String::new(),
            hits: 0,
        })
        .unwrap();
    let first = db
        .update(&Row {
            label: label(first.id),
            ..first
        })
        .unwrap();

    let stop = AtomicBool::new(false);
    let slowest = Mutex::new((Duration::ZERO, String::new()));
    // (took, was a write, the error) of every call that failed.
    let failed = Mutex::new(Vec::<(Duration, bool, Error)>::new());
    let wrong = Mutex::new(Vec::<String>::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (db, stop, failed, wrong, slowest) = (&db, &stop, &failed, &wrong, &slowest);
            let first = first.id;
            s.spawn(move || {
                let mut dice = Dice(0xdead_beef ^ (t + 3));
                while !stop.load(Ordering::Relaxed) {
                    let write = dice.below(2) == 0;
                    let began = Instant::now();
                    let outcome: orm::Result<()> = if write {
                        db.insert::<Row>(&NewRow {
                            label: "w".into(),
                            hits: 1,
                        })
                        .map(drop)
                    } else {
                        db.find::<Row>(first).map(|row| {
                            if row.label != label(first) {
                                wrong.lock().unwrap().push(format!("{row:?}"));
                            }
                        })
                    };
                    let took = began.elapsed();
                    let mut worst = slowest.lock().unwrap();
                    if took > worst.0 {
                        *worst = (took, format!("write {write}: {outcome:?}"));
                    }
                    drop(worst);
                    if let Err(e) = outcome {
                        failed.lock().unwrap().push((took, write, e));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            });
        }
        std::thread::sleep(Duration::from_millis(500));
        {
            let _frozen = Frozen::stop(&base);
            std::thread::sleep(deadline * 2 + Duration::from_secs(1));
        }
        // Continued: the same database serves again, with no restart.
        let start = Instant::now();
        while db.find::<Row>(first.id).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the primary never served again"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    assert!(wrong.into_inner().unwrap().is_empty());
    let failed = failed.into_inner().unwrap();
    let (worst, what) = slowest.into_inner().unwrap();
    eprintln!(
        "hung primary: {} calls failed; the slowest call took {worst:?} ({what})",
        failed.len(),
    );
    let bound = deadline + Duration::from_millis(250);
    assert!(
        worst <= bound,
        "a call took {worst:?}, past the deadline {deadline:?} + 250 ms: {what}"
    );
    assert!(!failed.is_empty(), "calls to the hung server failed");
    for (took, write, error) in &failed {
        assert!(
            *took <= bound,
            "a call failed only after {took:?} (deadline {deadline:?}): {error}"
        );
        match error {
            Error::Deadline {
                outcome_unknown, ..
            } => {
                assert!(
                    !outcome_unknown || *write,
                    "a read's outcome is never unknown"
                );
                let text = error.to_string();
                assert!(text.contains("did not answer within"), "{text}");
                if *outcome_unknown {
                    assert!(text.contains("outcome is unknown"), "{text}");
                }
            }
            other => panic!("a call failed with another error than Deadline: {other}"),
        }
    }
    assert!(
        failed.iter().any(|(_, write, e)| *write
            && matches!(
                e,
                Error::Deadline {
                    outcome_unknown: true,
                    ..
                }
            )),
        "a write in flight says its outcome is unknown"
    );
    // Every call after the pause works.
    for _ in 0..20 {
        db.find::<Row>(first.id).unwrap();
        db.insert::<Row>(&NewRow {
            label: "after".into(),
            hits: 2,
        })
        .unwrap();
    }
}
