//! The bulk-insert loop: batches read from the input and written each in its own transaction
//! (a savepoint inside the one transaction of [`CommitMode::AllOrNothing`]), and the search for
//! the row that made a batch fail.

use std::borrow::Borrow;
use std::marker::PhantomData;
use std::ops::Range;
use std::rc::Rc;
use std::time::{Duration, Instant};

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, QueryResult};

use super::{BatchFailure, BulkOptions, BulkProgress, BulkReport, CommitMode, ConflictClause};
use crate::error::{Error, Result};
use crate::meta::Backend;
use crate::model::{Crud, Model};
use crate::values::{CheckValues, RejectedValue};

/// The bulk-insert loop on one connection of `backend`.
pub(crate) fn run<M, C, I>(
    conn: &mut C,
    rows: I,
    options: BulkOptions<'_>,
    backend: Backend,
) -> Result<BulkReport<M::PrimaryKey>>
where
    M: Model + Crud<C>,
    C: Connection,
    I: IntoIterator,
    I::Item: Borrow<M::New>,
{
    let started = Instant::now();
    let conflict = ConflictClause::resolve(&options.on_conflict, M::TABLE)?;
    let writer = Writer {
        copy: backend == Backend::Postgres
            && matches!(conflict, ConflictClause::Error)
            && !options.return_keys,
        return_keys: options.return_keys,
        conflict,
    };
    let rows = rows.into_iter();
    let total = options.total.or_else(|| match rows.size_hint() {
        (low, Some(high)) if low == high => Some(low as u64),
        _ => None,
    });
    let mut load = Load::<M, _> {
        report: BulkReport {
            rows: 0,
            rows_read: 0,
            batches: 0,
            duration: Duration::ZERO,
            used_copy: writer.copy,
            keys: Vec::new(),
        },
        rows,
        writer,
        options,
        total,
        started,
        backend,
    };
    match load.options.commit {
        CommitMode::PerBatch => load.write_batches(conn, true)?,
        CommitMode::AllOrNothing => conn.transaction(|c| load.write_batches(c, false))?,
    }
    let mut report = load.report;
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

/// How every batch of one bulk insert is written.
struct Writer {
    copy: bool,
    return_keys: bool,
    conflict: ConflictClause,
}

impl Writer {
    /// Write `rows` by COPY or multi-row INSERT; returns the rows written and, when asked for,
    /// their keys. `recurring` as in [`Crud::insert_batch`].
    fn write<M, C>(
        &self,
        conn: &mut C,
        rows: &[&M::New],
        recurring: bool,
    ) -> QueryResult<(usize, Vec<M::PrimaryKey>)>
    where
        M: Model + Crud<C>,
    {
        if self.copy {
            return Ok((M::copy_rows(conn, rows.iter().copied())?, Vec::new()));
        }
        if self.return_keys {
            let keys = M::insert_batch_returning_keys(conn, rows, &self.conflict, recurring)?;
            return Ok((keys.len(), keys));
        }
        let written = M::insert_batch(conn, rows, &self.conflict, recurring)?;
        Ok((written, Vec::new()))
    }
}

/// One bulk insert in progress.
struct Load<'a, M: Model, I> {
    rows: I,
    writer: Writer,
    options: BulkOptions<'a>,
    total: Option<u64>,
    started: Instant,
    backend: Backend,
    report: BulkReport<M::PrimaryKey>,
}

