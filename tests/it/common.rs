//! Shared by the integration tests: the databases each test runs its body against.
//!
//! SQLite (in memory) always. PostgreSQL when `ORM_TEST_PG_URL` is set, each test in its own
//! schema so tests never share a table. Under `scripts/test` (`ORM_TEST_REQUIRE_SERVERS=1`) a
//! missing server URL is a failure; under plain `cargo test` it is reported and skipped.
#![allow(dead_code)]

use orm::prelude::*;
use orm::Database;

/// Whether missing servers fail the run (set by `scripts/test`).
pub fn servers_required() -> bool {
    std::env::var("ORM_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// The URL in `var`, or `None` after saying which tests were not run. Fails the test when
/// servers are required.
pub fn server_url(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !servers_required(),
                "{var} is not set, but scripts/test requires every server; {test} cannot run"
            );
            // Written to stderr directly: the test harness captures `eprintln!` of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr().lock(),
                "note: {var} not set: skipped the server part of `{test}` (scripts/test runs it)"
            );
            None
        }
    }
}

/// A PostgreSQL database whose search path is a fresh schema named after `test`.
pub fn postgres(test: &str) -> Option<Database> {
    let url = postgres_url(test)?;
    Some(Database::connect(&url).expect("connect with test schema"))
}

/// The URL of a fresh schema named after `test` on the test server.
pub fn postgres_url(test: &str) -> Option<String> {
    if !cfg!(feature = "postgres") {
        return None; // a SQLite-only build: the PostgreSQL half of each test does not apply
    }
    let url = server_url("ORM_TEST_PG_URL", test)?;
    let schema = format!("orm_t_{test}");
    // One statement: no pool to fill.
    let admin = Database::builder(&url)
        .pool(orm::PoolConfig::none())
        .connect()
        .expect("connect to ORM_TEST_PG_URL");
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
        ))
        .expect("create test schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-csearch_path%3D{schema}"))
}

/// A TCP relay on a free loopback port that forwards to `target` and counts the bytes the
/// server sends back: proof of what crossed the wire.
pub struct ByteCountingProxy {
    /// The port to connect to instead of the target's.
    pub port: u16,
    received: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ByteCountingProxy {
    /// Start relaying to `target` (`host:port`).
    pub fn start(target: &str) -> Self {
        use std::io::copy;
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(AtomicU64::new(0));
        let counter = received.clone();
        let target = target.to_owned();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(&target) else {
                    return;
                };
                let (mut c_read, mut s_write) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || copy(&mut c_read, &mut s_write));
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let (mut s_read, mut c_write) = (server, client);
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        match std::io::Read::read(&mut s_read, &mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                counter.fetch_add(n as u64, Ordering::Relaxed);
                                if std::io::Write::write_all(&mut c_write, &buf[..n]).is_err() {
                                    break;
                                }
                            }
                        }
                    }
                });
            }
        });
        Self { port, received }
    }

    /// Bytes the server has sent so far.
    pub fn received(&self) -> u64 {
        self.received.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The `host:port` of a `postgres://user@host:port/db` URL, and the URL with it replaced by
/// `127.0.0.1:{port}`.
pub fn redirect(url: &str, port: u16) -> (String, String) {
    let (scheme_user, rest) = url.split_once('@').expect("URL with user@host");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let target = rest[..end].to_owned();
    (
        target,
        format!("{scheme_user}@127.0.0.1:{port}{}", &rest[end..]),
    )
}

/// Every database the test body should run against: SQLite in memory, and PostgreSQL when
/// available.
pub fn backends(test: &str) -> Vec<Database> {
    let mut dbs = Vec::new();
    if cfg!(feature = "sqlite") {
        dbs.push(Database::connect("sqlite::memory:").expect("sqlite in memory"));
    }
    dbs.extend(postgres(test));
    dbs
}

/// Held by a test while it stops, pauses or hangs the disposable fault replica (5434): the
/// tests that disturb it share one binary, so they take turns.
pub fn fault_replica_lock() -> std::sync::MutexGuard<'static, ()> {
    static FAULT_REPLICA: std::sync::Mutex<()> = std::sync::Mutex::new(());
    FAULT_REPLICA.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by a test while it stops, hangs or restarts the disposable fault primary (5435).
pub fn fault_primary_lock() -> std::sync::MutexGuard<'static, ()> {
    static FAULT_PRIMARY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    FAULT_PRIMARY.lock().unwrap_or_else(|e| e.into_inner())
}

