//! Opening a PostgreSQL connection: finding its socket, proving whether it reaches the server
//! directly, and choosing named or unnamed prepared statements from that.
//!
//! Diesel names its prepared statements `__diesel_stmt_N` with a per-connection counter. Behind
//! a transaction pooler (PgBouncer before 1.21) consecutive statements of one client can run on
//! different server connections, and several clients share one server connection, so a
//! statement name prepared by one client can name another client's statement there: calls
//! fail (`prepared statement … does not exist`, `… already exists`) or, worse, return another
//! query's rows. Names cannot be made unique without forking Diesel, so named statements are
//! used only where they are safe: on a connection shown to reach PostgreSQL itself.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use diesel::connection::CacheSize;
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::sql_types::{Integer, Nullable, Text};
use diesel::{Connection, RunQueryDsl};

use super::deadline::{Liveness, Watch};
use super::socket::{self, ServerView, Socket};

/// Connects to one PostgreSQL server (a node): the URL's ports, the server's liveness and the
/// statement mode last announced.
pub(crate) struct Opener {
    /// The URL shown in logs (password redacted).
    pub(crate) redacted: String,
    /// The TCP ports the URL connects to: a new socket to another port is not this one's.
    ports: Vec<u16>,
    /// Serialises this process's connects to the same ports, so the socket that appears
    /// during a connect is that connect's (see [`Opener::open`]).
    lock: Arc<Mutex<()>>,
    pub(crate) liveness: Arc<Liveness>,
    /// `PoolConfig::prepared_statements`: `None` decides per connection.
    named: Option<bool>,
    /// The mode announced in the log: 0 none yet, 1 named, 2 unnamed, 3 mixed; 3 from the
    /// start for an opener that says nothing.
    announced: AtomicU8,
    /// Whether a connection whose socket could not be found was logged (once per node).
    unbounded: AtomicBool,
}

impl Opener {
    pub(crate) fn new(redacted: String, ports: Vec<u16>, named: Option<bool>) -> Self {
        Self {
            redacted,
            lock: connect_lock(&ports),
            ports,
            liveness: Liveness::new(),
            named,
            announced: AtomicU8::new(0),
            unbounded: AtomicBool::new(false),
        }
    }

    /// This opener, announcing nothing (the replica monitor's, whose statements are its own).
    pub(crate) fn quiet(self) -> Self {
        self.announced.store(3, Ordering::Relaxed);
        self
    }

    /// Open a connection with `connect`, then find its socket, ask the server how it sees
    /// the connection (within `deadline`, kept by the client) and set the statement cache.
    ///
    /// The socket is the one TCP socket to one of the URL's ports that this process did not
    /// hold before the connect; connects to those ports are serialised, so no other connect
    /// of `orm`'s can add one meanwhile. If more than one appears anyway (code outside `orm`
    /// connecting to the same port at that instant), the one whose ends the server reports
    /// is taken; otherwise the socket stays unknown and this connection's calls have no
    /// deadline (logged).
    pub(crate) fn open<E>(
        &self,
        deadline: Option<Duration>,
        connect: impl FnOnce() -> Result<PgConnection, E>,
    ) -> Result<(PgConnection, Watch), OpenError<E>> {
        let (mut conn, fresh) = {
            let _serialised = self.lock.lock().unwrap_or_else(|e| e.into_inner());
            let before = if self.ports.is_empty() {
                HashSet::new()
            } else {
                socket::open_sockets()
            };
            let conn = connect().map_err(OpenError::Connect)?;
            let fresh: Vec<Socket> = if self.ports.is_empty() {
                Vec::new()
            } else {
                socket::new_tcp_sockets(&before)
                    .into_iter()
                    .filter(|s| self.ports.contains(&s.remote.port()))
                    .collect()
            };
            (conn, fresh)
        };
        self.liveness.alive_now();
        // The question below must not be a named statement: behind a pooler it would be the
        // very hazard this avoids.
        conn.set_prepared_statement_cache_size(CacheSize::Disabled);
        let only = (fresh.len() == 1).then(|| fresh[0]);
        let asked = Watch::new(only, Arc::clone(&self.liveness));
        let (view, late) = match deadline {
            Some(d) => asked.call(d, true, || server_view(&mut conn)),
            None => (server_view(&mut conn), false),
        };
        drop(asked);
        if late {
            return Err(OpenError::Deadline(deadline.unwrap_or_default()));
        }
        let view = view.map_err(OpenError::Setup)?;
        let direct = socket::direct(&fresh, view);
        let socket = direct.or(only);
        if socket.is_none()
            && !self.ports.is_empty()
            && !self.unbounded.swap(true, Ordering::Relaxed)
        {
            tracing::warn!(
                url = %self.redacted,
                new_sockets = fresh.len(),
                "could not tell a connection's socket apart (logged once per server): calls on \
                 such connections have no client-side deadline"
            );
        }
        let named = self.named.unwrap_or(direct.is_some());
        if named {
            conn.set_prepared_statement_cache_size(CacheSize::Unbounded);
        }
        self.announce(named, direct.is_some());
        Ok((conn, Watch::new(socket, Arc::clone(&self.liveness))))
    }

    /// Say once per node (and again if it changes) which statements its connections use.
    fn announce(&self, named: bool, direct: bool) {
        let mode = if named { 1 } else { 2 };
        let before = self.announced.load(Ordering::Relaxed);
        if before == mode || before == 3 {
            return;
        }
        let now = if before == 0 { mode } else { 3 };
        if self
            .announced
            .compare_exchange(before, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let why = match (self.named, direct) {
            (Some(_), _) => "set by PoolConfig::prepared_statements",
            (None, true) => "the connection reaches PostgreSQL directly",
            (None, false) => {
                "the connection was not shown to reach PostgreSQL directly (a pooler, a proxy, \
                 NAT or a Unix socket): named statements could run another client's statement"
            }
        };
        tracing::info!(
            url = %self.redacted,
            statements = if named { "named (prepared once per connection)" } else { "unnamed" },
            mixed = now == 3,
            "{why}"
        );
    }
}

/// Why [`Opener::open`] failed.
pub(crate) enum OpenError<E> {
    /// `connect` failed.
    Connect(E),
    /// The server's answer about the connection failed.
    Setup(diesel::result::Error),
    /// The server did not answer within the deadline.
    Deadline(Duration),
}

/// How the server sees this connection; `None` over a Unix socket.
fn server_view(conn: &mut PgConnection) -> diesel::QueryResult<Option<ServerView>> {
    type Row = (Option<String>, Option<i32>, Option<String>, Option<i32>);
    let (client, client_port, server, server_port): Row = sql::<(
        Nullable<Text>,
        Nullable<Integer>,
        Nullable<Text>,
        Nullable<Integer>,
    )>(
        "SELECT host(inet_client_addr()), inet_client_port(), host(inet_server_addr()), \
         inet_server_port()",
    )
    .get_result(conn)?;
    Ok(ServerView::parse(
        client.as_deref(),
        client_port,
        server.as_deref(),
        server_port,
    ))
}

/// The lock for connects to `ports`: one per set of ports in the process, so two databases
/// on one server share it.
fn connect_lock(ports: &[u16]) -> Arc<Mutex<()>> {
    type Locks = Mutex<HashMap<Vec<u16>, Arc<Mutex<()>>>>;
    static LOCKS: OnceLock<Locks> = OnceLock::new();
    let mut locks = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    Arc::clone(locks.entry(ports.to_vec()).or_default())
}
