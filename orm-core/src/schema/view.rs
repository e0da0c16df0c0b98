//! Materialized views: their DDL and refresh per backend, with never two refreshes of one view
//! at once.
//!
//! PostgreSQL has `CREATE MATERIALIZED VIEW` and `REFRESH MATERIALIZED VIEW [CONCURRENTLY]`;
//! a refresh holds a session advisory lock keyed by the view's schema and name, on the
//! connection that runs it, so refreshes from any number of processes never overlap. SQLite has
//! no materialized views: the view is a table, refreshed in one write transaction (delete every
//! row, then `INSERT … SELECT` the defining query), which SQLite's write lock serializes.

use std::time::Instant;

use crate::conn::{Conn, RawConnection};
use crate::ddl::{create_view_sql, refresh_view_sql};
use crate::error::{Error, Result};
use crate::meta::{Backend, TableMeta};
use crate::model::ReadModel;

/// A materialized view: a read-only model with a defining query. Implemented by
/// `#[derive(Model)]` for `#[orm(materialized_view = "…", query = "…")]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a materialized view",
    note = "declare it with `#[orm(materialized_view = \"name\", query = \"SELECT …\")]`"
)]
pub trait MaterializedView: ReadModel {}

/// A materialized view declared for `REFRESH MATERIALIZED VIEW CONCURRENTLY`, which
/// PostgreSQL allows only on a view with a unique index. Implemented by `#[derive(Model)]`
/// for a view with `refresh_concurrently` (which the derive accepts only with a unique index).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not declared for concurrent refresh",
    label = "needs `refresh_concurrently` on the view",
    note = "add `refresh_concurrently` to `#[orm(materialized_view = …)]` and a unique index: \
            `#[orm(index(name = \"…\", on(key_column), unique))]`; PostgreSQL refreshes \
            concurrently only a view with a unique index"
)]
pub trait ConcurrentRefresh: MaterializedView {}

/// When a refresh ran: both instants are taken while its lock was held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refreshed {
    /// After the lock was taken, before the refresh statement.
    pub started: Instant,
    /// After the refresh statement, before the lock was released.
    pub finished: Instant,
}

impl Refreshed {
    /// How long the refresh itself took.
    pub fn duration(&self) -> std::time::Duration {
        self.finished - self.started
    }
}

/// The advisory-lock key of view `name` in `schema`: a stable hash (xxh3) of both, the same in
/// every process and every release of `orm`.
pub fn view_lock_key(schema: &str, name: &str) -> i64 {
    let text = format!("orm:refresh:{schema}.{name}");
    xxhash_rust::xxh3::xxh3_64(text.as_bytes()) as i64
}

/// Whether a refresh waits for another one of the same view to finish, or gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockWait {
    /// Wait for the lock (`pg_advisory_lock`).
    Wait,
    /// Skip the refresh if the lock is held (`pg_try_advisory_lock`).
    Try,
}

/// One refresh of `table` on `conn`. The caller declares the view's table as written.
#[cfg_attr(not(feature = "postgres"), allow(unused_variables))] // SQLite has one kind
pub(crate) fn refresh_on(
    conn: &mut Conn<'_>,
    table: &'static TableMeta,
    concurrently: bool,
    wait: LockWait,
    inside: &(dyn Fn(&Refreshed) + Sync),
) -> Result<Option<Refreshed>> {
    let done = match conn.raw_for_runtime() {
        #[cfg(feature = "postgres")]
        RawConnection::Postgres(pg) => {
            postgres::refresh_locked(pg, table, concurrently, wait, inside)?
        }
        #[cfg(feature = "sqlite")]
        RawConnection::Sqlite(lite) => Some(sqlite_refresh(lite, table, inside)?),
    };
    Ok(done)
}

#[cfg(feature = "sqlite")]
fn sqlite_refresh(
    conn: &mut diesel::sqlite::SqliteConnection,
    table: &TableMeta,
    inside: &(dyn Fn(&Refreshed) + Sync),
) -> Result<Refreshed> {
    use diesel::connection::SimpleConnection;
    // IMMEDIATE takes the write lock first, so two refreshers queue instead of both reading.
    conn.immediate_transaction(|c| {
        let started = Instant::now();
        for statement in refresh_view_sql(table, Backend::Sqlite, false) {
            c.batch_execute(&statement)?;
        }
        let done = Refreshed {
            started,
            finished: Instant::now(),
        };
        inside(&done);
        Ok(done)
    })
}

