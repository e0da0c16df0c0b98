//! `pool`: point reads by primary key from 4 threads at once, through `orm`'s pooled
//! `Database` and the baselines a Rust program could use instead.
//!
//! Modes: (a) `orm::Database` and its pool, `db.find::<PoolUser>(id)` from 4 threads sharing one
//! handle; (b) `orm` without a pool (`PoolConfig::none()`: a connection per query); (c) an r2d2
//! pool of 4 hand-written Diesel connections; (d) `pgbench -S -M prepared -c 4 -j 4`, the
//! server's own load generator; (e) the raw `postgres` client, 4 connections, one prepared
//! statement each: the client-side limit; (f) SQLx's `PgPool` (4 connections, its default
//! options) driven by 4 tasks on a 2-worker tokio runtime; (g) `orm` with its reads routed to
//! the streaming replica. Plus `route_ns`: the cost of one routing decision. (b), (g) and
//! `route_ns` need `orm`'s `PoolConfig` and replica router: they build with the feature
//! `pool-config`, and are reported as skipped without it.
//!
//! Every mode but pgbench reads the same table (the users shape of `bulk`, 10,000 rows by
//! default, created once) with the same keys: thread (or task) `t` of round `r` draws them from
//! a xorshift generator seeded from `(r, t)`, whatever the mode. pgbench reads one column of its
//! own `pgbench_accounts` (100,000 rows, in a database of its own), with its own keys. Each round runs every mode once for `--seconds` (the
//! starting mode rotates from round to round); the medians of the rates are compared, and the
//! spread is reported beside them. Every eighth query of each thread is timed on its own, for
//! the median latency.
//!
//! Every client uses the same transport: `sslmode=disable` by default, TLS with `--tls`
//! (SQLx through native-tls, that is OpenSSL). Each client's transport is checked as it
//! connects: every connection of the r2d2 and SQLx pools and of the raw client, pgbench's
//! while it runs, and `orm`'s through a read on its pool. The report and `pool.json` (`pool_tls.json` on TLS) state which.

use orm::prelude::*;
use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use orm::Model;

use crate::report::{self, Target};
use crate::transport::{self, Transport, PSQL};
use crate::{BenchResult, BoxError, Flags};

/// Threads (tasks, pgbench clients) reading at once in every mode.
const THREADS: usize = 4;
/// The worker threads of SQLx's tokio runtime: one per core of the machine the figures are
/// for.
const SQLX_WORKERS: usize = 2;
/// Every `SAMPLE_EVERY`-th query of a thread is timed on its own, for the median latency.
const SAMPLE_EVERY: u64 = 8;
/// How long each mode runs once, untimed, before the rounds.
const WARM_UP: Duration = Duration::from_secs(1);
/// pgbench of the server's major version.
const PGBENCH: &str = "/usr/lib/postgresql/15/bin/pgbench";
/// The database `pgbench -i -s 1` fills, beside the benchmark's own.
const PGBENCH_DATABASE: &str = "orm_bench_pgbench";
/// The rows of `pgbench -i -s 1`'s `pgbench_accounts`.
const PGBENCH_ACCOUNTS: i64 = 100_000;
/// pgbench's connections go by this name, so that their transport can be found and checked.
const PGBENCH_APPLICATION: &str = "orm_bench_pgbench";
/// The longest wait for pgbench's connections to show up in `pg_stat_ssl`.
const PGBENCH_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// The benchmark's table: the users shape of `bulk`, in a table of its own.
#[derive(Debug, Clone, Model)]
#[orm(table = bench_pool_users)]
pub struct PoolUser {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub email: String,
    pub name: String,
    pub last_login: Option<DateTime<Utc>>,
    pub bio: Option<String>,
    pub score: i32,
}

/// The query every client but `orm` and pgbench sends, columns in field order.
pub(crate) const SELECT_BY_ID: &str =
    "SELECT id, email, name, last_login, bio, score FROM bench_pool_users WHERE id = $1";

/// (c) as a Diesel user without `orm` writes it: `table!` and Diesel's derive.
pub(crate) mod hand_written {
    use chrono::{DateTime, Utc};

    diesel::table! {
        #[sql_name = "bench_pool_users"]
        users (id) {
            id -> BigInt,
            email -> Text,
            name -> Text,
            last_login -> Nullable<Timestamptz>,
            bio -> Nullable<Text>,
            score -> Integer,
        }
    }

    /// A row of `users`. Read whole, as every mode reads it; the benchmark checks the key only.
    #[derive(Debug, diesel::Queryable)]
    #[allow(dead_code)]
    pub struct User {
        pub id: i64,
        pub email: String,
        pub name: String,
        pub last_login: Option<DateTime<Utc>>,
        pub bio: Option<String>,
        pub score: i32,
    }
}

