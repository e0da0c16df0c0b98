//! The replica router's monitor against real servers: the shared replica on 5433 seen healthy
//! and replaying the primary's writes, and the disposable replica on 5434 ejected for lag
//! (replay paused) and for being down (cluster stopped), then readmitted. Only the disposable
//! replica is ever paused or stopped, and a guard restores it even when a test fails.
#![cfg(feature = "postgres")]

use crate::common;

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::sql_types::{Bool, Text};
use diesel::{Connection, RunQueryDsl};
use orm::route::{
    current_primary_lsn, Backoff, LastWrite, Lsn, ReadYourWrites, ReplicaSet, ReplicaState,
    RouterConfig,
};

/// A monitor that looks often and retries soon, so the tests see its decisions quickly.
fn quick(config: RouterConfig) -> RouterConfig {
    RouterConfig {
        monitor_interval: Duration::from_millis(50),
        check_timeout: Duration::from_secs(5),
        eject_backoff: Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(800),
        },
        ..config
    }
}

/// Poll `done` until it holds; fail after `secs` seconds, describing the set.
fn wait_for(set: &ReplicaSet, what: &str, secs: u64, mut done: impl FnMut(&ReplicaSet) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done(set) {
        assert!(
            Instant::now() < deadline,
            "not within {secs} s: {what}; replicas: {:#?}",
            set.status()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn state(set: &ReplicaSet) -> ReplicaState {
    set.status()[0].state
}

fn connect(url: &str) -> PgConnection {
    PgConnection::establish(url).unwrap_or_else(|e| panic!("connect to {url}: {e}"))
}

#[test]
fn the_shared_replica_is_healthy_and_seen_replaying_writes() {
    let Some(primary_url) = common::server_url("ORM_TEST_PG_URL", "replica_monitor") else {
        return;
    };
    let Some(replica_url) = common::server_url("ORM_TEST_PG_REPLICA_URL", "replica_monitor") else {
        return;
    };
    let schema_url = common::postgres_url("replica_monitor").unwrap();
    // Other tests load the primary meanwhile: generous limits, this test is not about lag.
    let config = quick(RouterConfig {
        max_lag_bytes: Some(1 << 30),
        max_lag_time: Some(Duration::from_secs(60)),
        ..RouterConfig::default()
    });
    let set = ReplicaSet::start(&primary_url, [&replica_url], config).unwrap();
    wait_for(&set, "replica healthy", 30, |s| {
        state(s) == ReplicaState::Healthy
    });
    assert!(set.primary_lsn().is_some());
    let before = set.status()[0].replay_lsn.unwrap();

    let mut primary = connect(&schema_url);
    primary
        .batch_execute(
            "CREATE TABLE monitored (id int PRIMARY KEY, body text NOT NULL);
             INSERT INTO monitored VALUES (1, 'written on the primary');",
        )
        .unwrap();
    let written = current_primary_lsn(&mut primary).unwrap();
    assert!(written > before, "{written} after {before}");
    let last_write = ReadYourWrites::Lsn.after_commit(&mut primary).unwrap();
    assert!(matches!(last_write, LastWrite::Lsn(l) if l >= written));

    // The monitor sees the replay position advance past the write; until then the session's
    // reads go to the primary.
    wait_for(&set, "replica seen replaying the write", 30, |s| {
        s.pick(Some(written)) == Ok(Some(0))
    });
    assert!(set.status()[0].replay_lsn.unwrap() >= written);
    assert_eq!(set.pick_after(Some(last_write)).ok(), Some(Some(0)));
    assert_eq!(set.pick(Some(Lsn(u64::MAX))), Ok(None));

    // Routed there, the session reads its own write.
    let mut replica = connect(&format!(
        "{replica_url}{}options=-csearch_path%3Dorm_t_replica_monitor",
        if replica_url.contains('?') { '&' } else { '?' }
    ));
    let body: String = sql::<Text>("SELECT body FROM monitored WHERE id = 1")
        .get_result(&mut replica)
        .unwrap();
    assert_eq!(body, "written on the primary");

    // A failure reported on the read path ejects at once; the monitor readmits the replica
    // once it answers again.
    {
        let _busy = set.acquire(0);
        assert_eq!(set.status()[0].in_use, 1);
        set.report_failure(0);
    }
    assert_eq!(state(&set), ReplicaState::Unreachable);
    assert_eq!(set.status()[0].in_use, 0);
    assert_eq!(set.pick(None), Ok(None));
    wait_for(
        &set,
        "replica readmitted after a reported failure",
        30,
        |s| state(s) == ReplicaState::Healthy,
    );
}

#[test]
fn a_server_not_in_recovery_is_never_used_as_a_replica() {
    let Some(primary_url) = common::server_url("ORM_TEST_PG_URL", "replica_monitor_primary") else {
        return;
    };
    let set =
        ReplicaSet::start(&primary_url, [&primary_url], quick(RouterConfig::default())).unwrap();
    wait_for(&set, "the primary classified", 30, |s| {
        state(s) != ReplicaState::Unchecked
    });
    assert_eq!(state(&set), ReplicaState::NotInRecovery);
    assert_eq!(set.pick(None), Ok(None));
}

#[test]
fn the_fault_replica_is_ejected_when_behind_or_down_and_readmitted_after() {
    let Some(primary_url) = common::server_url("ORM_TEST_PG_URL", "replica_fault") else {
        return;
    };
    let Some(fault_url) = common::server_url("ORM_TEST_PG_FAULT_REPLICA_URL", "replica_fault")
    else {
        return;
    };
    let _one_at_a_time = common::fault_replica_lock();
    // The router's events only.
    let router_logs = common::Logs::capture(|meta| meta.target().starts_with("orm_core::route"));
    let restore = common::FaultReplica::new(&fault_url);
    let schema_url = common::postgres_url("replica_fault").unwrap();
    let config = quick(RouterConfig {
        max_lag_bytes: Some(64 * 1024),
        max_lag_time: Some(Duration::from_secs(5)),
        fallback_to_primary: false,
        ..RouterConfig::default()
    });
    // Trust authentication ignores the password; the logs must not show it.
    let with_password = |url: &str| url.replacen("postgres@", "postgres:Fau1tySecret@", 1);
    let set = ReplicaSet::start(
        &with_password(&primary_url),
        [with_password(&fault_url)],
        config,
    )
    .unwrap();
    wait_for(&set, "fault replica healthy", 30, |s| {
        state(s) == ReplicaState::Healthy
    });
    assert_eq!(set.pick(None), Ok(Some(0)));

    // Replay paused while the primary writes about 1 MB of WAL: ejected for lag.
    let mut replica = connect(&fault_url);
    replica
        .batch_execute("SELECT pg_wal_replay_pause()")
        .unwrap();
    let mut primary = connect(&schema_url);
    primary
        .batch_execute(
            "CREATE TABLE lag_filler (id int, body text);
             INSERT INTO lag_filler SELECT g, repeat('x', 200) FROM generate_series(1, 5000) g;",
        )
        .unwrap();
    wait_for(&set, "fault replica ejected for lag", 30, |s| {
        state(s) == ReplicaState::Lagging
    });
    assert!(set.status()[0].lag_bytes.unwrap() > 64 * 1024);
    let no = set.pick(None).unwrap_err();
    assert_eq!((no.replicas, no.lagging), (1, 1));
    let error = orm::Error::from(no).to_string();
    assert!(error.contains("1 lagging"), "{error}");

    // Replay resumed: it catches up and is readmitted.
    let paused: bool = sql::<Bool>("SELECT pg_is_wal_replay_paused()")
        .get_result(&mut replica)
        .unwrap();
    assert!(paused);
    replica
        .batch_execute("SELECT pg_wal_replay_resume()")
        .unwrap();
    drop(replica);
    wait_for(
        &set,
        "fault replica readmitted after catching up",
        30,
        |s| state(s) == ReplicaState::Healthy,
    );
    assert_eq!(set.pick(None), Ok(Some(0)));

    // Cluster stopped: ejected as unreachable, asked again less and less often.
    restore.ctl("stop");
    wait_for(&set, "fault replica ejected as unreachable", 30, |s| {
        state(s) == ReplicaState::Unreachable
    });
    let no = set.pick(None).unwrap_err();
    assert_eq!((no.replicas, no.unreachable), (1, 1));
    // Failures keep coming while it is down, each check after a longer wait: checks at 0.1,
    // 0.2, 0.4, 0.8 s after each failure (fewer while `pg_ctlcluster stop` was still waiting),
    // while rounds run every 50 ms, so backoff skips rounds.
    let (rounds, failures) = (set.monitor_rounds(), set.status()[0].failures);
    wait_for(&set, "three more failed checks", 30, |s| {
        s.status()[0].failures >= failures + 3
    });
    let rounds = set.monitor_rounds() - rounds;
    assert!(
        rounds >= 6,
        "{rounds} rounds for 3 failed checks: no backoff"
    );

    // Started again: readmitted at the next check that answers (backoff at most 0.8 s).
    restore.ctl("start");
    wait_for(&set, "fault replica readmitted after restart", 60, |s| {
        state(s) == ReplicaState::Healthy
    });
    assert_eq!(set.status()[0].failures, 0);
    assert_eq!(set.pick(None), Ok(Some(0)));
    drop(restore);

    // Each ejection and readmission was logged with its reason, the password redacted.
    let logs = router_logs.text();
    let ours: Vec<&str> = logs.lines().filter(|l| l.contains(":5434")).collect();
    let position = |event: &str, detail: &str, after: usize| {
        ours.iter()
            .skip(after)
            .position(|l| l.contains(event) && l.contains(detail))
            .map(|p| p + after + 1)
            .unwrap_or_else(|| {
                panic!(
                    "no `{event}` event with `{detail}` in:\n{}",
                    ours[after..].join("\n")
                )
            })
    };
    let paused = position("replica ejected", "replay paused", 0);
    position("replica readmitted", "was=Lagging", paused);
    let down = position("replica ejected: unreachable", "retry_in_ms", paused);
    // Back up, it may first be behind the primary (other tests write there meanwhile).
    position("replica readmitted", "", down);
    assert!(!logs.contains("Fau1tySecret"), "{logs}");
    assert!(ours.iter().all(|l| l.contains("postgres:***@")), "{logs}");
}
