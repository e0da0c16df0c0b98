//! Bulk insert: rows streamed in batches, binary COPY on PostgreSQL, multi-row INSERT sized to
//! the backend's bind-parameter limit elsewhere; per-batch or all-or-nothing commits; progress;
//! an exact report of what committed.

use std::borrow::Borrow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::time::{Duration, Instant};

use diesel::backend::Backend as DieselBackend;
#[cfg(feature = "postgres")]
use diesel::pg::{Pg, PgMetadataLookup, PgTypeMetadata};
#[cfg(feature = "postgres")]
use diesel::query_builder::bind_collector::RawBytesBindCollector;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::{Connection, QueryResult};

use crate::ddl::quote_ident;
use crate::error::{Error, Result};
use crate::meta::TableMeta;
pub use crate::model::{ConflictClause, ExcludedAssignments};
use crate::model::{Crud, Model};

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
    /// Fail the batch with [`Error::UniqueViolation`] (inside [`Error::Bulk`]). The default.
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

    /// Rows per batch. Default [`Self::DEFAULT_BATCH_SIZE`]; 0 is taken as 1.
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

    /// Return the primary keys of the written rows in [`BulkReport::keys`], in the order the
    /// database returns them, which for a multi-row INSERT is input order. Uses
    /// `INSERT … RETURNING` (COPY cannot return). With [`OnConflict::Skip`] skipped rows have no
    /// key, so keys no longer line up with input rows; with [`OnConflict::Update`] updated rows
    /// return theirs. Default off.
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
    /// Primary keys of the inserted rows in input order, when asked for.
    pub keys: Vec<K>,
}

impl<K> BulkReport<K> {
    /// Rows read per second of wall time.
    pub fn rows_per_second(&self) -> f64 {
        self.rows_read as f64 / self.duration.as_secs_f64().max(f64::EPSILON)
    }
}

/// The failure of one batch, as reported in [`Error::Bulk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchFailure {
    /// Index of the failing batch, from 0.
    pub batch: u64,
    /// Offsets (from 0, in input order) of the rows in the failing batch.
    pub rows: Range<u64>,
    /// Input rows whose batches were committed before the failure (rows skipped as conflicts
    /// included): the table holds exactly their rows. Resume from this offset.
    pub committed_rows: u64,
}

impl fmt::Display for BatchFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "batch {} (rows {}..{}) failed; {} rows committed before it",
            self.batch, self.rows.start, self.rows.end, self.committed_rows
        )
    }
}

impl ConflictClause {
    fn resolve(action: &OnConflict, table: &TableMeta) -> Result<Self> {
        Ok(match action {
            OnConflict::Error => Self::Error,
            OnConflict::Skip => Self::Skip,
            OnConflict::Update { on, set } => {
                if set.is_empty() {
                    return Err(model_error(
                        table,
                        "`OnConflict::Update` needs at least one column to set".into(),
                    ));
                }
                let on: Vec<&str> = if on.is_empty() {
                    table.primary_key.to_vec()
                } else {
                    on.clone()
                };
                let column = |name: &str| {
                    table.column(name).map(|c| quote_ident(c.name)).ok_or_else(|| {
                        model_error(table, format!("`OnConflict::Update` names `{name}`, which is not a column of `{}`", table.name))
                    })
                };
                let target = on.iter().map(|n| column(n)).collect::<Result<Vec<_>>>()?;
                let mut assignments = Vec::new();
                for name in set {
                    let c = column(name)?;
                    if on.contains(name) {
                        return Err(model_error(table, format!("`OnConflict::Update` cannot set `{name}`, a column of the conflict target")));
                    }
                    if table.primary_key.contains(name)
                        || table.column(name).is_some_and(|c| c.generated)
                    {
                        return Err(model_error(
                            table,
                            format!(
                                "`OnConflict::Update` cannot set `{name}`: it is the row's key"
                            ),
                        ));
                    }
                    assignments.push(format!("{c} = excluded.{c}"));
                }
                Self::Update {
                    target: format!("({})", target.join(", ")),
                    set: ExcludedAssignments(assignments.join(", ")),
                }
            }
        })
    }
}

fn model_error(table: &TableMeta, message: String) -> Error {
    Error::Model {
        model: table.model,
        message,
    }
}

/// Most bind parameters PostgreSQL accepts in one statement.
#[doc(hidden)]
pub const POSTGRES_BIND_LIMIT: usize = 65_535;
/// Most bind parameters SQLite (as bundled) accepts in one statement.
#[doc(hidden)]
pub const SQLITE_BIND_LIMIT: usize = 32_766;