/// The ways of reading, in the order the report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// (a) `db.find::<PoolUser>(id)` through one shared `orm::Database` and its pool.
    Pooled,
    /// (b) The same through a `Database` without a pool: a connection per query.
    NoPool,
    /// (c) `users.find(id).first::<User>(&mut conn)` on an r2d2 pool of 4 Diesel connections.
    RawR2d2,
    /// (d) `pgbench -S -M prepared -c 4 -j 4`: the server's own load generator.
    Pgbench,
    /// (e) The raw `postgres` client: 4 connections, one prepared statement each.
    RawPostgres,
    /// (f) `sqlx::query_as(…).bind(id).fetch_one(&pool)` from 4 tasks on a `PgPool` of 4.
    Sqlx,
    /// (g) `db.find::<PoolUser>(id)` through a `Database` that routes reads to the replica.
    Replica,
    /// (h) (a) with unnamed statements (`prepared_statements: Some(false)`), what a
    /// connection not shown direct (behind a pooler) uses: each read parsed and planned anew.
    Unnamed,
}

const MODES: [Mode; 8] = [
    Mode::Pooled,
    Mode::NoPool,
    Mode::RawR2d2,
    Mode::Pgbench,
    Mode::RawPostgres,
    Mode::Sqlx,
    Mode::Replica,
    Mode::Unnamed,
];

/// Why the modes that need `orm`'s pool configuration and replica router are skipped.
const NEEDS_POOL_CONFIG: &str = "needs orm's PoolConfig and replica router: build orm-bench \
                                 with --features pool-config";

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Pooled => "pooled",
            Mode::NoPool => "no_pool",
            Mode::RawR2d2 => "raw_r2d2",
            Mode::Pgbench => "pgbench",
            Mode::RawPostgres => "raw_postgres",
            Mode::Sqlx => "sqlx",
            Mode::Replica => "replica",
            Mode::Unnamed => "unnamed",
        }
    }

    /// The printed name, with the transport.
    fn label(self, transport: Transport) -> String {
        let what = match self {
            Mode::Pooled => "orm Database, pooled",
            Mode::NoPool => "orm Database, PoolConfig::none()",
            Mode::RawR2d2 => "Diesel on r2d2, 4 connections",
            Mode::Pgbench => "pgbench -S -M prepared -c 4 -j 4",
            Mode::RawPostgres => "raw postgres, 4 prepared",
            Mode::Sqlx => "SQLx PgPool, 4 tasks on 2 workers",
            Mode::Replica => "orm Database, reads on the replica",
            Mode::Unnamed => "orm Database, pooled, unnamed statements",
        };
        format!("{what} ({})", transport.label())
    }

    /// Why this mode does not run in this build, if it does not.
    fn skipped(self) -> Option<&'static str> {
        match self {
            Mode::NoPool | Mode::Replica | Mode::Unnamed if !cfg!(feature = "pool-config") => {
                Some(NEEDS_POOL_CONFIG)
            }
            _ => None,
        }
    }
}

/// A cheap xorshift generator of keys in `1..=rows`, seeded from the round and the thread so
/// that every mode reads the same keys in the same order.
struct Keys {
    state: u64,
    rows: u64,
}

impl Keys {
    fn new(round: usize, thread: usize, rows: u64) -> Self {
        // splitmix64 of (round, thread): well-spread seeds from small numbers, never zero.
        let mut z = ((round as u64) << 32 | thread as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self {
            state: (z ^ (z >> 31)) | 1,
            rows,
        }
    }

    fn next_key(&mut self) -> i64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        (1 + x % self.rows) as i64
    }
}

/// One thread's (or task's) reading: its keys, the queries it ran, its sampled latencies.
struct Worker {
    keys: Keys,
    queries: u64,
    latencies_ns: Vec<u64>,
}

impl Worker {
    fn new(round: usize, thread: usize, rows: u64) -> Self {
        Self {
            keys: Keys::new(round, thread, rows),
            queries: 0,
            latencies_ns: Vec::new(),
        }
    }

    /// The next key to read and the time its query starts, or `None` once `until` has passed.
    fn next(&mut self, until: Instant) -> Option<(i64, Instant)> {
        let now = Instant::now();
        (now < until).then(|| (self.keys.next_key(), now))
    }

