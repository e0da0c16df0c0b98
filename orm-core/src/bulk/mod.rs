//! Bulk insert: rows read in batches, binary COPY on PostgreSQL, multi-row INSERT sized to the
//! backend's bind-parameter limit elsewhere; per-batch or all-or-nothing commits; progress; an
//! exact report of what committed and of the row that failed.

use std::fmt;
use std::time::Duration;

#[cfg(feature = "postgres")]
mod copy;
mod insert;
mod run;

pub use crate::error::BatchFailure;
pub use crate::model::{ConflictClause, ExcludedAssignments};
#[cfg(feature = "postgres")]
pub use copy::{copy_rows, write_binary_copy, CopyRow, CopyTypes};
pub use insert::{
    insert_batch, insert_batch_returning_keys, rows_per_statement, BindRow, KeyedBySql,
    MultiRowInsert, StatementId, StatementKind, POSTGRES_BIND_LIMIT, SQLITE_BIND_LIMIT,
};
pub(crate) use run::run;

/// When rows are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// Each batch in its own transaction: a failure loses only the failing batch, and the
    /// error says how many rows were committed before it. The default.
    #[default]
    PerBatch,
    /// One transaction for everything: a failure commits nothing.
    AllOrNothing,
}

/// What to do with a row whose key is already taken.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Fail the batch with [`Error::UniqueViolation`](crate::Error::UniqueViolation) (inside
    /// [`Error::Bulk`](crate::Error::Bulk)). The default.
    #[default]
    Error,
    /// Skip the row (`ON CONFLICT DO NOTHING`).
    Skip,
    /// Overwrite columns `set` of the existing row with the new row's values when the row
    /// collides on the UNIQUE or primary-key columns `on` (empty: the primary key):
    /// `ON CONFLICT (on…) DO UPDATE SET col = excluded.col, …`.
    Update {
        /// The conflict target: the columns of a UNIQUE constraint or the primary key.
        on: Vec<&'static str>,
        /// The columns to overwrite.
        set: Vec<&'static str>,
    },
}

impl OnConflict {
    /// [`OnConflict::Update`]: on a conflict over `on`, overwrite `set`.
    pub fn update(
        on: impl IntoIterator<Item = &'static str>,
        set: impl IntoIterator<Item = &'static str>,
    ) -> Self {
        Self::Update {
            on: on.into_iter().collect(),
            set: set.into_iter().collect(),
        }
    }
}

/// Progress after a batch, passed to [`BulkOptions::on_progress`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BulkProgress {
    /// Rows written so far (committed, unless the mode is [`CommitMode::AllOrNothing`]).
    pub rows_done: u64,
    /// Total rows, when the iterator knows it (or [`BulkOptions::total`] says).
    pub total: Option<u64>,
    /// Batches written so far.
    pub batches_done: u64,
    /// Time since the bulk insert started.
    pub elapsed: Duration,
}

/// How to run a bulk insert. `BulkOptions::default()` is per-batch commits of
/// [`BulkOptions::DEFAULT_BATCH_SIZE`] rows, failing on conflicts, no keys returned.
pub struct BulkOptions<'a> {
    batch_size: usize,
    commit: CommitMode,
    on_conflict: OnConflict,
    return_keys: bool,
    total: Option<u64>,
    progress: Option<Box<dyn FnMut(BulkProgress) + 'a>>,
}

impl fmt::Debug for BulkOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkOptions")
            .field("batch_size", &self.batch_size)
            .field("commit", &self.commit)
            .field("on_conflict", &self.on_conflict)
            .field("return_keys", &self.return_keys)
            .field("total", &self.total)
            .finish_non_exhaustive()
    }
}

impl Default for BulkOptions<'_> {
    fn default() -> Self {
        Self {
            batch_size: Self::DEFAULT_BATCH_SIZE,
            commit: CommitMode::PerBatch,
            on_conflict: OnConflict::Error,
            return_keys: false,
            total: None,
            progress: None,
        }
    }
}

impl<'a> BulkOptions<'a> {
    /// Rows per batch (one COPY or a few INSERTs, and one commit in [`CommitMode::PerBatch`]).
    pub const DEFAULT_BATCH_SIZE: usize = 50_000;

    /// Rows per batch. Default [`Self::DEFAULT_BATCH_SIZE`]; 0 is taken as 1. One batch of
    /// input rows is held in memory while it is written, on every path, so that a failure can
    /// name its row: a smaller batch uses less memory.
    #[must_use]
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// When to commit. Default [`CommitMode::PerBatch`].
    #[must_use]
    pub fn commit(mut self, mode: CommitMode) -> Self {
        self.commit = mode;
        self
    }

    /// What to do on a key conflict. Default [`OnConflict::Error`]. Anything else uses
    /// multi-row INSERT on PostgreSQL too, since COPY cannot skip or update.
    #[must_use]
    pub fn on_conflict(mut self, action: OnConflict) -> Self {
        self.on_conflict = action;
        self
    }

    /// Return the primary keys of the written rows in [`BulkReport::keys`]. Uses
    /// `INSERT … RETURNING` (COPY cannot return). What is guaranteed is the set: one key per row
    /// written (inserted, or updated by [`OnConflict::Update`]; rows skipped by
    /// [`OnConflict::Skip`] have none). The order is the one the database returns, batch after
    /// batch; neither PostgreSQL nor SQLite documents it as input order, so match keys to rows
    /// by their values (a UNIQUE column), not by position. Default off.
    #[must_use]
    pub fn return_keys(mut self, yes: bool) -> Self {
        self.return_keys = yes;
        self
    }

    /// The number of rows, for progress, when the iterator cannot tell.
    #[must_use]
    pub fn total(mut self, rows: u64) -> Self {
        self.total = Some(rows);
        self
    }

    /// Called after every batch. The library itself prints nothing.
    #[must_use]
    pub fn on_progress(mut self, progress: impl FnMut(BulkProgress) + 'a) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }
}

/// What a bulk insert did.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkReport<K> {
    /// Rows written: inserted, or updated by [`OnConflict::Update`] (rows skipped by
    /// [`OnConflict::Skip`] not counted).
    pub rows: u64,
    /// Rows read from the iterator.
    pub rows_read: u64,
    /// Batches written.
    pub batches: u64,
    /// Wall time.
    pub duration: Duration,
    /// Whether rows went through binary COPY (else multi-row INSERT).
    pub used_copy: bool,
    /// Primary keys of the written rows, when asked for with [`BulkOptions::return_keys`]: one
    /// per row written, batches in input order, within a batch in the order the database
    /// returned them (not documented to be input order).
    pub keys: Vec<K>,
}

impl<K> BulkReport<K> {
    /// Rows read per second of wall time.
    pub fn rows_per_second(&self) -> f64 {
        self.rows_read as f64 / self.duration.as_secs_f64().max(f64::EPSILON)
    }
}