impl<M, I> Load<'_, M, I>
where
    M: Model,
    I: Iterator,
    I::Item: Borrow<M::New>,
{
    /// Write every batch. `per_batch`: each batch commits on its own; else all of them are
    /// inside the caller's transaction.
    fn write_batches<C>(&mut self, conn: &mut C, per_batch: bool) -> Result<()>
    where
        M: Crud<C>,
        C: Connection,
    {
        let batch_size = self.options.batch_size;
        if self.writer.copy {
            return self.copy_batches(conn, per_batch);
        }
        // The batch is held whole: the INSERT path needs it as a slice, and finding the row
        // that made a batch fail writes parts of it again.
        let mut buffer: Vec<I::Item> = Vec::new();
        loop {
            buffer.clear();
            // Each row's values are checked as it is read, so that a value the backend would
            // not store exactly fails its batch before the batch is sent. The rest of the
            // batch is still read, so the failure names the same rows as any other.
            let mut rejected = None;
            for item in self.rows.by_ref().take(batch_size) {
                note_rejection(item.borrow(), self.backend, buffer.len(), &mut rejected);
                buffer.push(item);
            }
            if buffer.is_empty() {
                return Ok(());
            }
            let failure = self.failure(buffer.len(), per_batch);
            if let Some((row, value)) = rejected {
                let source = Error::rejected(M::TABLE, self.backend, value);
                return Err(failed(failure, Some(row), source));
            }
            let batch: Vec<&M::New> = buffer.iter().map(Borrow::borrow).collect();
            let recurring = batch.len() == batch_size;
            // Inside `AllOrNothing` this is a savepoint: after a failure the transaction is
            // still usable, so the failing row is looked for with the earlier batches in place.
            let written = conn.transaction(|c| self.writer.write::<M, C>(c, &batch, recurring));
            let (n, keys) = match written {
                Ok(written) => written,
                Err(source) => {
                    let row = failing_row(conn, batch.len(), &source, |c, part| {
                        self.writer.write::<M, C>(c, &batch[part], false).map(drop)
                    });
                    return Err(failed(failure, row, Error::from_model(M::TABLE, source)));
                }
            };
            self.batch_done(n, batch.len(), keys);
        }
    }

    /// Write every batch by binary COPY, streaming each from the input as COPY reads it, so
    /// the server works on a batch while the client is still producing it. Each row is also
    /// kept until the batch is done, for the search of a failing row: the input can be read
    /// only once, and Diesel does not expose the line number PostgreSQL reports for a failed
    /// COPY. Rows are kept in chunks shared with the stream ([`KeepingRows`]), so keeping them
    /// costs neither a copy nor an allocation per row.
    fn copy_batches<C>(&mut self, conn: &mut C, per_batch: bool) -> Result<()>
    where
        M: Crud<C>,
        C: Connection,
    {
        let batch_size = self.options.batch_size;
        let backend = self.backend;
        let mut kept: Vec<Rc<Vec<I::Item>>> = Vec::new();
        while let Some(head) = self.rows.next() {
            kept.clear();
            // A value PostgreSQL would refuse is found as the row streams by; the batch is then
            // rolled back (PostgreSQL refuses it too) and reported with the value's row.
            let mut rejected = None;
            let rows = &mut self.rows;
            let written = conn.transaction(|c| {
                let stream = KeepingRows::<_, M::New>::new(
                    std::iter::once(head).chain(rows.by_ref().take(batch_size - 1)),
                    &mut kept,
                    backend,
                    &mut rejected,
                );
                let n = M::copy_rows(c, stream)?;
                match rejected {
                    Some(_) => Err(DieselError::RollbackTransaction),
                    None => Ok(n),
                }
            });
            let mut kept_rows: usize = kept.iter().map(|chunk| chunk.len()).sum();
            if written.is_err() {
                // COPY may stop reading mid-batch: the rest of the batch belongs to it.
                let rest: Vec<I::Item> = self.rows.by_ref().take(batch_size - kept_rows).collect();
                for (i, item) in rest.iter().enumerate() {
                    note_rejection(item.borrow(), backend, kept_rows + i, &mut rejected);
                }
                kept_rows += rest.len();
                kept.push(Rc::new(rest));
            }
            let failure = self.failure(kept_rows, per_batch);
            if let Some((row, value)) = rejected {
                let source = Error::rejected(M::TABLE, backend, value);
                return Err(failed(failure, Some(row), source));
            }
            let n = match written {
                Ok(n) => n,
                Err(source) => {
                    let batch: Vec<&M::New> = kept
                        .iter()
                        .flat_map(|chunk| chunk.iter())
                        .map(Borrow::borrow)
                        .collect();
                    let row = failing_row(conn, batch.len(), &source, |c, part| {
                        self.writer.write::<M, C>(c, &batch[part], false).map(drop)
                    });
                    return Err(failed(failure, row, Error::from_model(M::TABLE, source)));
                }
            };
            self.batch_done(n, kept_rows, Vec::new());
        }
        Ok(())
    }

    /// What a failure of the batch of `rows` rows now being written reports, once its row is
    /// known: every earlier batch committed on its own (`per_batch`), or nothing did.
    fn failure(&self, rows: usize, per_batch: bool) -> BatchFailure {
        let first = self.report.rows_read;
        BatchFailure {
            batch: self.report.batches,
            rows: first..first + rows as u64,
            row: None,
            committed_rows: if per_batch { first } else { 0 },
        }
    }

    /// Counts a written batch of `read` rows (`written` inserted) and reports progress.
    fn batch_done(&mut self, written: usize, read: usize, keys: Vec<M::PrimaryKey>) {
        self.report.rows += written as u64;
        self.report.rows_read += read as u64;
        self.report.batches += 1;
        self.report.keys.extend(keys);
        if let Some(progress) = self.options.progress.as_mut() {
            progress(BulkProgress {
                rows_done: self.report.rows_read,
                total: self.total,
                batches_done: self.report.batches,
                elapsed: self.started.elapsed(),
            });
        }
    }
}