    /// Count the query for `key` started at `started`, which read the row whose key is `read`.
    fn done(&mut self, key: i64, read: i64, started: Instant) -> BenchResult<()> {
        if read != key {
            return Err(format!("the read of key {key} returned the row of key {read}").into());
        }
        self.queries += 1;
        if self.queries.is_multiple_of(SAMPLE_EVERY) {
            self.latencies_ns
                .push(started.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
        }
        Ok(())
    }
}

/// One run of one mode.
struct Run {
    per_second: f64,
    latencies_ns: Vec<u64>,
}

impl Run {
    fn of(workers: Vec<Worker>, elapsed: Duration) -> Self {
        let queries: u64 = workers.iter().map(|w| w.queries).sum();
        Self {
            per_second: queries as f64 / elapsed.as_secs_f64(),
            latencies_ns: workers.into_iter().flat_map(|w| w.latencies_ns).collect(),
        }
    }
}

/// Run one reader per thread, all started together, for `duration`: every thread's reader is
/// called with its keys in turn and returns the key of the row it read.
fn drive<R>(readers: Vec<R>, duration: Duration, round: usize, rows: u64) -> BenchResult<Run>
where
    R: FnMut(i64) -> BenchResult<i64> + Send,
{
    let barrier = Barrier::new(readers.len() + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = readers
            .into_iter()
            .enumerate()
            .map(|(thread, mut read)| {
                let barrier = &barrier;
                scope.spawn(move || -> BenchResult<Worker> {
                    let mut worker = Worker::new(round, thread, rows);
                    barrier.wait();
                    let until = Instant::now() + duration;
                    while let Some((key, started)) = worker.next(until) {
                        let read = read(key)?;
                        worker.done(key, read, started)?;
                    }
                    Ok(worker)
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        let mut workers = Vec::with_capacity(THREADS);
        for thread in threads {
            workers.push(thread.join().map_err(|_| "a reading thread panicked")??);
        }
        Ok(Run::of(workers, start.elapsed()))
    })
}

/// (a), (b), (g): one reader per thread, all on `db`.
fn orm_readers(db: &orm::Database) -> Vec<impl FnMut(i64) -> BenchResult<i64> + Send + '_> {
    (0..THREADS)
        .map(|_| move |id| Ok(black_box(db.find::<PoolUser>(id)?).id))
        .collect()
}

/// (c): one read through the r2d2 pool, as a Diesel user writes it.
fn r2d2_read(pool: &Pool<ConnectionManager<PgConnection>>, id: i64) -> BenchResult<i64> {
    use hand_written::users::dsl::users;
    use hand_written::User;

    let mut conn = pool.get()?;
    let user = users.find(id).first::<User>(&mut conn)?;
    Ok(black_box(user).id)
}

/// (e): one read through a raw client and its prepared statement.
pub(crate) fn raw_read(
    client: &mut postgres::Client,
    statement: &postgres::Statement,
    id: i64,
) -> BenchResult<i64> {
    let row = client.query_one(statement, &[&id])?;
    let user = PoolUser {
        id: row.try_get(0)?,
        email: row.try_get(1)?,
        name: row.try_get(2)?,
        last_login: row.try_get(3)?,
        bio: row.try_get(4)?,
        score: row.try_get(5)?,
    };
    Ok(black_box(user).id)
}

/// (f): 4 tasks reading through `pool` for `duration`, the loop of [`drive`] in async.
fn drive_sqlx(
    runtime: &tokio::runtime::Runtime,
    pool: &sqlx::PgPool,
    duration: Duration,
    round: usize,
    rows: u64,
) -> BenchResult<Run> {
    runtime.block_on(async {
        let start = Instant::now();
        let until = start + duration;
        let tasks: Vec<_> = (0..THREADS)
            .map(|task| {
                let pool = pool.clone();
                tokio::spawn(async move {
                    let mut worker = Worker::new(round, task, rows);
                    while let Some((key, started)) = worker.next(until) {
                        let user = sqlx::query_as::<
                            _,
                            (
                                i64,
                                String,
                                String,
                                Option<DateTime<Utc>>,
                                Option<String>,
                                i32,
                            ),
                        >(SELECT_BY_ID)
                        .bind(key)
                        .fetch_one(&pool)
                        .await?;
                        worker.done(key, black_box(user).0, started)?;
                    }
                    Ok::<_, BoxError>(worker)
                })
            })
            .collect();
        let mut workers = Vec::with_capacity(THREADS);
        for task in tasks {
            workers.push(task.await??);
        }
        Ok(Run::of(workers, start.elapsed()))
    })
}

/// Checks the transport of every connection the r2d2 pool opens.
#[derive(Debug)]
struct CheckTransport(Transport);

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for CheckTransport {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        self.0.check_diesel("Diesel on r2d2", conn).map_err(|e| {
            diesel::r2d2::Error::ConnectionError(ConnectionError::BadConnection(e.to_string()))
        })
    }
}

/// (c)'s pool: 4 connections, opened before it is returned. No test query on checkout, as
/// `orm`'s pool does (r2d2's default would add a `SELECT 1` round trip to every read). Its
/// search path is `schema`.
pub(crate) fn r2d2_pool(
    transport: Transport,
    schema: &str,
) -> BenchResult<Pool<ConnectionManager<PgConnection>>> {
    Ok(Pool::builder()
        .max_size(THREADS as u32)
        .min_idle(Some(THREADS as u32))
        .test_on_check_out(false)
        .connection_customizer(Box::new(CheckTransport(transport)))
        .build(ConnectionManager::new(transport.schema_url_in(schema)?))?)
}

/// (f)'s runtime and pool: SQLx's default pool options but for its size, 4 connections kept
/// open; the transport of each checked as it connects. The defaults are what SQLx users run,
/// `test_before_acquire` among them: a ping round trip on every acquire.
fn sqlx_pool(transport: Transport) -> BenchResult<(tokio::runtime::Runtime, sqlx::PgPool)> {
    use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(SQLX_WORKERS)
        .enable_all()
        .build()?;
    let options = transport
        .url()?
        .parse::<PgConnectOptions>()?
        .options([("search_path", crate::SCHEMA)]);
    let pool = runtime.block_on(
        PgPoolOptions::new()
            .max_connections(THREADS as u32)
            .min_connections(THREADS as u32)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let ssl: bool = sqlx::query_scalar(transport::SSL_QUERY)
                        .fetch_one(&mut *conn)
                        .await?;
                    transport
                        .check("SQLx", ssl)
                        .map_err(sqlx::Error::Configuration)
                })
            })
            .connect_with(options),
    )?;
    Ok((runtime, pool))
}