#[cfg(feature = "postgres")]
/// Encodes one insert row's fields for binary COPY, in column order. Generated by
/// `#[derive(Model)]` for the insert struct.
#[doc(hidden)]
pub trait CopyRow {
    /// Push each field, encoded as PostgreSQL sends it in binary form, onto `out`.
    fn push_copy_fields(
        &self,
        out: &mut RawBytesBindCollector<Pg>,
        lookup: &mut (dyn PgMetadataLookup + 'static),
    ) -> QueryResult<()>;
}

#[cfg(feature = "postgres")]
/// Binary COPY needs the bytes of each value, never the OID of a type: built-in and `orm` types
/// never ask, and a custom type that does gets OID 0.
struct NoTypeLookup;

#[cfg(feature = "postgres")]
impl PgMetadataLookup for NoTypeLookup {
    fn lookup_type(&mut self, _type_name: &str, _schema: Option<&str>) -> PgTypeMetadata {
        PgTypeMetadata::new(0, 0)
    }
}

#[cfg(feature = "postgres")]
/// Bytes gathered before they are handed to libpq: large enough that the server gets few
/// messages, small enough that it starts on the batch while the client is still encoding it.
const COPY_CHUNK: usize = 64 * 1024;

#[cfg(feature = "postgres")]
/// Write `rows` to `sink` in PostgreSQL's binary COPY format: the signature, each row as its
/// field count and length-prefixed fields, the trailer. Rows are pulled from the iterator as
/// the data goes out, so a batch is never held whole in memory.
#[doc(hidden)]
pub fn write_binary_copy<Row, R>(sink: &mut dyn std::io::Write, rows: &mut R) -> QueryResult<()>
where
    Row: CopyRow,
    R: Iterator,
    R::Item: Borrow<Row>,
{
    let io = |e: std::io::Error| diesel::result::Error::SerializationError(Box::new(e));
    let too_large = |what: &str| {
        diesel::result::Error::QueryBuilderError(format!("{what} too large for binary COPY").into())
    };
    let mut buffer = Vec::with_capacity(COPY_CHUNK + 8 * 1024);
    buffer.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    buffer.extend_from_slice(&0i32.to_be_bytes()); // flags
    buffer.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    let mut fields = RawBytesBindCollector::<Pg>::new();
    let mut lookup = NoTypeLookup;
    for row in rows {
        fields.binds.clear();
        fields.metadata.clear();
        row.borrow().push_copy_fields(&mut fields, &mut lookup)?;
        let count = i16::try_from(fields.binds.len()).map_err(|_| too_large("row"))?;
        buffer.extend_from_slice(&count.to_be_bytes());
        for field in &fields.binds {
            match field {
                Some(bytes) => {
                    let len = i32::try_from(bytes.len()).map_err(|_| too_large("value"))?;
                    buffer.extend_from_slice(&len.to_be_bytes());
                    buffer.extend_from_slice(bytes);
                }
                None => buffer.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        if buffer.len() >= COPY_CHUNK {
            sink.write_all(&buffer).map_err(io)?;
            buffer.clear();
        }
    }
    buffer.extend_from_slice(&(-1i16).to_be_bytes());
    sink.write_all(&buffer).map_err(io)
}

/// Writes the bind parameters of one insert row, in column order: `$1, $2, …`. Generated by
/// `#[derive(Model)]` for the insert struct.
#[doc(hidden)]
pub trait BindRow<DB: DieselBackend> {
    /// Push this row's values as bind parameters, separated by commas.
    fn walk_values<'b>(&'b self, out: AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

/// One multi-row `INSERT INTO t (cols) VALUES (…), (…) [ON CONFLICT …] [RETURNING key]`.
///
/// Diesel never reuses the prepared statement of a multi-row INSERT built from a `Vec`, since
/// its SQL depends on the row count. Here `Id` names what fixes the SQL (the model, the rows per
/// statement, the clauses): a full-size statement is prepared once per connection and reused.
/// The shorter statement that ends a full batch recurs in every batch, so it is cached by its
/// SQL text; the one that ends the input, and upserts, whose SET list is chosen at run time,
/// are prepared on their own.
#[doc(hidden)]
pub struct MultiRowInsert<'r, From, Row, Id, ReturnType = ()> {
    from: From,
    columns: &'static [&'static str],
    rows: &'r [&'r Row],
    conflict: &'r ConflictClause,
    reusable: bool,
    returning: &'static [&'static str],
    id: PhantomData<(Id, ReturnType)>,
}