/// The disposable replica `scripts/services` keeps on 5434 for fault tests: stop and start it
/// with [`FaultReplica::ctl`]; dropped, it is put back (running, replaying), whatever happened.
#[cfg(feature = "postgres")]
pub struct FaultReplica {
    url: String,
    version: String,
    cluster: String,
}

#[cfg(feature = "postgres")]
impl FaultReplica {
    /// The replica at `url`: its cluster from `ORM_TEST_PG_FAULT_REPLICA_CLUSTER`
    /// (`15/faultreplica`), else the server's major version and the name scripts/services gives.
    pub fn new(url: &str) -> Self {
        use diesel::dsl::sql;
        use diesel::sql_types::Integer;
        use diesel::{Connection, RunQueryDsl};
        let spec = std::env::var("ORM_TEST_PG_FAULT_REPLICA_CLUSTER").unwrap_or_else(|_| {
            let mut conn = diesel::PgConnection::establish(url)
                .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
            let major: i32 =
                sql::<Integer>("SELECT current_setting('server_version_num')::int / 10000")
                    .get_result(&mut conn)
                    .unwrap();
            format!("{major}/faultreplica")
        });
        let (version, cluster) = spec.split_once('/').expect("cluster as VERSION/NAME");
        Self {
            url: url.to_owned(),
            version: version.to_owned(),
            cluster: cluster.to_owned(),
        }
    }

    /// `pg_ctlcluster` `action` (`stop` is fast) on the replica's cluster; fails the test if it
    /// fails.
    pub fn ctl(&self, action: &str) {
        let status = self.run_ctl(action);
        assert!(status.success(), "pg_ctlcluster {action}: {status}");
    }

    fn run_ctl(&self, action: &str) -> std::process::ExitStatus {
        let mut cmd = std::process::Command::new("pg_ctlcluster");
        cmd.args([
            "--skip-systemctl-redirect",
            &self.version,
            &self.cluster,
            action,
        ]);
        if action == "stop" {
            cmd.args(["-m", "fast"]);
        }
        cmd.status().expect("run pg_ctlcluster")
    }
}

#[cfg(feature = "postgres")]
impl Drop for FaultReplica {
    fn drop(&mut self) {
        use diesel::dsl::sql;
        use diesel::sql_types::Integer;
        use diesel::{Connection, RunQueryDsl};
        use std::time::{Duration, Instant};
        if diesel::PgConnection::establish(&self.url).is_err() {
            let _ = self.run_ctl("start");
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(mut conn) = diesel::PgConnection::establish(&self.url) {
                let resumed = sql::<Integer>(
                    "SELECT 1 FROM (SELECT pg_wal_replay_resume()) resumed \
                     WHERE NOT pg_is_wal_replay_paused()",
                )
                .get_result::<i32>(&mut conn);
                if resumed.is_ok() {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("could not restore the replica at {}", self.url);
    }
}

/// Captures log events as text, one event a line (its fields as `name=value`), until dropped:
/// those of this thread, and those of background threads started meanwhile by `orm` (they log
/// to the subscriber that was current where they were started). A scoped subscriber: tests
/// running beside it on other threads are not seen.
pub struct Logs {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    _scope: tracing::subscriber::DefaultGuard,
}

impl Logs {
    /// Capture the events `filter` admits.
    pub fn capture(filter: fn(&tracing::Metadata<'_>) -> bool) -> Self {
        Self::start(filter, false)
    }

    /// Capture every event, and the fields of every span too.
    pub fn capture_all() -> Self {
        Self::start(|_| true, true)
    }

    fn start(filter: fn(&tracing::Metadata<'_>) -> bool, spans: bool) -> Self {
        let text = std::sync::Arc::default();
        let capture = Capture {
            text: std::sync::Arc::clone(&text),
            filter,
            spans,
        };
        Self {
            text,
            _scope: tracing::subscriber::set_default(capture),
        }
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.text.lock().unwrap().clone()
    }

    /// The captured lines that mention `needle`.
    pub fn lines_about(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// The subscriber behind [`Logs`].
struct Capture {
    text: std::sync::Arc<std::sync::Mutex<String>>,
    filter: fn(&tracing::Metadata<'_>) -> bool,
    spans: bool,
}

/// Writes the fields it visits into the capture buffer.
struct Fields<'a>(&'a std::sync::Mutex<String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0.lock().unwrap(), "{}={value:?} ", field.name());
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        (self.filter)(metadata)
    }
    fn new_span(&self, span: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        if self.spans {
            span.record(&mut Fields(&self.text));
        }
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        if self.spans {
            values.record(&mut Fields(&self.text));
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        event.record(&mut Fields(&self.text));
        self.text.lock().unwrap().push('\n');
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}
