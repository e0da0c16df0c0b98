//! `orm-bench`: measures `orm` against hand-written Diesel and the raw `postgres` client on a
//! real PostgreSQL server.
//!
//! ```text
//! cargo run --release -p orm-bench -- load [--rows N] [--runs R] [--tls]
//! cargo run --release -p orm-bench -- bulk [--rows N] [--runs R] [--tls]
//! cargo run --release -p orm-bench -- pool [--seconds N] [--runs R] [--rows N] [--tls]
//! cargo run --release -p orm-bench -- cache [--reads N] [--users N] [--heavy-reads N] [--tls]
//! cargo run --release -p orm-bench -- index [--rows N] [--orders N] [--lookups N] [--aggregates N] [--runs R] [--tls]
//! cargo run --release -p orm-bench -- compile [--models N] [--runs R]
//! cargo run --release -p orm-bench -- overhead [--reads N] [--load-rows N] [--loads N] [--copy-rows N] [--tls]
//! ```
//!
//! The server is `ORM_BENCH_PG_URL` (default `postgres://postgres@127.0.0.1:5432/orm_test`);
//! every table lives in the schema `orm_bench`. Every PostgreSQL client of one run uses the same
//! transport: `sslmode=disable` by default, TLS with `--tls`. Results, the transport named beside
//! them, are printed as a table and written to `target/bench/<benchmark>.json` (on TLS:
//! `<benchmark>_tls.json`).

mod bulk;
mod cache;
mod compile;
mod index;
mod load;
mod overhead;
mod pool;
mod report;
mod transport;

pub use transport::Transport;

use std::collections::BTreeMap;
use std::process::ExitCode;

/// The error type of every benchmark: anything printable.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The result type of every benchmark.
pub type BenchResult<T> = Result<T, BoxError>;

/// The schema every benchmark table lives in.
pub const SCHEMA: &str = "orm_bench";

const USAGE: &str = "\
usage: orm-bench <benchmark> [options]

benchmarks:
  load [--rows N] [--runs R] [--tls]
        load a 12-column table in full and as a 3-column partial, through orm, hand-written
        Diesel and the raw postgres client (defaults: --rows 200000 --runs 7; at least 5 runs)
  bulk [--rows N] [--runs R] [--tls]
        insert the users table row by row, in Diesel chunks, with Diesel's copy_from, with
        orm's bulk_insert, with psql \\copy of CSV and of binary COPY data, and with the raw
        postgres client's binary COPY (PostgreSQL); row by row, in Diesel chunks and with
        bulk_insert (SQLite); plus a batch-size sweep and bulk_insert's peak RSS
        (defaults: --rows 1000000 --runs 3; at least 3 runs)
  pool [--seconds N] [--runs R] [--rows N] [--tls]
        point reads by key from 4 threads for N seconds a run: orm's pooled Database, orm
        without a pool, Diesel on r2d2, pgbench -S -M prepared, the raw postgres client with a
        prepared statement, SQLx's PgPool, and orm with reads on the replica; plus the cost of
        one routing decision (defaults: --seconds 10 --runs 3 --rows 10000; at least 3 runs)
  index [--rows N] [--orders N] [--lookups N] [--aggregates N] [--runs R] [--tls]
        the login lookup (id, last_login by email) on N users with a covering index against a
        plain one (queries/s), and the dashboard aggregate from a materialized view against
        the same GROUP BY on the orders (defaults: --rows 1000000 --orders 1000000
        --lookups 20000 --aggregates 10 --runs 3); writes covering_speedup and view_speedup
  cache [--reads N] [--users N] [--heavy-reads N] [--tls]
        one thread of point reads by key: an orm-cache hit in Redis, a raw redis GET of the
        same bytes, the uncached read through Database, an in-process hit; then the heavy
        query (email ILIKE + last_login) cached and uncached; plus the codec comparison
        (defaults: --reads 100000 --users 200000 --heavy-reads 100)
  overhead [--reads N] [--load-rows N] [--loads N] [--copy-rows N] [--tls]
        instructions the client executes (valgrind's callgrind, each case in a child process
        of its own), not time: N point reads through db.find, Diesel on r2d2 and the raw
        postgres client; N loads of a 12-column table in full and as a 3-column partial
        through orm and Diesel; binary COPY of N rows through bulk_insert and the raw client's
        BinaryCopyInWriter. Writes find_instr_vs_diesel, find_instr_vs_raw,
        full_load_instr_vs_diesel, partial_load_instr_vs_diesel and copy_instr_vs_raw; the
        callgrind files stay in target/bench/overhead/ for callgrind_annotate (defaults:
        --reads 2000 --load-rows 20000 --loads 3 --copy-rows 100000; needs valgrind)

  compile [--models N] [--runs R]
        cargo check and cargo build of N models of 10 columns with one 3-column partial each,
        through #[derive(Model)] and as plain Diesel (table! + Queryable, Selectable,
        Insertable, AsChangeset, Identifiable), dependencies built first; medians of wall and
        CPU time (defaults: --models 60 --runs 3)

options:
  --tls   every PostgreSQL client on TLS (libpq sslmode=require, the raw client through
          OpenSSL); by default every one is on sslmode=disable. Each client checks its
          transport when it connects. Results go to target/bench/<benchmark>.json, or
          <benchmark>_tls.json with --tls.

