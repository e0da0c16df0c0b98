//! Read-your-writes: what a session remembers of its last write, so that its next reads see it
//! although replicas replay it a little later.

use std::time::Instant;

use diesel::pg::PgConnection;
use diesel::QueryResult;

use super::config::ReadYourWrites;
use super::lsn::{current_primary_lsn, Lsn};

/// A session's last write, as [`ReplicaSet::pick_after`](super::ReplicaSet::pick_after) needs
/// it to route the session's reads. Keep the latest one per session; a newer write replaces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LastWrite {
    /// Reads need a replica the monitor has seen replay this position (else the primary).
    Lsn(Lsn),
    /// Reads go to the primary until this instant, then to any usable replica.
    PrimaryUntil(Instant),
}

impl ReadYourWrites {
    /// What to remember of a write the session just committed, taken on the connection that
    /// committed it (still checked out, outside any transaction).
    ///
    /// **Cost:** in [`ReadYourWrites::Lsn`] mode one round trip to the primary
    /// (`SELECT pg_current_wal_insert_lsn()`, see
    /// [`current_primary_lsn`](super::current_primary_lsn)); in [`ReadYourWrites::Window`] mode
    /// no I/O, only a clock read.
    pub fn after_commit(self, conn: &mut PgConnection) -> QueryResult<LastWrite> {
        match self {
            ReadYourWrites::Lsn => current_primary_lsn(conn).map(LastWrite::Lsn),
            ReadYourWrites::Window(window) => Ok(LastWrite::PrimaryUntil(Instant::now() + window)),
        }
    }
}
