//! The one error type of the runtime.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use crate::meta::{Backend, RedactedUrl, TableMeta};
use crate::values::{RejectReason, RejectedValue};

/// Result of every fallible operation in `orm`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a database through `orm`.
///
/// Messages never contain a password: URLs are carried as [`RedactedUrl`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database URL could not be understood.
    #[error("invalid database URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given, password redacted.
        url: RedactedUrl,
        /// What is wrong with it, and what a valid URL looks like.
        reason: String,
    },

    /// The database server could not be reached, or refused the connection.
    #[error("cannot connect to `{url}`: {message}")]
    Connect {
        /// The URL tried, password redacted.
        url: RedactedUrl,
        /// The driver's explanation, with any password removed.
        message: String,
    },

    /// No connection could be checked out of the pool within its `timeout`: every connection
    /// was in use (`in_use` of `size + max_overflow`), or new ones could not be opened
    /// (`last_error` says why).
    #[error(
        "no connection to `{url}` within {timeout:?}: {in_use} of {} in use ({size} + \
         {max_overflow} overflow), {waiting} waiting{}",
        size.saturating_add(*max_overflow),
        last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default()
    )]
    PoolTimeout {
        /// The URL of the pool, password redacted.
        url: RedactedUrl,
        /// How long the call waited ([`PoolConfig::timeout`](crate::PoolConfig::timeout)).
        timeout: Duration,
        /// The pool's `size`.
        size: u32,
        /// The pool's `max_overflow`.
        max_overflow: u32,
        /// Connections held by calls when this one gave up.
        in_use: u32,
        /// Calls waiting for a connection when this one gave up, this one included.
        waiting: u32,
        /// The last error opening or checking a connection, if one failed since the last
        /// success (password removed).
        last_error: Option<String>,
    },

    /// The server gave no sign of life within the call's deadline
    /// ([`PoolConfig::deadline`](crate::PoolConfig::deadline), or `RouterConfig::read_deadline`
    /// on a replica): the call was ended on the client side and its connection closed. A
    /// server that is merely slow (it still answers a liveness probe) does not cause this.
    #[error(
        "`{url}` did not answer within {deadline:?} (no sign of life from the server); the \
         connection was closed{}",
        if *outcome_unknown {
            "; the write's outcome is unknown: it may have committed, and was not retried"
        } else {
            ""
        }
    )]
    Deadline {
        /// The server's URL, password redacted.
        url: RedactedUrl,
        /// The deadline that passed.
        deadline: Duration,
        /// The call could write: it may have committed before the server stopped answering,
        /// or may commit once it resumes. `orm` never retries a write.
        outcome_unknown: bool,
    },

    /// A [`PoolConfig`](crate::PoolConfig) setting cannot work; nothing was connected.
    #[error("invalid pool setting `{field}`: {reason}")]
    InvalidConfig {
        /// The setting's field name.
        field: &'static str,
        /// Why it cannot work, and what to do instead.
        reason: String,
    },

    /// A lookup, update or delete by primary key matched no row, or a query asked for its
    /// first row returned none.
    #[error("no row in `{table}` matched")]
    NotFound {
        /// The table that was searched, or `(query)` for a query through [`crate::Executor::first`].
        table: &'static str,
    },

    /// A write violated a UNIQUE constraint or primary key.
    #[error("unique constraint `{constraint}` on `{table}` violated: {message}")]
    UniqueViolation {
        /// The table written to.
        table: String,
        /// The constraint's name (`users_email_key`); on SQLite, which does not report names,
        /// the name `orm` gave the constraint when it created the table, else the column list.
        constraint: String,
        /// The database's own message.
        message: String,
    },

    /// A write violated a FOREIGN KEY, NOT NULL or CHECK constraint.
    #[error("{kind} constraint violated{}: {message}", constraint.as_deref().map(|c| format!(" (`{c}`)")).unwrap_or_default())]
    ConstraintViolation {
        /// `not null`, `check` or `foreign key`.
        kind: &'static str,
        /// The constraint or column the database named, when it named one.
        constraint: Option<String>,
        /// The database's own message.
        message: String,
    },

    /// The model's table does not match what the operation needs (for example a model
    /// with no columns besides its primary key cannot be updated).
    #[error("model `{model}`: {message}")]
    Model {
        /// The model's Rust name.
        model: &'static str,
        /// What is wrong.
        message: String,
    },

    /// The live table does not match the model: from [`Executor::create_table`](crate::Executor::create_table)
    /// when a table of that name exists with another shape (nothing was changed). The same
    /// differences come from [`Executor::verify_schema`](crate::Executor::verify_schema) as data.
    #[error(
        "table `{table}` exists but does not match model `{model}`: {}",
        differences.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("; ")
    )]
    SchemaMismatch {
        /// The model's Rust name.
        model: &'static str,
        /// The table.
        table: &'static str,
        /// Every difference found.
        differences: Vec<crate::schema::SchemaDifference>,
    },

    /// The operation needs a backend other than the database's: a model declared for one
    /// backend used on another, or a backend-specific handle (`db.postgres()`) asked of a
    /// database of the other kind.
    #[error("{what} needs {needed}, but this database is {actual}")]
    WrongBackend {
        /// What was asked: `model \`Event\``, `a PostgreSQL-only query`.
        what: String,
        /// The backend it needs.
        needed: Backend,
        /// The database's backend.
        actual: Backend,
    },

    /// A value the backend would not store exactly was refused before anything was sent:
    /// NaN or `-0.0` on SQLite, a NUL character in text or JSON on PostgreSQL. Checked on
    /// every write through `orm` (insert, update, bulk insert) for fields of type `f32`, `f64`,
    /// `String`, `serde_json::Value` and their `Option`s; in a bulk insert it comes inside
    /// [`Error::Bulk`], naming the row like any failing row.
    #[error("`{table}.{column}`: {reason}")]
    ValueRejected {
        /// The table written to.
        table: &'static str,
        /// The column's SQL name.
        column: &'static str,
        /// What is wrong with the value.
        reason: RejectReason,
        /// The backend that would not store it exactly.
        backend: Backend,
    },

    /// `create_table` was asked for a table one of whose columns has an SQL type `orm` has no
    /// DDL for (a model bound to a `table!` whose SQL type has no
    /// [`DdlType`](crate::sql_types::DdlType) impl). The model reads and writes that column;
    /// the table itself is created by your own migrations. Nothing was sent.
    #[error(
        "`orm` has no DDL for the SQL type of `{table}.{column}` (no `orm::sql_types::DdlType` \
         impl): create this table with your own migration; the model reads and writes it as is"
    )]
    DdlUnknown {
        /// The table.
        table: &'static str,
        /// The first column whose type has no DDL.
        column: &'static str,
    },

    /// A bulk insert failed in one batch. `failure.row` is the input offset of the row that
    /// failed, when it could be determined. Exactly `failure.committed_rows` rows were
    /// committed before it (none in [`crate::CommitMode::AllOrNothing`]).
    #[error("bulk insert: {failure}: {source}")]
    Bulk {
        /// Which batch failed, its rows, the row that failed, and what was committed.
        failure: BatchFailure,
        /// Why the batch failed (constraint, column, the database's message).
        source: Box<Error>,
    },

    /// A read could not be routed: no replica is usable and the replica set was configured
    /// not to fall back to the primary.
    #[error("no replica can serve the read: {reasons}")]
    NoReplica {
        /// Why each replica is out (unreachable, lagging, promoted).
        reasons: String,
    },

    /// A cached read was refused: the tables the query reads cannot be known, so no write
    /// could invalidate its cached result. Nothing was read or cached.
    #[error("cannot cache this query: {reason}")]
    Uncacheable {
        /// What could not be known, and how to declare it.
        reason: String,
    },

    /// Any other error reported by Diesel or the database.
    #[error("query failed: {0}")]
    Query(#[source] diesel::result::Error),
}