impl<'r, From, Row, Id> MultiRowInsert<'r, From, Row, Id> {
    /// `rows` into the table `from` renders, writing `columns`; `reusable` when the prepared
    /// statement may be kept for later statements of the same SQL.
    pub fn new(
        from: From,
        columns: &'static [&'static str],
        rows: &'r [&'r Row],
        conflict: &'r ConflictClause,
        reusable: bool,
    ) -> Self {
        let reusable = reusable && !matches!(conflict, ConflictClause::Update { .. });
        Self {
            from,
            columns,
            rows,
            conflict,
            reusable,
            returning: &[],
            id: PhantomData,
        }
    }

    /// Return the key `columns`, of SQL type `ST`.
    pub fn returning<ST>(
        self,
        columns: &'static [&'static str],
    ) -> MultiRowInsert<'r, From, Row, Id, ST> {
        MultiRowInsert {
            from: self.from,
            columns: self.columns,
            rows: self.rows,
            conflict: self.conflict,
            reusable: self.reusable,
            returning: columns,
            id: PhantomData,
        }
    }
}

impl<From, Row, Id: StatementId, ST> QueryId for MultiRowInsert<'_, From, Row, Id, ST> {
    type QueryId = Id;
    const HAS_STATIC_QUERY_ID: bool = Id::FIXES_SQL;
}

/// What a bulk statement's `Id` says about its SQL.
#[doc(hidden)]
pub trait StatementId: 'static {
    /// Whether every statement with this `Id` has the same SQL, so it may be cached by type.
    const FIXES_SQL: bool;
}

/// (model, rows per statement, kind): fixes the SQL of a full-size statement.
impl<M: 'static, const ROWS: usize, const KIND: u8> StatementId
    for (M, [(); ROWS], StatementKind<KIND>)
{
    const FIXES_SQL: bool = true;
}

/// A statement with some other row count: Diesel caches it by its SQL text, when allowed to.
#[doc(hidden)]
#[derive(Debug)]
pub struct KeyedBySql;

impl StatementId for KeyedBySql {
    const FIXES_SQL: bool = false;
}

impl<From, Row, Id, ST, DB> QueryFragment<DB> for MultiRowInsert<'_, From, Row, Id, ST>
where
    DB: DieselBackend,
    From: QueryFragment<DB>,
    Row: BindRow<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.reusable {
            out.unsafe_to_cache_prepared();
        }
        if self.rows.is_empty() {
            return Err(diesel::result::Error::QueryBuilderError(
                "a multi-row INSERT needs at least one row".into(),
            ));
        }
        out.push_sql("INSERT INTO ");
        self.from.walk_ast(out.reborrow())?;
        for (i, column) in self.columns.iter().enumerate() {
            out.push_sql(if i == 0 { " (" } else { ", " });
            out.push_identifier(column)?;
        }
        out.push_sql(") VALUES ");
        for (i, row) in self.rows.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            row.walk_values(out.reborrow())?;
            out.push_sql(")");
        }
        match self.conflict {
            ConflictClause::Error => {}
            ConflictClause::Skip => out.push_sql(" ON CONFLICT DO NOTHING"),
            ConflictClause::Update { target, set } => {
                out.push_sql(" ON CONFLICT ");
                out.push_sql(target);
                out.push_sql(" DO UPDATE SET ");
                out.push_sql(&set.0);
            }
        }
        for (i, column) in self.returning.iter().enumerate() {
            out.push_sql(if i == 0 { " RETURNING " } else { ", " });
            out.push_identifier(column)?;
        }
        Ok(())
    }
}

impl<From, Row, Id, ST> diesel::query_builder::Query for MultiRowInsert<'_, From, Row, Id, ST>
where
    ST: diesel::sql_types::SqlType + diesel::query_builder::QueryId,
{
    type SqlType = ST;
}

impl<From, Row, Id, ST, Conn> diesel::RunQueryDsl<Conn> for MultiRowInsert<'_, From, Row, Id, ST> {}

/// The kind of a bulk statement (plain, skip, returning, returning + skip), part of its `Id`.
#[doc(hidden)]
#[derive(Debug)]
pub struct StatementKind<const KIND: u8>;

/// Rows per multi-row INSERT for a table of `columns` columns under `bind_limit`.
#[doc(hidden)]
pub const fn rows_per_statement(bind_limit: usize, columns: usize) -> usize {
    let columns = if columns == 0 { 1 } else { columns };
    let rows = bind_limit / columns;
    if rows == 0 {
        1
    } else {
        rows
    }
}