environment:
  ORM_BENCH_PG_URL   PostgreSQL server (default postgres://postgres@127.0.0.1:5432/orm_test),
                     without sslmode: the transport option sets it
  ORM_BENCH_REDIS_URL
                     Redis for the cache benchmark (default redis://127.0.0.1:6379)
  ORM_BENCH_PG_REPLICA_URL
                     its streaming replica, for pool's replica mode (default
                     postgres://postgres@127.0.0.1:5433/orm_test), without sslmode
";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(benchmark) = args.next() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = args.collect();
    let result = match benchmark.as_str() {
        "load" => Flags::parse(&rest).and_then(load::run),
        "bulk" => Flags::parse(&rest).and_then(bulk::run),
        "pool" => Flags::parse(&rest).and_then(pool::run),
        "cache" => Flags::parse(&rest).and_then(cache::run),
        "index" => Flags::parse(&rest).and_then(index::run),
        "compile" => Flags::parse(&rest).and_then(compile::run),
        "overhead" => Flags::parse(&rest).and_then(overhead::run),
        // Hidden: one case of `overhead`, in the child process callgrind runs.
        "overhead-case" => overhead::run_case(&rest),
        // Further benchmarks go here, one arm each, e.g. `"bulk" => ….and_then(bulk::run)`.
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("error: unknown benchmark `{other}`\n");
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {benchmark}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The options that take no value.
const SWITCHES: [&str; 1] = ["tls"];

/// Command-line options of a benchmark: `--name value` or `--name=value`, and the bare
/// [`SWITCHES`]. Each benchmark takes the ones it knows, then calls [`Flags::finish`] so that a
/// misspelled option is an error.
#[derive(Debug, Default)]
pub struct Flags {
    values: BTreeMap<String, String>,
}

impl Flags {
    /// Parse `args` (everything after the benchmark's name).
    pub fn parse(args: &[String]) -> BenchResult<Self> {
        let mut values = BTreeMap::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!(
                    "unexpected argument `{arg}`; options look like `--rows 1000`"
                )
                .into());
            };
            let (name, value) = match name.split_once('=') {
                Some((n, _)) if SWITCHES.contains(&n) => {
                    return Err(format!("option `--{n}` takes no value").into());
                }
                Some((n, v)) => (n.to_owned(), v.to_owned()),
                None if SWITCHES.contains(&name) => (name.to_owned(), String::new()),
                None => {
                    let value = args
                        .next()
                        .ok_or_else(|| format!("option `--{name}` needs a value"))?;
                    (name.to_owned(), value.clone())
                }
            };
            if values.insert(name.clone(), value).is_some() {
                return Err(format!("option `--{name}` given twice").into());
            }
        }
        Ok(Self { values })
    }

    /// Take option `--name` as a non-negative integer, or `default` if it was not given.
    pub fn usize(&mut self, name: &str, default: usize) -> BenchResult<usize> {
        match self.values.remove(name) {
            None => Ok(default),
            Some(v) => v
                .replace('_', "")
                .parse()
                .map_err(|_| format!("option `--{name}` wants a whole number, got `{v}`").into()),
        }
    }

    /// Whether the switch `--name` (one of [`SWITCHES`]) was given.
    pub fn switch(&mut self, name: &str) -> bool {
        self.values.remove(name).is_some()
    }

    /// The transport: TLS if `--tls` was given, else `sslmode=disable`.
    pub fn transport(&mut self) -> Transport {
        Transport::new(self.switch("tls"))
    }

    /// Fail if any option was given that the benchmark did not take.
    pub fn finish(self) -> BenchResult<()> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(name) => Err(format!("unknown option `--{name}`").into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_take_both_spellings_and_reject_strays() {
        let mut f = Flags::parse(&args(&["--rows", "1_000", "--runs=5"])).unwrap();
        assert_eq!(f.usize("rows", 7).unwrap(), 1000);
        assert_eq!(f.usize("runs", 7).unwrap(), 5);
        assert_eq!(f.usize("other", 3).unwrap(), 3);
        f.finish().unwrap();

        let f = Flags::parse(&args(&["--rwos", "5"])).unwrap();
        assert!(f.finish().unwrap_err().to_string().contains("--rwos"));
        assert!(Flags::parse(&args(&["--rows"])).is_err());
        assert!(Flags::parse(&args(&["rows"])).is_err());
        assert!(Flags::parse(&args(&["--runs", "1", "--runs", "2"])).is_err());
        let mut f = Flags::parse(&args(&["--runs", "x"])).unwrap();
        assert!(f.usize("runs", 7).is_err());

        let mut f = Flags::parse(&args(&["--tls", "--rows", "5"])).unwrap();
        assert_eq!(f.transport(), Transport::Tls);
        assert_eq!(f.usize("rows", 7).unwrap(), 5);
        f.finish().unwrap();
        let mut f = Flags::parse(&args(&["--runs", "5"])).unwrap();
        assert_eq!(f.transport(), Transport::Plain);
        assert!(Flags::parse(&args(&["--tls=yes"])).is_err());
    }
}