impl Error {
    /// Classify a Diesel error raised while working on `table`; its metadata names the
    /// constraints SQLite leaves unnamed.
    pub(crate) fn from_model(table: &'static TableMeta, error: diesel::result::Error) -> Self {
        Self::classify(Some(table), error)
    }

    /// The error for `rejected`, a value of a row of `table` refused for `backend`.
    pub(crate) fn rejected(
        table: &'static TableMeta,
        backend: Backend,
        rejected: RejectedValue,
    ) -> Self {
        Error::ValueRejected {
            table: table.name,
            column: rejected.column,
            reason: rejected.reason,
            backend,
        }
    }

    fn classify(table: Option<&'static TableMeta>, error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind as Kind, Error as D};
        match error {
            D::NotFound => Error::NotFound {
                table: table.map_or("(query)", |t| t.name),
            },
            D::DatabaseError(kind, info) => {
                let message = info.message().to_owned();
                let constraint = info.constraint_name().map(str::to_owned);
                match kind {
                    Kind::UniqueViolation => {
                        let sqlite = sqlite_failed_columns(&message);
                        let table_name = info
                            .table_name()
                            .map(str::to_owned)
                            .or_else(|| sqlite.as_ref().map(|c| c.0.clone()))
                            .or_else(|| table.map(|t| t.name.to_owned()))
                            .unwrap_or_default();
                        let constraint = constraint
                            .or_else(|| {
                                let (t, cols) = sqlite?;
                                Some(sqlite_constraint_name(table, &t, &cols))
                            })
                            .unwrap_or_else(|| "unknown".to_owned());
                        Error::UniqueViolation {
                            table: table_name,
                            constraint,
                            message,
                        }
                    }
                    Kind::NotNullViolation => Error::ConstraintViolation {
                        kind: "not null",
                        constraint: constraint.or_else(|| info.column_name().map(str::to_owned)),
                        message,
                    },
                    Kind::CheckViolation => Error::ConstraintViolation {
                        kind: "check",
                        constraint,
                        message,
                    },
                    Kind::ForeignKeyViolation => Error::ConstraintViolation {
                        kind: "foreign key",
                        constraint,
                        message,
                    },
                    other => Error::Query(D::DatabaseError(other, info)),
                }
            }
            other => Error::Query(other),
        }
    }
}