/// Remembers the first row of a batch, at `index`, with a value `backend` would not store
/// exactly.
fn note_rejection<New: CheckValues>(
    row: &New,
    backend: Backend,
    index: usize,
    rejected: &mut Option<(usize, RejectedValue)>,
) {
    if rejected.is_none() {
        if let Err(value) = row.check_values(backend) {
            *rejected = Some((index, value));
        }
    }
}

/// The bulk error for a batch that failed on its row `row` (an offset in the batch) with
/// `source`.
fn failed(failure: BatchFailure, row: Option<usize>, source: Error) -> Error {
    Error::Bulk {
        failure: BatchFailure {
            row: row.map(|i| failure.rows.start + i as u64),
            ..failure
        },
        source: Box::new(source),
    }
}

/// Rows read from the input at a time by [`KeepingRows`]: one allocation (and one reference
/// count) per this many rows, while COPY still gets rows as they are read.
const KEEP_CHUNK: usize = 256;

/// The rows of one COPY batch, streamed from `source` and kept at once: read in chunks of
/// [`KEEP_CHUNK`] rows, each chunk shared by the stream and by `kept` (the batch, for the
/// search of a failing row). Each row's values are checked as its chunk is read; the first
/// that the backend would refuse is noted in `rejected` with its offset in the batch.
struct KeepingRows<'k, S: Iterator, N> {
    source: S,
    kept: &'k mut Vec<Rc<Vec<S::Item>>>,
    backend: Backend,
    rejected: &'k mut Option<(usize, RejectedValue)>,
    /// The chunk being streamed, and the offset of the next row to stream in it.
    chunk: Rc<Vec<S::Item>>,
    next: usize,
    /// Rows of the batch read so far.
    read: usize,
    row_type: PhantomData<fn() -> N>,
}

impl<'k, S, N> KeepingRows<'k, S, N>
where
    S: Iterator,
    S::Item: Borrow<N>,
    N: CheckValues,
{
    fn new(
        source: S,
        kept: &'k mut Vec<Rc<Vec<S::Item>>>,
        backend: Backend,
        rejected: &'k mut Option<(usize, RejectedValue)>,
    ) -> Self {
        Self {
            source,
            kept,
            backend,
            rejected,
            chunk: Rc::new(Vec::new()),
            next: 0,
            read: 0,
            row_type: PhantomData,
        }
    }
}

impl<S, N> Iterator for KeepingRows<'_, S, N>
where
    S: Iterator,
    S::Item: Borrow<N>,
    N: CheckValues,
{
    type Item = KeptRow<S::Item, N>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next == self.chunk.len() {
            let chunk: Vec<S::Item> = self.source.by_ref().take(KEEP_CHUNK).collect();
            if chunk.is_empty() {
                return None;
            }
            for (i, item) in chunk.iter().enumerate() {
                note_rejection(item.borrow(), self.backend, self.read + i, self.rejected);
            }
            self.read += chunk.len();
            self.chunk = Rc::new(chunk);
            self.kept.push(Rc::clone(&self.chunk));
            self.next = 0;
        }
        let row = KeptRow {
            chunk: Rc::clone(&self.chunk),
            index: self.next,
            row_type: PhantomData,
        };
        self.next += 1;
        Some(row)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let buffered = self.chunk.len() - self.next;
        let (low, high) = self.source.size_hint();
        (
            low.saturating_add(buffered),
            high.and_then(|h| h.checked_add(buffered)),
        )
    }
}

/// One row of a kept chunk, as the COPY stream hands it to the encoder through `Borrow<N>`.
/// (`N` is a parameter so that this impl cannot overlap `Borrow<T> for T`.)
struct KeptRow<T, N> {
    chunk: Rc<Vec<T>>,
    index: usize,
    row_type: PhantomData<fn() -> N>,
}

impl<T: Borrow<N>, N> Borrow<N> for KeptRow<T, N> {
    fn borrow(&self) -> &N {
        self.chunk[self.index].borrow()
    }
}