/// (e)'s clients: 4 raw connections, each with the query prepared.
fn raw_clients(transport: Transport) -> BenchResult<Vec<(postgres::Client, postgres::Statement)>> {
    (0..THREADS)
        .map(|_| {
            let mut client = transport.raw_client()?;
            let statement = client.prepare(SELECT_BY_ID)?;
            Ok((client, statement))
        })
        .collect()
}

/// (d): pgbench on its own database, and a raw client that watches its connections.
struct Pgbench {
    transport: Transport,
    /// The pgbench database's URL on this transport, its connections named
    /// [`PGBENCH_APPLICATION`].
    url: String,
    monitor: postgres::Client,
}

impl Pgbench {
    /// Create [`PGBENCH_DATABASE`] and fill it with `pgbench -i -s 1`, unless that was done.
    fn prepare(transport: Transport) -> BenchResult<Self> {
        let mut monitor = transport.raw_client()?;
        let server = transport::server_url();
        let url = format!(
            "{}&application_name={PGBENCH_APPLICATION}",
            transport.url_of(&with_database(&server, PGBENCH_DATABASE))?
        );
        let exists = monitor
            .query_opt(
                "SELECT 1 FROM pg_database WHERE datname = $1",
                &[&PGBENCH_DATABASE],
            )?
            .is_some();
        if !exists {
            monitor.batch_execute(&format!("CREATE DATABASE {PGBENCH_DATABASE}"))?;
        }
        let filled = psql_value(&url, "SELECT to_regclass('pgbench_accounts') IS NOT NULL")? == "t"
            && psql_value(&url, "SELECT count(*) FROM pgbench_accounts")?
                == PGBENCH_ACCOUNTS.to_string();
        if filled {
            println!("{PGBENCH_DATABASE} already holds pgbench's scale-1 tables: not refilled");
        } else {
            println!("filling {PGBENCH_DATABASE} with pgbench -i -s 1…");
            let output = Command::new(PGBENCH)
                .args(["-i", "-s", "1", "-q"])
                .arg(&url)
                .output()
                .map_err(|e| format!("cannot run {PGBENCH}: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "pgbench -i failed ({}): {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                )
                .into());
            }
        }
        Ok(Self {
            transport,
            url,
            monitor,
        })
    }

