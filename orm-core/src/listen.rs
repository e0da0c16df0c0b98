//! What a [`Database`](crate::Database) tells others about its writes: after a call that wrote
//! has finished (committed, or ended in an error after a statement may have run), every
//! attached [`WriteListener`] learns which tables it wrote. A query cache hangs its
//! invalidation here, so every write through the database reaches it, whichever API made it.

/// The tables one finished call wrote, handed to [`WriteListener::tables_written`].
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Written<'a> {
    /// Tables written through `orm`'s model operations, each once. A transaction that rolled
    /// back leaves its tables out; writes before it in the same call stay.
    pub tables: &'a [&'static str],
    /// Whether the call may also have written tables `orm` cannot name (`execute`,
    /// `batch_execute`, the raw connection).
    pub unknown: bool,
}

/// Told about writes once they are durable. Attached with
/// [`Database::add_write_listener`](crate::Database::add_write_listener) or
/// [`DatabaseBuilder::write_listener`](crate::DatabaseBuilder::write_listener); shared by
/// every clone, session and pinned handle of the database.
pub trait WriteListener: Send + Sync + 'static {
    /// Called on the calling thread after a call that wrote has given its connection back:
    /// after commit for a transaction, after the statement for an autocommit call, and also
    /// after a call that failed once a statement may have run (a write that may have happened
    /// counts as one). Never called for a call that only read. The call's caller waits for
    /// this to return, so a write is visible to listeners before the write call returns; keep
    /// it short and bounded. The default does nothing.
    fn tables_written(&self, written: Written<'_>) {
        let _ = written;
    }
}