/// The bulk-insert loop on one connection.
pub(crate) fn run<M, C, I>(
    conn: &mut C,
    rows: I,
    mut options: BulkOptions<'_>,
    copy: bool,
) -> Result<BulkReport<M::PrimaryKey>>
where
    M: Model + Crud<C>,
    C: Connection,
    I: IntoIterator,
    I::Item: Borrow<M::New>,
{
    let started = Instant::now();
    let conflict = ConflictClause::resolve(&options.on_conflict, M::TABLE)?;
    let copy = copy && matches!(conflict, ConflictClause::Error) && !options.return_keys;
    let mut rows = rows.into_iter().peekable();
    let total = options.total.or_else(|| match rows.size_hint() {
        (low, Some(high)) if low == high => Some(low as u64),
        _ => None,
    });
    let batch_size = options.batch_size;
    let mut report = BulkReport {
        rows: 0,
        rows_read: 0,
        batches: 0,
        duration: Duration::ZERO,
        used_copy: copy,
        keys: Vec::new(),
    };
    // The INSERT path needs a batch as a slice; COPY streams it straight from the iterator.
    let mut buffer: Vec<I::Item> = Vec::new();
    let mut committed = 0u64;

    let mut write_batches =
        |conn: &mut C, per_batch_tx: bool, report: &mut BulkReport<M::PrimaryKey>| -> Result<()> {
            while rows.peek().is_some() {
                let first = report.rows_read;
                let read = Cell::new(0u64);
                let mut write = |conn: &mut C| -> QueryResult<(usize, Vec<M::PrimaryKey>)> {
                    if copy {
                        let batch = rows
                            .by_ref()
                            .take(batch_size)
                            .inspect(|_| read.set(read.get() + 1));
                        return Ok((M::copy_rows(conn, batch)?, Vec::new()));
                    }
                    buffer.clear();
                    buffer.extend(rows.by_ref().take(batch_size));
                    read.set(buffer.len() as u64);
                    let batch: Vec<&M::New> = buffer.iter().map(Borrow::borrow).collect();
                    let recurring = batch.len() == batch_size;
                    if options.return_keys {
                        let keys =
                            M::insert_batch_returning_keys(conn, &batch, &conflict, recurring)?;
                        Ok((keys.len(), keys))
                    } else {
                        Ok((
                            M::insert_batch(conn, &batch, &conflict, recurring)?,
                            Vec::new(),
                        ))
                    }
                };
                let written = if per_batch_tx {
                    conn.transaction(write)
                } else {
                    write(conn)
                };
                if written.is_err() && copy {
                    // COPY may stop reading mid-batch: count the batch's remaining rows, so the
                    // reported range is the whole batch, as on the INSERT path.
                    let unread = (batch_size as u64).saturating_sub(read.get());
                    read.set(read.get() + rows.by_ref().take(unread as usize).count() as u64);
                }
                let (n, keys) = written.map_err(|source| Error::Bulk {
                    failure: BatchFailure {
                        batch: report.batches,
                        rows: first..first + read.get(),
                        committed_rows: if per_batch_tx { committed } else { 0 },
                    },
                    source: Box::new(Error::from_model(M::TABLE, source)),
                })?;
                report.rows += n as u64;
                report.rows_read += read.get();
                report.batches += 1;
                report.keys.extend(keys);
                if per_batch_tx {
                    committed = report.rows_read;
                }
                if let Some(progress) = options.progress.as_mut() {
                    progress(BulkProgress {
                        rows_done: report.rows_read,
                        total,
                        batches_done: report.batches,
                        elapsed: started.elapsed(),
                    });
                }
            }
            Ok(())
        };

    match options.commit {
        CommitMode::PerBatch => write_batches(conn, true, &mut report)?,
        CommitMode::AllOrNothing => {
            conn.transaction(|c| write_batches(c, false, &mut report))?;
        }
    }
    report.duration = started.elapsed();
    tracing::debug!(
        table = M::TABLE.name,
        rows = report.rows,
        batches = report.batches,
        copy = report.used_copy,
        "bulk insert done"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_size_follows_the_bind_limit() {
        assert_eq!(rows_per_statement(65_535, 5), 13_107);
        assert_eq!(rows_per_statement(32_766, 5), 6_553);
        assert_eq!(rows_per_statement(10, 100), 1);
    }
}
