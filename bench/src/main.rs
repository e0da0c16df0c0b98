//! `orm-bench`: measures `orm` against hand-written Diesel and the raw `postgres` client on a
//! real PostgreSQL server.
//!
//! ```text
//! cargo run --release -p orm-bench -- load [--rows N] [--runs R]
//! ```
//!
//! The server is `ORM_BENCH_PG_URL` (default `postgres://postgres@127.0.0.1:5432/orm_test`);
//! every table lives in the schema `orm_bench`. Results are printed as a table and written to
//! `target/bench/<benchmark>.json`.

mod bulk;
mod load;
mod report;

use std::collections::BTreeMap;
use std::process::ExitCode;

/// The error type of every benchmark: anything printable.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The result type of every benchmark.
pub type BenchResult<T> = Result<T, BoxError>;

/// The server used when `ORM_BENCH_PG_URL` is not set.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/orm_test";
/// The schema every benchmark table lives in.
pub const SCHEMA: &str = "orm_bench";

const USAGE: &str = "\
usage: orm-bench <benchmark> [options]

benchmarks:
  load [--rows N] [--runs R]   load a 12-column table in full and as a 3-column partial,
                               through orm, hand-written Diesel and the raw postgres client
                               (defaults: --rows 200000 --runs 7; at least 5 runs)
  bulk [--rows N] [--runs R]   insert the users table row by row, in Diesel chunks, with orm's
                               bulk_insert, psql \\copy and raw binary COPY (PostgreSQL), and
                               row by row, Diesel chunks and bulk_insert (SQLite); plus a
                               batch-size sweep and bulk_insert's peak RSS
                               (defaults: --rows 1000000 --runs 3; at least 3 runs)

environment:
  ORM_BENCH_PG_URL   PostgreSQL server (default postgres://postgres@127.0.0.1:5432/orm_test)
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

/// Command-line options of a benchmark: `--name value` or `--name=value`. Each benchmark takes
/// the ones it knows, then calls [`Flags::finish`] so that a misspelled option is an error.
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
                Some((n, v)) => (n.to_owned(), v.to_owned()),
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

    /// Fail if any option was given that the benchmark did not take.
    pub fn finish(self) -> BenchResult<()> {
        match self.values.keys().next() {
            None => Ok(()),
            Some(name) => Err(format!("unknown option `--{name}`").into()),
        }
    }
}

/// The server's URL as given: `ORM_BENCH_PG_URL`, or the local default.
pub fn server_url() -> String {
    std::env::var("ORM_BENCH_PG_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_PG_URL.to_owned())
}

/// The server's URL with the search path set to [`SCHEMA`], for `orm` and Diesel (libpq).
pub fn schema_url(url: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}options=-csearch_path%3D{SCHEMA}")
}

/// Create [`SCHEMA`] if it is missing, and return the `orm` database whose search path is it.
pub fn bench_database() -> BenchResult<orm::Database> {
    let url = server_url();
    orm::Database::connect(&url)?
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))?;
    Ok(orm::Database::connect(&schema_url(&url))?)
}

/// A raw `postgres` client whose search path is [`SCHEMA`] (which must exist).
pub fn raw_client() -> BenchResult<postgres::Client> {
    let mut client = postgres::Client::connect(&server_url(), postgres::NoTls)?;
    client.batch_execute(&format!("SET search_path TO {SCHEMA}"))?;
    Ok(client)
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
    }

    #[test]
    fn schema_url_appends_the_search_path() {
        assert_eq!(
            schema_url("postgres://u@h/db"),
            "postgres://u@h/db?options=-csearch_path%3Dorm_bench"
        );
        assert_eq!(
            schema_url("postgres://u@h/db?sslmode=disable"),
            "postgres://u@h/db?sslmode=disable&options=-csearch_path%3Dorm_bench"
        );
    }
}