impl From<diesel::result::Error> for Error {
    fn from(error: diesel::result::Error) -> Self {
        Self::classify(None, error)
    }
}

/// The name PostgreSQL would report for the UNIQUE or primary-key constraint on `columns`,
/// as `orm`'s DDL names them: `{table}_pkey` for the primary key, `{table}_{cols}_key` else.
fn sqlite_constraint_name(meta: Option<&TableMeta>, table: &str, columns: &[String]) -> String {
    let is_key = meta.is_some_and(|m| {
        m.name == table
            && m.primary_key.len() == columns.len()
            && m.primary_key.iter().zip(columns).all(|(a, b)| a == b)
    });
    if is_key {
        format!("{table}_pkey")
    } else {
        crate::meta::unique_constraint_name(table, columns)
    }
}

/// SQLite reports `UNIQUE constraint failed: users.a, users.b`; returns (`users`, [`a`, `b`]).
fn sqlite_failed_columns(message: &str) -> Option<(String, Vec<String>)> {
    let list = message.strip_prefix("UNIQUE constraint failed: ")?;
    let mut table = None;
    let mut columns = Vec::new();
    for item in list.split(", ") {
        let (t, c) = item.split_once('.')?;
        table.get_or_insert_with(|| t.to_owned());
        columns.push(c.to_owned());
    }
    Some((table?, columns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_unique_message() {
        let (t, c) = sqlite_failed_columns("UNIQUE constraint failed: users.a, users.b").unwrap();
        assert_eq!(t, "users");
        assert_eq!(c, ["a", "b"]);
        assert!(sqlite_failed_columns("NOT NULL constraint failed: users.a").is_none());
    }
}

/// The failure of one batch, as reported in [`Error::Bulk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Index of the failing batch, from 0.
    pub batch: u64,
    /// Offsets (from 0, in input order) of the rows in the failing batch.
    pub rows: Range<u64>,
    /// Offset (from 0, in input order) of the row that failed: the first row of the batch the
    /// database refuses once the rows before it are written. Found after the failure by
    /// writing parts of the batch again inside a transaction that is rolled back, so it never
    /// changes what is committed.
    ///
    /// `None` when it cannot be determined: the error is not about a row (the connection was
    /// lost, a serialization failure between transactions), or the failure did not recur when
    /// the batch's rows were written again (another connection changed the table meanwhile).
    pub row: Option<u64>,
    /// Input rows whose batches were committed before the failure (rows skipped as conflicts
    /// included): the table holds exactly their rows. Resume from this offset.
    pub committed_rows: u64,
}

impl fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Range { start, end } = self.rows;
        match self.row {
            Some(row) => write!(f, "row {row} failed in batch {}", self.batch)?,
            None => write!(f, "a row failed in batch {}", self.batch)?,
        }
        write!(
            f,
            " (rows {start}..{end}); {} rows committed before it",
            self.committed_rows
        )
    }
}
