//! A call's identity, at the bottom of the runtime: whether it reads or writes ([`Intent`]),
//! the server that serves it ([`Node`]), what it did ([`CallInfo`]) and the statement counter
//! each connection carries. It depends on nothing but the metadata, so the pool, the router and
//! the connection context can all name these without naming each other.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::meta::Backend;

/// Whether a call only reads or may write. Reads may later be served by a replica; writes,
/// transactions and raw connections always go to the primary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intent {
    /// The call only reads (`find`, `load`, …).
    Read,
    /// The call may write (`insert`, `execute`, a transaction, a raw connection).
    Write,
}

/// The database server that serves a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Node {
    /// The primary: every write, every transaction, and reads when no replica serves them.
    Primary,
    /// The read replica at this position in the list given to
    /// [`DatabaseBuilder::replica`](crate::DatabaseBuilder::replica), from 0.
    Replica(usize),
}

/// What one call through `orm` is and has done so far: see [`Conn::info`](crate::Conn::info).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallInfo {
    /// Whether the call reads or may write.
    pub intent: Intent,
    /// The node serving it.
    pub node: Node,
    /// The backend of that node.
    pub backend: Backend,
    /// Statements run on the connection during this call, counted by Diesel's per-connection
    /// instrumentation: every statement, whichever API sent it (`BEGIN`, `COMMIT` and
    /// savepoints included).
    pub statements: u64,
    /// Tables written through `orm`'s model operations (insert, update, delete, bulk insert),
    /// each once, in the order first written. Writes of a transaction (or savepoint) whose body
    /// failed, and which was therefore rolled back, are left out.
    pub tables_written: Vec<&'static str>,
    /// Whether the call may also have written tables `orm` cannot name: it ran a Diesel
    /// statement (`execute`), SQL text (`batch_execute`) or used the raw connection.
    pub unknown_writes: bool,
}

/// Counts the statements a connection runs. Installed on each connection as its own Diesel
/// [`Instrumentation`] when the connection is made (never the process-global default), so
/// counting costs one relaxed atomic add per statement and sees every statement, whichever API
/// sent it (`orm`'s methods, Diesel code given the raw connection, `batch_execute`).
#[derive(Debug, Default)]
pub(crate) struct StatementCounter(pub(crate) AtomicU64);

impl StatementCounter {
    /// Statements counted so far.
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