/// The offset in a failed batch of `rows` rows of the row that made it fail with `error`: the
/// first row the database refuses once the rows before it are written.
///
/// Found by bisection with `write`, which writes a range of the batch's rows the way the batch
/// was written. Each range goes in a savepoint: one that fails is rolled back and its first
/// half tried next; one that succeeds stays, so every range is tried with the rows before it in
/// place, as in the batch. About log2(rows) statements writing about `rows` rows in all, run
/// only after a failure. Everything happens inside a transaction (or a savepoint, inside
/// `AllOrNothing`) that is always rolled back, so nothing is committed here.
///
/// `None` when `error` is not one a row can cause, or when the failure does not recur. A
/// statement-level error that looks like a row's (a table dropped meanwhile) is found at the
/// batch's first row.
fn failing_row<C: Connection>(
    conn: &mut C,
    rows: usize,
    error: &DieselError,
    mut write: impl FnMut(&mut C, Range<usize>) -> QueryResult<()>,
) -> Option<usize> {
    if !caused_by_a_row(error) {
        return None;
    }
    let mut found = None;
    // The closure always fails, so that the transaction is rolled back; its error is not the
    // caller's concern, who reports the batch's own.
    let _ = conn.transaction::<(), _, _>(|conn| {
        // Rows `..good` are written; writing rows `..bad` fails.
        let (mut good, mut bad) = (0, rows);
        while good < bad {
            let end = good + (bad - good).div_ceil(2);
            match conn.transaction(|c| write(c, good..end)) {
                Ok(()) => good = end,
                Err(e) if same_kind(&e, error) => {
                    if end - good == 1 {
                        found = Some(good);
                        break;
                    }
                    bad = end;
                }
                // Something else went wrong: no answer rather than a wrong one.
                Err(_) => break,
            }
        }
        Err(DieselError::RollbackTransaction)
    });
    found
}

/// Whether writing some row, rather than the connection or the transaction, can cause `error`:
/// a constraint violation, a value the database refuses, a value that cannot be encoded.
fn caused_by_a_row(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(kind, _) => !matches!(
            kind,
            DatabaseErrorKind::ClosedConnection
                | DatabaseErrorKind::SerializationFailure
                | DatabaseErrorKind::ReadOnlyTransaction
        ),
        DieselError::SerializationError(_) => true,
        _ => false,
    }
}

/// Whether a failure while bisecting is the batch's failure again.
fn same_kind(probe: &DieselError, batch: &DieselError) -> bool {
    match (probe, batch) {
        (DieselError::DatabaseError(a, _), DieselError::DatabaseError(b, _)) => a == b,
        (DieselError::SerializationError(_), DieselError::SerializationError(_)) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::RejectReason;

    /// A row whose value PostgreSQL refuses when it is negative.
    struct Row(i64);

    impl CheckValues for Row {
        fn check_values(&self, _: Backend) -> std::result::Result<(), RejectedValue> {
            match self.0 {
                v if v < 0 => Err(RejectedValue {
                    column: "v",
                    reason: RejectReason::NulInText,
                }),
                _ => Ok(()),
            }
        }
    }

    #[test]
    fn keeping_rows_streams_every_row_in_order_and_keeps_them_in_chunks() {
        let rows = 2 * KEEP_CHUNK + 3;
        let mut kept = Vec::new();
        let mut rejected = None;
        let stream = KeepingRows::<_, Row>::new(
            (0..rows as i64).map(Row),
            &mut kept,
            Backend::Postgres,
            &mut rejected,
        );
        let streamed: Vec<i64> = stream.map(|r| Borrow::<Row>::borrow(&r).0).collect();
        assert_eq!(streamed, (0..rows as i64).collect::<Vec<_>>());
        assert!(rejected.is_none());
        let sizes: Vec<usize> = kept.iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [KEEP_CHUNK, KEEP_CHUNK, 3]);
        let kept_values: Vec<i64> = kept.iter().flat_map(|c| c.iter()).map(|r| r.0).collect();
        assert_eq!(kept_values, streamed);
    }

    #[test]
    fn keeping_rows_notes_the_first_refused_row_by_its_offset_in_the_batch() {
        let rows = || (0..600).map(|i| Row(if i == 300 || i == 500 { -1 } else { i }));
        // COPY may stop early: only the rows read so far are kept and checked.
        let (mut kept, mut rejected) = (Vec::new(), None);
        let stream =
            KeepingRows::<_, Row>::new(rows(), &mut kept, Backend::Postgres, &mut rejected);
        assert_eq!(stream.take(200).count(), 200);
        assert!(rejected.is_none(), "row 300 is not read yet");
        assert_eq!(kept.iter().map(|c| c.len()).sum::<usize>(), KEEP_CHUNK);

        let (mut kept, mut rejected) = (Vec::new(), None);
        let stream =
            KeepingRows::<_, Row>::new(rows(), &mut kept, Backend::Postgres, &mut rejected);
        assert_eq!(stream.count(), 600);
        assert_eq!(rejected.map(|(row, _)| row), Some(300));
    }
}