#[cfg(feature = "postgres")]
mod postgres {
    use diesel::connection::SimpleConnection;
    use diesel::pg::PgConnection;
    use diesel::sql_types::{BigInt, Text};
    use diesel::RunQueryDsl;

    use super::*;

    diesel::define_sql_function! {
        fn pg_advisory_lock(key: BigInt);
    }
    diesel::define_sql_function! {
        fn pg_try_advisory_lock(key: BigInt) -> Bool;
    }
    diesel::define_sql_function! {
        fn pg_advisory_unlock(key: BigInt) -> Bool;
    }

    /// Take the view's advisory lock on `conn`, refresh, release. The lock is a session lock:
    /// it is released with the connection too, should that break mid-refresh.
    pub(super) fn refresh_locked(
        conn: &mut PgConnection,
        table: &TableMeta,
        concurrently: bool,
        wait: LockWait,
        inside: &(dyn Fn(&Refreshed) + Sync),
    ) -> Result<Option<Refreshed>> {
        let schema: String =
            diesel::select(diesel::dsl::sql::<Text>("current_schema()")).get_result(conn)?;
        let key = view_lock_key(&schema, table.name);
        match wait {
            LockWait::Wait => {
                diesel::select(pg_advisory_lock(key)).execute(conn)?;
            }
            LockWait::Try => {
                let taken: bool = diesel::select(pg_try_advisory_lock(key)).get_result(conn)?;
                if !taken {
                    return Ok(None);
                }
            }
        }
        let started = Instant::now();
        let result = refresh_statements(conn, table, concurrently).map(|()| {
            let done = Refreshed {
                started,
                finished: Instant::now(),
            };
            inside(&done);
            done
        });
        let unlocked = diesel::select(pg_advisory_unlock(key)).get_result::<bool>(conn);
        let done = result?;
        unlocked?;
        Ok(Some(done))
    }

    fn refresh_statements(
        conn: &mut PgConnection,
        table: &TableMeta,
        concurrently: bool,
    ) -> Result<()> {
        // Each on its own: `CONCURRENTLY` refuses to run inside a transaction block.
        for statement in refresh_view_sql(table, Backend::Postgres, concurrently) {
            conn.batch_execute(&statement)?;
        }
        Ok(())
    }
}

/// Create the view of `table` on `conn` if it does not exist (on SQLite, fill it): see
/// [`Executor::create_view`](crate::Executor::create_view), which then creates its indexes.
pub(crate) fn create_view_on(conn: &mut Conn<'_>, table: &'static TableMeta) -> Result<()> {
    use diesel::connection::SimpleConnection;
    // The runtime's own statements: the operation declared the view's table as written.
    for statement in create_view_sql(table, conn.backend()) {
        match conn.raw_for_runtime() {
            #[cfg(feature = "postgres")]
            RawConnection::Postgres(pg) => pg.batch_execute(&statement)?,
            #[cfg(feature = "sqlite")]
            RawConnection::Sqlite(lite) => lite.batch_execute(&statement)?,
        }
    }
    if conn.backend() == Backend::Sqlite {
        refresh_waiting(conn, table, false)?;
    }
    Ok(())
}

/// One refresh of `table` on `conn`, waiting for its lock.
pub(crate) fn refresh_waiting(
    conn: &mut Conn<'_>,
    table: &'static TableMeta,
    concurrently: bool,
) -> Result<Refreshed> {
    refresh_on(conn, table, concurrently, LockWait::Wait, &|_| {})?.ok_or_else(|| not_locked(table))
}

/// A refresh that waited for its lock always takes it; this is never returned in practice.
fn not_locked(table: &TableMeta) -> Error {
    Error::Model {
        model: table.model,
        message: "refresh did not take its lock".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_key_depends_on_schema_and_name_only() {
        assert_eq!(view_lock_key("public", "v"), view_lock_key("public", "v"));
        assert_ne!(view_lock_key("public", "v"), view_lock_key("other", "v"));
    }
}
