//! Read replicas through `Database`: reads land on the replica, writes and transactions on the
//! primary; a session reads its own writes; a replica that stops or falls behind stops taking
//! reads without a failed read, and takes them again once it is back.
#![cfg(feature = "postgres")]

use crate::common;

use orm::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::sql_types::Bool;
use diesel::{Connection, PgConnection};
use orm::exec::Node;
use orm::route::{Backoff, ReplicaState, RouterConfig};
use orm::{Database, Model, PoolConfig};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = notes)]
pub struct Note {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub body: String,
}

/// The URL of `base` with the search path of the schema `common::postgres_url` made for `test`.
fn with_schema(base: &str, test: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-csearch_path%3Dorm_t_{test}")
}

/// Router settings that notice changes within a few tenths of a second.
fn quick() -> RouterConfig {
    RouterConfig {
        monitor_interval: Duration::from_millis(50),
        eject_backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(800),
        },
        ..RouterConfig::default()
    }
}

fn wait_until(db: &Database, what: &str, secs: u64, done: impl Fn(ReplicaState) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(db.replica_status()[0].state) {
        assert!(
            Instant::now() < deadline,
            "not within {secs} s: {what}; {:#?}",
            db.replica_status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Which node a read made through `db` lands on, and whether that server is a standby.
fn where_reads_go(db: &Database) -> (Node, bool) {
    db.read(|conn| {
        let node = conn.info().node;
        let standby: Vec<bool> = conn
            .postgres()?
            .load(sql::<Bool>("SELECT pg_is_in_recovery()"))?;
        Ok((node, standby[0]))
    })
    .unwrap()
}

fn routed(test: &str, replica_var: &str) -> Option<(Database, String)> {
    let primary = common::postgres_url(test)?;
    let replica = common::server_url(replica_var, test)?;
    let db = Database::builder(&primary)
        .replica(&with_schema(&replica, test))
        .router(quick())
        .connect()
        .unwrap();
    Some((db, primary))
}

#[test]
fn reads_go_to_the_replica_and_writes_to_the_primary() {
    let Some((db, _)) = routed("routing_basic", "ORM_TEST_PG_REPLICA_URL") else {
        return;
    };
    db.create_table::<Note>().unwrap();
    wait_until(&db, "replica healthy", 30, |s| s == ReplicaState::Healthy);

    assert_eq!(where_reads_go(&db), (Node::Replica(0), true));
    let standby: Vec<bool> = db.load(sql::<Bool>("SELECT pg_is_in_recovery()")).unwrap();
    assert_eq!(standby, [true], "db.load reads on the replica");
    let on_primary = db
        .with_connection(|conn| {
            let standby: Vec<bool> = conn
                .postgres()?
                .load(sql::<Bool>("SELECT pg_is_in_recovery()"))?;
            Ok((conn.info().node, standby[0]))
        })
        .unwrap();
    assert_eq!(on_primary, (Node::Primary, false), "with_connection writes");
    let in_transaction = db
        .transaction(|conn| {
            let standby: Vec<bool> = conn.load(sql::<Bool>("SELECT pg_is_in_recovery()"))?;
            Ok((conn.info().node, standby))
        })
        .unwrap();
    assert_eq!(in_transaction, (Node::Primary, vec![false]));
    assert_eq!(where_reads_go(&db.primary()), (Node::Primary, false));
    assert_eq!(where_reads_go(&db.replica()), (Node::Replica(0), true));

    // Writes work (they go to the primary), and so do reads of what they wrote, once replayed.
    let note = db
        .insert::<Note>(&NewNote {
            body: "hello".into(),
        })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match db.find::<Note>(note.id) {
            Ok(found) => break assert_eq!(found, note),
            Err(orm::Error::NotFound { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let states = db.pool_state();
    assert_eq!(states.len(), 2);
    assert_eq!(states[1].node, Node::Replica(0));
    assert!(
        states[1].checkouts > 0 && states[0].checkouts > 0,
        "{states:#?}"
    );
}

#[test]
fn a_session_reads_its_own_writes_every_time() {
    let Some((db, _)) = routed("routing_session", "ORM_TEST_PG_REPLICA_URL") else {
        return;
    };
    db.create_table::<Note>().unwrap();
    wait_until(&db, "replica healthy", 30, |s| s == ReplicaState::Healthy);
    let session = db.session();
    let mut on_replica = 0;
    for i in 0..1000 {
        let note = session
            .insert::<Note>(&NewNote {
                body: format!("note {i}"),
            })
            .unwrap();
        let (found, node) = session
            .read(|conn| Ok((conn.find::<Note>(note.id)?, conn.info().node)))
            .unwrap_or_else(|e| panic!("write {i} not read back: {e}"));
        assert_eq!(found, note);
        on_replica += usize::from(node != Node::Primary);
    }
    // Each read went to the replica only once it had replayed the write; the rest to the
    // primary. Either way, 1,000 of 1,000 reads saw their write.
    eprintln!("read-your-writes: {on_replica} of 1000 reads served by the replica");
}

#[test]
fn a_replica_that_stops_or_falls_behind_loses_no_read() {
    let Some(primary) = common::postgres_url("routing_fault") else {
        return;
    };
    let Some(fault_url) = common::server_url("ORM_TEST_PG_FAULT_REPLICA_URL", "routing_fault")
    else {
        return;
    };
    let _one_at_a_time = common::fault_replica_lock();
    let restore = common::FaultReplica::new(&fault_url);
    // A pool that pre-pings any connection idle for 0.1 s, and tight lag limits.
    let db = Database::builder(&primary)
        .pool(PoolConfig {
            pre_ping_idle: Duration::from_millis(100),
            ..PoolConfig::default()
        })
        .replica(&with_schema(&fault_url, "routing_fault"))
        .router(RouterConfig {
            max_lag_bytes: Some(64 * 1024),
            ..quick()
        })
        .connect()
        .unwrap();
    db.create_table::<Note>().unwrap();
    let notes: Vec<Note> = (0..100)
        .map(|i| {
            db.insert::<Note>(&NewNote {
                body: format!("{i}"),
            })
            .unwrap()
        })
        .collect();
    wait_until(&db, "fault replica healthy", 30, |s| {
        s == ReplicaState::Healthy
    });
    assert_eq!(where_reads_go(&db).0, Node::Replica(0));

    // 4 readers by primary key while the replica is stopped, then started again.
    let stop = Arc::new(AtomicBool::new(false));
    let (reads, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (db, stop, reads, failures) =
                (db.clone(), stop.clone(), reads.clone(), failures.clone());
            let ids: Vec<i64> = notes.iter().map(|n| n.id).collect();
            std::thread::spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    match db.find::<Note>(ids[i % ids.len()]) {
                        Ok(_) => reads.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            eprintln!("read failed: {e}");
                            failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                    i += 4;
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    restore.ctl("stop");
    wait_until(&db, "stopped replica ejected", 30, |s| {
        s == ReplicaState::Unreachable
    });
    std::thread::sleep(Duration::from_millis(500));
    restore.ctl("start");
    wait_until(&db, "restarted replica readmitted", 60, |s| {
        s == ReplicaState::Healthy
    });
    let before = reads.load(Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "no read may fail");
    assert!(
        reads.load(Ordering::Relaxed) > before,
        "reads go on after readmission"
    );
    assert_eq!(where_reads_go(&db).0, Node::Replica(0), "readmitted");

    // Replay paused while the primary writes: ejected for lag, reads go to the primary;
    // resumed: it catches up and takes reads again.
    let mut replica = PgConnection::establish(&fault_url).unwrap();
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    db.batch_execute(
        "CREATE TABLE lag_filler AS SELECT g AS id, repeat('x', 200) AS body
         FROM generate_series(1, 5000) g",
    )
    .unwrap();
    wait_until(&db, "paused replica ejected for lag", 30, |s| {
        s == ReplicaState::Lagging
    });
    assert_eq!(where_reads_go(&db), (Node::Primary, false));
    replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    wait_until(&db, "resumed replica readmitted", 30, |s| {
        s == ReplicaState::Healthy
    });
    assert_eq!(where_reads_go(&db).0, Node::Replica(0));
    let filler: Vec<i64> = db
        .load(sql::<diesel::sql_types::BigInt>(
            "SELECT count(*) FROM lag_filler",
        ))
        .unwrap();
    assert_eq!(
        filler,
        [5000],
        "the replica caught up before taking reads again"
    );
}
