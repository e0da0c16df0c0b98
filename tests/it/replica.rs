//! The streaming replica that `scripts/test` brings up on 5433: rows written on the primary
//! reach it, and it refuses writes.
#![cfg(feature = "postgres")]

use crate::common;

use diesel::dsl::sql;
use diesel::sql_types::{Bool, Text};
use orm::prelude::*;
use orm::{Database, Model};

#[derive(Debug, PartialEq, Model)]
#[orm(table = replicated_notes)]
pub struct Note {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub body: String,
}

#[test]
fn replica_replays_primary_writes_and_refuses_its_own() {
    let Some(primary) = common::postgres("replica_replays") else {
        return;
    };
    let Some(replica_url) = common::server_url("ORM_TEST_PG_REPLICA_URL", "replica_replays") else {
        return;
    };
    primary.create_table::<Note>().unwrap();
    let note = primary
        .insert::<Note>(&NewNote {
            body: "written on the primary".into(),
        })
        .unwrap();
    let lsn: String = primary
        .load(sql::<Text>("SELECT pg_current_wal_lsn()::text"))
        .unwrap()
        .remove(0);

    let replica = Database::connect(&format!(
        "{replica_url}{}options=-csearch_path%3Dorm_t_replica_replays",
        if replica_url.contains('?') { '&' } else { '?' }
    ))
    .unwrap();
    let in_recovery: bool = replica
        .load(sql::<Bool>("SELECT pg_is_in_recovery()"))
        .unwrap()
        .remove(0);
    assert!(in_recovery, "port 5433 must be a standby");

    // Wait for replay of the write's position: never sleep and hope.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let replayed = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
    while !replica
        .load::<_, bool>(sql::<Bool>(&replayed))
        .unwrap()
        .remove(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "replica did not replay {lsn} in 10 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(replica.find::<Note>(note.id).unwrap(), note);

    let refused = replica.insert::<Note>(&NewNote {
        body: "written on the replica".into(),
    });
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("read-only"), "{message}");
}