    /// `pgbench -n -S -M prepared -c 4 -j 4 -T seconds`: its rate without the time it took to
    /// connect (`-n`: no VACUUM first, the tables are read only). pgbench times no single
    /// query: no latencies.
    fn run(&mut self, seconds: u64) -> BenchResult<Run> {
        let mut child = Command::new(PGBENCH)
            .args(["-n", "-S", "-M", "prepared"])
            .args(["-c", &THREADS.to_string(), "-j", &THREADS.to_string()])
            .args(["-T", &seconds.to_string()])
            .arg(&self.url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {PGBENCH}: {e}"))?;
        let checked = self.check_connections(&mut child);
        let output = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "pgbench failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            )
            .into());
        }
        checked?;
        Ok(Run {
            per_second: pgbench_tps(&stdout)?,
            latencies_ns: Vec::new(),
        })
    }

    /// Wait until pgbench's connections show up, and fail unless each is on this transport.
    fn check_connections(&mut self, child: &mut Child) -> BenchResult<()> {
        let deadline = Instant::now() + PGBENCH_CONNECT_WAIT;
        loop {
            let rows = self.monitor.query(
                "SELECT s.ssl FROM pg_stat_ssl AS s JOIN pg_stat_activity AS a USING (pid) \
                 WHERE a.application_name = $1",
                &[&PGBENCH_APPLICATION],
            )?;
            for row in &rows {
                self.transport.check("pgbench", row.try_get(0)?)?;
            }
            if rows.len() >= THREADS {
                return Ok(());
            }
            if child.try_wait()?.is_some() || Instant::now() > deadline {
                return Err(format!(
                    "saw {} of pgbench's {THREADS} connections in pg_stat_ssl",
                    rows.len()
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// pgbench's rate: `tps = … (without initial connection time)` (PostgreSQL 14 and later) or
/// `… (excluding connections establishing)` (before).
fn pgbench_tps(stdout: &str) -> BenchResult<f64> {
    stdout
        .lines()
        .filter(|l| {
            l.contains("without initial connection time")
                || l.contains("excluding connections establishing")
        })
        .find_map(|l| {
            l.strip_prefix("tps = ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .ok_or_else(|| format!("no tps in pgbench's output:\n{stdout}").into())
}

/// The one value `sql` returns on `url`, through psql.
fn psql_value(url: &str, sql: &str) -> BenchResult<String> {
    let output = Command::new(PSQL)
        .args([
            "-X",
            "-w",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("cannot run {PSQL}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "psql failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Create and fill `bench_pool_users` with `rows` rows, keys `1..=rows`, unless it already holds
/// exactly those; then `VACUUM ANALYZE` it.
pub(crate) fn prepare(
    db: &orm::Database,
    raw: &mut postgres::Client,
    rows: u64,
) -> BenchResult<()> {
    // The comment records the shape the rows were made for, so a changed model refills.
    let marker = format!(
        "orm-bench pool: {rows} rows, model fingerprint {:016x}",
        PoolUser::TABLE.fingerprint
    );
    db.create_table::<PoolUser>()?;
    // The table the search path finds: in `orm_bench`, or the schema of another benchmark.
    let table = "bench_pool_users";
    let comment: Option<String> = raw
        .query_one(
            "SELECT obj_description($1::text::regclass, 'pg_class')",
            &[&table],
        )?
        .try_get(0)?;
    let keys = raw.query_one(
        "SELECT count(*), coalesce(min(id), 0), coalesce(max(id), 0) FROM bench_pool_users",
        &[],
    )?;
    let (count, min, max): (i64, i64, i64) = (keys.try_get(0)?, keys.try_get(1)?, keys.try_get(2)?);
    let rows_i64 = i64::try_from(rows)?;
    if comment.as_deref() == Some(marker.as_str()) && (count, min, max) == (rows_i64, 1, rows_i64) {
        println!("bench_pool_users already holds {rows} rows: not refilled");
    } else {
        println!("filling bench_pool_users with {rows} rows…");
        db.drop_table::<PoolUser>()?;
        db.create_table::<PoolUser>()?;
        // Row `g` as `bulk`'s row `g` (key `g`, in order, from the fresh identity).
        db.batch_execute(&format!(
            "INSERT INTO bench_pool_users (email, name, last_login, bio, score) \
             SELECT 'user' || g || '@example.com', \
                    'User ' || g, \
                    CASE WHEN g % 10 = 9 THEN NULL \
                         ELSE TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 second' END, \
                    'Bio #' || lpad(g::text, 7, '0') || ': writes Rust, reads SQL, likes fast bulk loads.', \
                    (g % 1000)::integer \
             FROM generate_series(1::bigint, {rows}::bigint) AS g \
             ORDER BY g; \
             COMMENT ON TABLE bench_pool_users IS '{marker}'"
        ))?;
        let max: i64 = raw
            .query_one("SELECT max(id) FROM bench_pool_users", &[])?
            .try_get(0)?;
        if max != rows_i64 {
            return Err(format!("bench_pool_users' keys end at {max}, not at {rows}").into());
        }
    }
    // VACUUM cannot run inside the implicit transaction of a multi-statement batch: alone.
    db.batch_execute("VACUUM ANALYZE bench_pool_users")?;
    Ok(())
}

/// The modes that need `orm`'s pool configuration and replica router.
#[cfg(feature = "pool-config")]
mod coming {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use orm::prelude::*;

    use crate::transport::{self, Transport};
    use crate::BenchResult;

    /// The replica when `ORM_BENCH_PG_REPLICA_URL` is not set.
    const DEFAULT_REPLICA_URL: &str = "postgres://postgres@127.0.0.1:5433/orm_test";
    /// The longest wait for the router to send reads to the replica.
    const ROUTER_WAIT: Duration = Duration::from_secs(30);
    /// Routing decisions timed in one batch of `route_ns`.
    const ROUTE_CALLS: u32 = 1_000_000;

    /// The replica's URL on this transport, its search path set.
    fn replica_url(transport: Transport) -> BenchResult<String> {
        let server = transport::env_url("ORM_BENCH_PG_REPLICA_URL", DEFAULT_REPLICA_URL);
        Ok(transport::schema_url(&transport.url_of(&server)?))
    }

    /// (b): a `Database` that opens a connection for every query.
    pub fn no_pool(transport: Transport) -> BenchResult<orm::Database> {
        let db = orm::Database::builder(&transport.schema_url()?)
            .pool(orm::PoolConfig::none())
            .connect()?;
        transport.check_database("orm without a pool", &db)?;
        Ok(db)
    }

    /// (h): a pooled `Database` whose connections use unnamed statements.
    pub fn unnamed(transport: Transport) -> BenchResult<orm::Database> {
        let db = orm::Database::builder(&transport.schema_url()?)
            .pool(orm::PoolConfig {
                prepared_statements: Some(false),
                ..orm::PoolConfig::default()
            })
            .connect()?;
        transport.check_database("orm with unnamed statements", &db)?;
        Ok(db)
    }

    /// (g): a `Database` that routes reads to the replica, returned once its reads go there and
    /// the replica has replayed all `rows` rows.
    pub fn on_replica(transport: Transport, rows: u64) -> BenchResult<orm::Database> {
        let db = orm::Database::builder(&transport.schema_url()?)
            .replica(&replica_url(transport)?)
            .connect()?;
        let ready = format!(
            "SELECT pg_is_in_recovery() AND (SELECT count(*) FROM bench_pool_users) = {rows}"
        );
        let deadline = Instant::now() + ROUTER_WAIT;
        while db.load::<_, bool>(diesel::dsl::sql::<diesel::sql_types::Bool>(&ready))? != [true] {
            if Instant::now() > deadline {
                return Err(
                    "reads through the replica router did not reach a caught-up \
                            replica"
                        .into(),
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        transport.check_database("orm on the replica", &db)?;
        Ok(db)
    }

    /// One routing decision, in ns: the median of `runs` batches of [`ROUTE_CALLS`] decisions
    /// for a read any replica may serve, once the router would send it to the replica.
    pub fn route_ns(transport: Transport, runs: usize) -> BenchResult<f64> {
        let set = orm::route::ReplicaSet::start(
            &transport.url()?,
            [replica_url(transport)?],
            orm::route::RouterConfig::default(),
        )?;
        let deadline = Instant::now() + ROUTER_WAIT;
        while route_decision(&set).is_none() {
            if Instant::now() > deadline {
                return Err("the replica router never chose the replica".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut batches: Vec<f64> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..ROUTE_CALLS {
                    black_box(route_decision(black_box(&set)));
                }
                start.elapsed().as_nanos() as f64 / f64::from(ROUTE_CALLS)
            })
            .collect();
        Ok(super::median(&mut batches))
    }

    /// The decision itself: which replica serves a read that may see any WAL position.
    fn route_decision(set: &orm::route::ReplicaSet) -> Option<usize> {
        set.pick(None).ok().flatten()
    }
}

/// The clients under test, each opened once and kept for the whole benchmark.
struct Clients {
    rows: u64,
    db: orm::Database,
    #[cfg(feature = "pool-config")]
    no_pool: orm::Database,
    #[cfg(feature = "pool-config")]
    replica: orm::Database,
    #[cfg(feature = "pool-config")]
    unnamed: orm::Database,
    r2d2: Pool<ConnectionManager<PgConnection>>,
    pgbench: Pgbench,
    raw: Vec<(postgres::Client, postgres::Statement)>,
    sqlx: (tokio::runtime::Runtime, sqlx::PgPool),
}

impl Clients {
    /// Run `mode` for `seconds`, its threads seeded for `round`.
    fn run(&mut self, mode: Mode, seconds: u64, round: usize) -> BenchResult<Run> {
        let duration = Duration::from_secs(seconds);
        let rows = self.rows;
        match mode {
            Mode::Pooled => drive(orm_readers(&self.db), duration, round, rows),
            #[cfg(feature = "pool-config")]
            Mode::NoPool => drive(orm_readers(&self.no_pool), duration, round, rows),
            #[cfg(feature = "pool-config")]
            Mode::Replica => drive(orm_readers(&self.replica), duration, round, rows),
            #[cfg(feature = "pool-config")]
            Mode::Unnamed => drive(orm_readers(&self.unnamed), duration, round, rows),
            #[cfg(not(feature = "pool-config"))]
            Mode::NoPool | Mode::Replica | Mode::Unnamed => Err(NEEDS_POOL_CONFIG.into()),
            Mode::RawR2d2 => {
                let pool = &self.r2d2;
                let readers = (0..THREADS).map(|_| move |id| r2d2_read(pool, id));
                drive(readers.collect(), duration, round, rows)
            }
            Mode::Pgbench => self.pgbench.run(seconds),
            Mode::RawPostgres => {
                let readers = self
                    .raw
                    .iter_mut()
                    .map(|(client, statement)| move |id| raw_read(client, statement, id));
                drive(readers.collect(), duration, round, rows)
            }
            Mode::Sqlx => drive_sqlx(&self.sqlx.0, &self.sqlx.1, duration, round, rows),
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count); zero if empty.
fn median(values: &mut [f64]) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// What the rounds gave one mode.
#[derive(Default)]
struct Figures {
    per_second: Vec<f64>,
    latencies_ns: Vec<u64>,
}

impl Figures {
    fn median(&self) -> f64 {
        median(&mut self.per_second.clone())
    }

    fn spread(&self) -> (f64, f64) {
        let min = self
            .per_second
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let max = self.per_second.iter().copied().fold(0.0, f64::max);
        (min, max)
    }

    /// The median sampled latency in µs, if the mode's queries were timed.
    fn p50_us(&self) -> Option<f64> {
        let mut sorted = self.latencies_ns.clone();
        sorted.sort_unstable();
        sorted.get(sorted.len() / 2).map(|ns| *ns as f64 / 1e3)
    }
}

/// `orm-bench pool [--seconds N] [--runs R] [--rows N] [--tls]`.
pub fn run(mut flags: Flags) -> BenchResult<()> {
    let seconds = flags.usize("seconds", 10)?;
    let runs = flags.usize("runs", 3)?;
    let rows = flags.usize("rows", 10_000)?;
    let transport = flags.transport();
    flags.finish()?;
    if seconds == 0 {
        return Err("--seconds must be at least 1".into());
    }
    if runs < 3 {
        return Err(
            format!("--runs must be at least 3 for a meaningful median, got {runs}").into(),
        );
    }
    if rows == 0 {
        return Err("--rows must be at least 1".into());
    }
    let (seconds, rows) = (seconds as u64, rows as u64);

    println!("transport: every client on {}", transport.label());
    let db = transport.database()?;
    prepare(&db, &mut transport.raw_client()?, rows)?;
    let mut clients = Clients {
        rows,
        db,
        #[cfg(feature = "pool-config")]
        no_pool: coming::no_pool(transport)?,
        #[cfg(feature = "pool-config")]
        replica: coming::on_replica(transport, rows)?,
        #[cfg(feature = "pool-config")]
        unnamed: coming::unnamed(transport)?,
        r2d2: r2d2_pool(transport, crate::SCHEMA)?,
        pgbench: Pgbench::prepare(transport)?,
        raw: raw_clients(transport)?,
        sqlx: sqlx_pool(transport)?,
    };
    let modes: Vec<Mode> = MODES
        .into_iter()
        .filter(|m| m.skipped().is_none())
        .collect();
    for mode in MODES {
        if let Some(reason) = mode.skipped() {
            println!("{}: skipped ({reason})", mode.name());
        }
    }

    println!("warm-up: every mode once for {} s", WARM_UP.as_secs_f64());
    for &mode in &modes {
        clients.run(mode, WARM_UP.as_secs(), 0)?;
    }

    let mut figures: Vec<Figures> = modes.iter().map(|_| Figures::default()).collect();
    for round in 0..runs {
        for i in 0..modes.len() {
            let index = (round + i) % modes.len();
            let run = clients.run(modes[index], seconds, round)?;
            figures[index].per_second.push(run.per_second);
            figures[index].latencies_ns.extend(run.latencies_ns);
        }
        println!("round {}/{runs} done", round + 1);
    }
    #[cfg(feature = "pool-config")]
    let route_ns = Some(coming::route_ns(transport, runs)?);
    #[cfg(not(feature = "pool-config"))]
    let route_ns: Option<f64> = None;

    // The report.
    println!(
        "\npool: point reads by key from {THREADS} threads, {rows} rows, {runs} interleaved runs \
         of {seconds} s, medians and spread, every client on {}",
        transport.label()
    );
    let table: Vec<Vec<String>> = modes
        .iter()
        .zip(&figures)
        .map(|(m, f)| {
            let (min, max) = f.spread();
            vec![
                m.label(transport),
                format!("{:.0}", f.median()),
                format!("{min:.0}"),
                format!("{max:.0}"),
                f.p50_us()
                    .map_or_else(|| "-".to_owned(), |us| format!("{us:.0}")),
            ]
        })
        .collect();
    report::print_table(
        &["mode", "queries/s", "min q/s", "max q/s", "p50 µs"],
        &table,
    );

    // Ratios of median rates: above 1, the first mode is the faster.
    let rate = |m: Mode| {
        modes
            .iter()
            .position(|x| *x == m)
            .map(|i| figures[i].median())
    };
    use Target::{AtLeast, AtMost, Context};
    let wanted = [
        (
            "pooled_vs_nopool",
            Mode::Pooled,
            Mode::NoPool,
            AtLeast(50.0),
        ),
        (
            "pooled_vs_raw_r2d2",
            Mode::Pooled,
            Mode::RawR2d2,
            AtLeast(0.95),
        ),
        (
            "pooled_vs_pgbench",
            Mode::Pooled,
            Mode::Pgbench,
            AtLeast(1.0),
        ),
        (
            "pooled_vs_raw_postgres",
            Mode::Pooled,
            Mode::RawPostgres,
            AtLeast(0.9),
        ),
        ("pooled_vs_sqlx", Mode::Pooled, Mode::Sqlx, AtLeast(2.0)),
        ("replica_vs_primary", Mode::Replica, Mode::Pooled, Context),
        ("unnamed_vs_named", Mode::Unnamed, Mode::Pooled, Context),
    ];
    let mut ratios = Vec::new();
    let mut absent = serde_json::Map::new();
    for (name, a, b, target) in wanted {
        match (rate(a), rate(b)) {
            (Some(ra), Some(rb)) => ratios.push(report::Ratio {
                name,
                formula: format!("{} / {}", a.name(), b.name()),
                value: ra / rb,
                target,
            }),
            _ => {
                let skipped = if rate(a).is_none() { a } else { b };
                absent.insert(
                    name.to_owned(),
                    format!("{} skipped", skipped.name()).into(),
                );
            }
        }
    }
    match route_ns {
        Some(value) => ratios.push(report::Ratio {
            name: "route_ns",
            formula: "one routing decision, ns".to_owned(),
            value,
            target: AtMost(1000.0),
        }),
        None => {
            absent.insert("route_ns".into(), NEEDS_POOL_CONFIG.into());
        }
    }
    println!("\nratios of median queries/s ({}):", transport.label());
    report::print_ratios(&ratios);
    for (name, why) in &absent {
        println!("{name}: absent ({})", why.as_str().unwrap_or_default());
    }

    let mut json = serde_json::Map::new();
    json.insert("transport".into(), transport.label().into());
    json.insert("rows".into(), rows.into());
    json.insert("runs".into(), runs.into());
    json.insert("seconds".into(), seconds.into());
    json.insert("threads".into(), THREADS.into());
    let per_mode = |value: &dyn Fn(Mode, &Figures) -> Option<serde_json::Value>| {
        modes
            .iter()
            .zip(&figures)
            .filter_map(|(m, f)| Some((m.name().to_owned(), value(*m, f)?)))
            .collect::<serde_json::Map<_, _>>()
    };
    json.insert(
        "labels".into(),
        per_mode(&|m, _| Some(m.label(transport).into())).into(),
    );
    json.insert(
        "queries_per_s".into(),
        per_mode(&|_, f| Some(f.median().into())).into(),
    );
    json.insert(
        "min_queries_per_s".into(),
        per_mode(&|_, f| Some(f.spread().0.into())).into(),
    );
    json.insert(
        "max_queries_per_s".into(),
        per_mode(&|_, f| Some(f.spread().1.into())).into(),
    );
    json.insert(
        "p50_us".into(),
        per_mode(&|_, f| f.p50_us().map(Into::into)).into(),
    );
    json.insert(
        "skipped".into(),
        MODES
            .iter()
            .filter_map(|m| Some((m.name().to_owned(), m.skipped()?.into())))
            .collect::<serde_json::Map<_, _>>()
            .into(),
    );
    report::add_ratios(&mut json, &ratios);
    json.insert("absent_ratios".into(), absent.into());
    let path = report::write_json(&transport.json_name("pool"), &json.into())?;
    println!("\nwrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_repeat_per_round_and_thread_and_stay_in_range() {
        let draw = |round, thread| {
            let mut keys = Keys::new(round, thread, 10);
            (0..1000).map(|_| keys.next_key()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 2), draw(1, 2));
        assert_ne!(draw(1, 2), draw(1, 3));
        assert_ne!(draw(1, 2), draw(2, 2));
        let keys = draw(0, 0);
        assert!(keys.iter().all(|k| (1..=10).contains(k)));
        for k in 1..=10 {
            assert!(keys.contains(&k), "key {k} never drawn");
        }
    }

    #[test]
    fn pgbench_rate_is_read_from_either_wording() {
        let new = "number of failed transactions: 0 (0.000%)\n\
                   latency average = 0.061 ms\n\
                   initial connection time = 5.104 ms\n\
                   tps = 65432.123456 (without initial connection time)\n";
        assert_eq!(pgbench_tps(new).unwrap(), 65432.123456);
        let old = "tps = 50000.5 (including connections establishing)\n\
                   tps = 51000.25 (excluding connections establishing)\n";
        assert_eq!(pgbench_tps(old).unwrap(), 51000.25);
        assert!(pgbench_tps("nothing").is_err());
    }

    #[test]
    fn the_database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/orm_test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/orm_test?a=b", "x"),
            "postgres://u@h/x?a=b"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }

    #[test]
    fn the_query_names_every_column_in_field_order() {
        let columns: Vec<&str> = PoolUser::TABLE.columns.iter().map(|c| c.name).collect();
        assert!(
            SELECT_BY_ID.starts_with(&format!("SELECT {} FROM", columns.join(", "))),
            "{SELECT_BY_ID}"
        );
    }

    #[test]
    fn only_the_modes_needing_pool_config_are_skipped() {
        for mode in MODES {
            let needs = matches!(mode, Mode::NoPool | Mode::Replica | Mode::Unnamed);
            assert_eq!(
                mode.skipped().is_some(),
                needs && !cfg!(feature = "pool-config"),
                "{mode:?}"
            );
        }
    }
}
