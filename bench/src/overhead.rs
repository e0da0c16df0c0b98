//! `overhead`: the instructions the client spends on equal work through `orm` and through its
//! baselines, counted by callgrind rather than timed.
//!
//! On 2 cores shared by the client and the server, a timing cannot tell a 5% difference from
//! noise; an instruction count can. Each case runs in a child process, this program re-run
//! under `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=<the measured
//! function>` with the hidden subcommand `overhead-case <case>`. The child connects, prepares
//! and warms up outside the measured function, then does the case's work inside it: only the
//! instructions the calling thread executes in there are counted (the server is another
//! process, and the pool's background threads are not counted). The parent reads the total
//! from the callgrind out file, which stays in `target/bench/overhead/<case>.callgrind` for
//! `callgrind_annotate --inclusive=yes`.
//!
//! Cases, each beside its baseline on the same rows and transport (`sslmode=disable` by
//! default, TLS with `--tls`):
//! - point reads by key: `db.find::<PoolUser>(id)` on the pooled `Database` (checkout
//!   included), hand-written Diesel on r2d2 (`pool.get()` and `users.find(id).first()`), and a
//!   prepared statement of the raw `postgres` client;
//! - loads of the 12-column `bench_wide` table, in full and as its 3-column partial, through
//!   `db.load` / `db.load_all` and Diesel's `.load` of the same struct and tuple;
//! - binary COPY of the users rows: `BenchUser::bulk_insert` against the raw client's
//!   `BinaryCopyInWriter`, into an UNLOGGED table, in the same batches and transactions.
//!
//! Every table lives in the schema `orm_bench_overhead`, so that its sizes never disturb the
//! other benchmarks' tables.

use orm::prelude::*;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;

use diesel::prelude::*;
use orm::bulk::BulkOptions;

use crate::bulk::{BenchUser, NewBenchUser};
use crate::load::{bench_wide, BenchWide, WideCard};
use crate::pool::{hand_written, PoolUser};
use crate::report::{self, Target};
use crate::{BenchResult, Flags, Transport};

/// The schema of this benchmark's tables.
const SCHEMA: &str = "orm_bench_overhead";
/// Rows of the point-read table; keys are drawn from `1..=READ_TABLE_ROWS`.
const READ_TABLE_ROWS: u64 = 10_000;
/// Calls (or loads, or rows through a smaller COPY) each case makes before it is measured.
const WARM_UP_READS: usize = 200;
/// Rows of the untimed COPY that warms up the copy cases.
const WARM_UP_COPY_ROWS: usize = 1_000;
/// The function whose instructions are counted (callgrind's `--toggle-collect` pattern).
const MEASURED: &str = "orm_bench::overhead::measured*";

/// The work one child process measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// `db.find::<PoolUser>(id)`: pool checkout, routing, deadline, the query.
    FindOrm,
    /// `pool.get()` + `users.find(id).first::<User>(&mut conn)` on r2d2.
    FindDiesel,
    /// The raw client's prepared point read, the row converted to a `PoolUser`.
    FindRaw,
    /// `db.load::<_, BenchWide>(bench_wide::table)`.
    FullLoadOrm,
    /// `bench_wide::table.load::<BenchWide>(&mut conn)`.
    FullLoadDiesel,
    /// `db.load_all::<WideCard>()`.
    PartialLoadOrm,
    /// `bench_wide::table.select((id, name, score)).load::<(i64, String, i32)>(&mut conn)`.
    PartialLoadDiesel,
    /// `BenchUser::bulk_insert(&db, &rows, BulkOptions::default())`.
    CopyOrm,
    /// The raw client's `BinaryCopyInWriter`, batch by batch as `bulk_insert` does.
    CopyRaw,
}

const CASES: [Case; 9] = [
    Case::FindOrm,
    Case::FindDiesel,
    Case::FindRaw,
    Case::FullLoadOrm,
    Case::FullLoadDiesel,
    Case::PartialLoadOrm,
    Case::PartialLoadDiesel,
    Case::CopyOrm,
    Case::CopyRaw,
];

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::FindOrm => "find_orm",
            Case::FindDiesel => "find_diesel",
            Case::FindRaw => "find_raw",
            Case::FullLoadOrm => "full_load_orm",
            Case::FullLoadDiesel => "full_load_diesel",
            Case::PartialLoadOrm => "partial_load_orm",
            Case::PartialLoadDiesel => "partial_load_diesel",
            Case::CopyOrm => "copy_orm",
            Case::CopyRaw => "copy_raw",
        }
    }

    fn parse(name: &str) -> BenchResult<Self> {
        CASES
            .into_iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| format!("unknown overhead case `{name}`").into())
    }

    /// What one counted operation is: a call, a load of the whole table, a row.
    fn unit(self) -> &'static str {
        match self {
            Case::FindOrm | Case::FindDiesel | Case::FindRaw => "call",
            Case::FullLoadOrm
            | Case::FullLoadDiesel
            | Case::PartialLoadOrm
            | Case::PartialLoadDiesel => "load",
            Case::CopyOrm | Case::CopyRaw => "row",
        }
    }

    /// How many operations the measured function does.
    fn operations(self, sizes: &Sizes) -> usize {
        match self {
            Case::FindOrm | Case::FindDiesel | Case::FindRaw => sizes.reads,
            Case::FullLoadOrm
            | Case::FullLoadDiesel
            | Case::PartialLoadOrm
            | Case::PartialLoadDiesel => sizes.loads,
            Case::CopyOrm | Case::CopyRaw => sizes.copy_rows,
        }
    }
}

/// The amounts of work, shared by the parent and its children.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Point reads per find case.
    reads: usize,
    /// Rows of `bench_wide`.
    load_rows: usize,
    /// Loads of the whole table per load case.
    loads: usize,
    /// Rows per copy case.
    copy_rows: usize,
}

impl Sizes {
    fn take(flags: &mut Flags) -> BenchResult<Self> {
        let sizes = Self {
            reads: flags.usize("reads", 2_000)?,
            load_rows: flags.usize("load-rows", 20_000)?,
            loads: flags.usize("loads", 3)?,
            copy_rows: flags.usize("copy-rows", 100_000)?,
        };
        if sizes.reads == 0 || sizes.load_rows == 0 || sizes.loads == 0 || sizes.copy_rows == 0 {
            return Err("--reads, --load-rows, --loads and --copy-rows must be at least 1".into());
        }
        Ok(sizes)
    }

    /// The options that give a child these sizes.
    fn args(&self) -> Vec<String> {
        vec![
            "--reads".into(),
            self.reads.to_string(),
            "--load-rows".into(),
            self.load_rows.to_string(),
            "--loads".into(),
            self.loads.to_string(),
            "--copy-rows".into(),
            self.copy_rows.to_string(),
        ]
    }
}

/// The only function callgrind counts: `work`, called once. Not inlined, so that its symbol
/// exists for `--toggle-collect`.
#[inline(never)]
fn measured<R>(work: impl FnOnce() -> BenchResult<R>) -> BenchResult<R> {
    black_box(work())
}

/// The key of the `i`-th read: the same sequence in every find case, spread over the table.
fn key(i: usize) -> i64 {
    (i as u64 * 7_919 % READ_TABLE_ROWS + 1) as i64
}

/// The copy cases' rows, made before anything is measured: both sides encode the same values
/// and neither pays for making them.
fn copy_rows(n: usize) -> Vec<NewBenchUser> {
    (0..n).map(crate::bulk::row).collect()
}

/// An empty UNLOGGED `bench_users` (its WAL is not what is measured).
fn empty_copy_table(raw: &mut postgres::Client) -> BenchResult<()> {
    raw.batch_execute("TRUNCATE bench_users")?;
    Ok(())
}

/// Fail unless `bench_users` holds `n` rows.
fn check_copied(raw: &mut postgres::Client, n: usize) -> BenchResult<()> {
    let count: i64 = raw
        .query_one("SELECT count(*) FROM bench_users", &[])?
        .try_get(0)?;
    if usize::try_from(count) != Ok(n) {
        return Err(format!("bench_users holds {count} rows, expected {n}").into());
    }
    Ok(())
}

/// The raw client's binary COPY of `rows`, in batches of `bulk_insert`'s default size, each
/// in its own transaction, as `bulk_insert` writes them.
fn raw_copy(client: &mut postgres::Client, rows: &[NewBenchUser]) -> BenchResult<()> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;

    let statement = format!(
        "COPY bench_users ({}) FROM STDIN (FORMAT binary)",
        crate::bulk::COLUMNS
    );
    let types = [
        Type::TEXT,
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::TEXT,
        Type::INT4,
    ];
    for batch in rows.chunks(BulkOptions::DEFAULT_BATCH_SIZE) {
        let mut tx = client.transaction()?;
        let mut writer = BinaryCopyInWriter::new(tx.copy_in(&statement)?, &types);
        for r in batch {
            writer.write(&[&r.email, &r.name, &r.last_login, &r.bio, &r.score])?;
        }
        writer.finish()?;
        tx.commit()?;
    }
    Ok(())
}

/// `bulk_insert` of `rows` with the default options, checking its report.
fn orm_copy(db: &orm::Database, rows: &[NewBenchUser]) -> BenchResult<()> {
    let report = BenchUser::bulk_insert(db, rows, BulkOptions::default())?;
    if report.rows != rows.len() as u64 || !report.used_copy {
        return Err(format!(
            "bulk_insert wrote {} rows (used_copy {}), expected {} by COPY",
            report.rows,
            report.used_copy,
            rows.len()
        )
        .into());
    }
    Ok(())
}

/// The hidden `overhead-case <case> [sizes] [--tls]`: in this process (run under callgrind),
/// set up `case`, warm it up, then do its work inside [`measured`]. Prints `ok <operations>`.
pub fn run_case(args: &[String]) -> BenchResult<()> {
    let (name, rest) = args
        .split_first()
        .ok_or("overhead-case needs the name of a case")?;
    let case = Case::parse(name)?;
    let mut flags = Flags::parse(rest)?;
    let sizes = Sizes::take(&mut flags)?;
    let transport = flags.transport();
    flags.finish()?;
    let n = case.operations(&sizes);
    match case {
        Case::FindOrm => {
            let db = transport.database_in(SCHEMA)?;
            let read = |i| Ok::<_, crate::BoxError>(db.find::<PoolUser>(key(i))?.id);
            (0..WARM_UP_READS).try_for_each(|i| read(i).map(drop))?;
            let sum = measured(|| (0..n).try_fold(0, |sum, i| Ok(sum + read(i)?)))?;
            check_key_sum(sum, n)?;
        }
        Case::FindDiesel => {
            use hand_written::users::dsl::users;
            let pool = crate::pool::r2d2_pool(transport, SCHEMA)?;
            let read = |i| -> BenchResult<i64> {
                let mut conn = pool.get()?;
                let user = users.find(key(i)).first::<hand_written::User>(&mut conn)?;
                Ok(black_box(user).id)
            };
            (0..WARM_UP_READS).try_for_each(|i| read(i).map(drop))?;
            let sum = measured(|| (0..n).try_fold(0, |sum, i| Ok(sum + read(i)?)))?;
            check_key_sum(sum, n)?;
        }
        Case::FindRaw => {
            let mut client = transport.raw_client_in(SCHEMA)?;
            let statement = client.prepare(crate::pool::SELECT_BY_ID)?;
            let mut read = |i| crate::pool::raw_read(&mut client, &statement, key(i));
            (0..WARM_UP_READS).try_for_each(|i| read(i).map(drop))?;
            let sum = measured(|| (0..n).try_fold(0, |sum, i| Ok(sum + read(i)?)))?;
            check_key_sum(sum, n)?;
        }
        Case::FullLoadOrm | Case::PartialLoadOrm => {
            let db = transport.database_in(SCHEMA)?;
            let load = || -> BenchResult<usize> {
                Ok(if case == Case::FullLoadOrm {
                    black_box(db.load::<_, BenchWide>(bench_wide::table)?).len()
                } else {
                    black_box(db.load_all::<WideCard>()?).len()
                })
            };
            load()?;
            let rows = measured(|| (0..n).try_fold(0, |rows, _| Ok(rows + load()?)))?;
            check_rows(rows, n * sizes.load_rows)?;
        }
        Case::FullLoadDiesel | Case::PartialLoadDiesel => {
            let mut conn = transport.diesel_in(SCHEMA)?;
            let mut load = || -> BenchResult<usize> {
                Ok(if case == Case::FullLoadDiesel {
                    black_box(bench_wide::table.load::<BenchWide>(&mut conn)?).len()
                } else {
                    black_box(
                        bench_wide::table
                            .select((bench_wide::id, bench_wide::name, bench_wide::score))
                            .load::<(i64, String, i32)>(&mut conn)?,
                    )
                    .len()
                })
            };
            load()?;
            let rows = measured(|| (0..n).try_fold(0, |rows, _| Ok(rows + load()?)))?;
            check_rows(rows, n * sizes.load_rows)?;
        }
        Case::CopyOrm => {
            let db = transport.database_in(SCHEMA)?;
            let mut raw = transport.raw_client_in(SCHEMA)?;
            empty_copy_table(&mut raw)?;
            orm_copy(&db, &copy_rows(WARM_UP_COPY_ROWS))?;
            empty_copy_table(&mut raw)?;
            let rows = copy_rows(n);
            measured(|| orm_copy(&db, &rows))?;
            check_copied(&mut raw, n)?;
        }
        Case::CopyRaw => {
            let mut client = transport.raw_client_in(SCHEMA)?;
            empty_copy_table(&mut client)?;
            raw_copy(&mut client, &copy_rows(WARM_UP_COPY_ROWS))?;
            empty_copy_table(&mut client)?;
            let rows = copy_rows(n);
            measured(|| raw_copy(&mut client, &rows))?;
            check_copied(&mut client, n)?;
        }
    }
    println!("ok {n}");
    Ok(())
}

/// Fail unless the keys read sum to those of the first `n` reads: every read found its row.
fn check_key_sum(sum: i64, n: usize) -> BenchResult<()> {
    let expected: i64 = (0..n).map(key).sum();
    if sum != expected {
        return Err(
            format!("the reads returned keys summing to {sum}, expected {expected}").into(),
        );
    }
    Ok(())
}

fn check_rows(rows: usize, expected: usize) -> BenchResult<()> {
    if rows != expected {
        return Err(format!("the loads returned {rows} rows, expected {expected}").into());
    }
    Ok(())
}

/// The instructions a callgrind out file counts: its `summary:` (or `totals:`) line.
fn total_instructions(out: &str) -> Option<u64> {
    out.lines()
        .filter_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .max()
}

/// Run `case` in a child process under callgrind; the instructions its measured function
/// executed.
fn count_case(case: Case, sizes: &Sizes, transport: Transport, dir: &Path) -> BenchResult<u64> {
    let out = dir.join(format!("{}.callgrind", case.name()));
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={MEASURED}"))
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(std::env::current_exe()?)
        .args(["overhead-case", case.name()])
        .args(sizes.args())
        .args(transport.args())
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || !stdout.lines().any(|l| l.starts_with("ok ")) {
        return Err(format!(
            "case {} failed ({}): {}\n{}",
            case.name(),
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let text =
        std::fs::read_to_string(&out).map_err(|e| format!("cannot read {}: {e}", out.display()))?;
    match total_instructions(&text) {
        Some(0) | None => Err(format!(
            "{} counts no instructions: did `{MEASURED}` match the measured function?",
            out.display()
        )
        .into()),
        Some(total) => Ok(total),
    }
}

/// Create and fill this benchmark's tables (untimed, outside callgrind).
fn prepare(transport: Transport, sizes: &Sizes) -> BenchResult<()> {
    let db = transport.database_in(SCHEMA)?;
    let mut raw = transport.raw_client_in(SCHEMA)?;
    crate::pool::prepare(&db, &mut raw, READ_TABLE_ROWS)?;
    crate::load::prepare(&db, &mut raw, sizes.load_rows)?;
    db.create_table::<BenchUser>()?;
    raw.batch_execute("ALTER TABLE bench_users SET UNLOGGED; TRUNCATE bench_users")?;
    Ok(())
}

/// `orm-bench overhead [--reads N] [--load-rows N] [--loads N] [--copy-rows N] [--tls]`.
pub fn run(mut flags: Flags) -> BenchResult<()> {
    let sizes = Sizes::take(&mut flags)?;
    let transport = flags.transport();
    flags.finish()?;
    println!("transport: every client on {}", transport.label());
    prepare(transport, &sizes)?;
    let dir: PathBuf = report::target_dir().join("bench").join("overhead");
    std::fs::create_dir_all(&dir)?;

    let mut counts = Vec::with_capacity(CASES.len());
    for case in CASES {
        println!("counting {} under callgrind…", case.name());
        counts.push((case, count_case(case, &sizes, transport, &dir)?));
    }
    let per_op = |case: Case| {
        let (_, total) = counts
            .iter()
            .find(|(c, _)| *c == case)
            .copied()
            .unwrap_or((case, 0));
        total as f64 / case.operations(&sizes) as f64
    };

    println!(
        "\noverhead: instructions of the calling thread (callgrind), every client on {}",
        transport.label()
    );
    let rows: Vec<Vec<String>> = counts
        .iter()
        .map(|&(case, total)| {
            vec![
                case.name().to_owned(),
                format!("{} {}s", case.operations(&sizes), case.unit()),
                total.to_string(),
                format!("{:.0}", per_op(case)),
            ]
        })
        .collect();
    report::print_table(&["case", "work", "instructions", "per op"], &rows);

    let ratio = |name, ours: Case, base: Case, target| report::Ratio {
        name,
        formula: format!("{} / {}", ours.name(), base.name()),
        value: per_op(ours) / per_op(base),
        target,
    };
    use Case::*;
    let ratios = [
        ratio(
            "find_instr_vs_diesel",
            FindOrm,
            FindDiesel,
            Target::AtMost(1.02),
        ),
        ratio("find_instr_vs_raw", FindOrm, FindRaw, Target::Context),
        ratio(
            "full_load_instr_vs_diesel",
            FullLoadOrm,
            FullLoadDiesel,
            Target::AtMost(1.02),
        ),
        ratio(
            "partial_load_instr_vs_diesel",
            PartialLoadOrm,
            PartialLoadDiesel,
            Target::AtMost(1.02),
        ),
        ratio("copy_instr_vs_raw", CopyOrm, CopyRaw, Target::AtMost(1.05)),
    ];
    println!("\nratios of instructions per operation:");
    report::print_ratios(&ratios);

    let mut json = serde_json::Map::new();
    json.insert("transport".into(), transport.label().into());
    json.insert("reads".into(), sizes.reads.into());
    json.insert("load_rows".into(), sizes.load_rows.into());
    json.insert("loads".into(), sizes.loads.into());
    json.insert("copy_rows".into(), sizes.copy_rows.into());
    let mut instructions = serde_json::Map::new();
    let mut per_operation = serde_json::Map::new();
    for &(case, total) in &counts {
        instructions.insert(case.name().into(), total.into());
        per_operation.insert(case.name().into(), per_op(case).into());
    }
    json.insert("instructions".into(), instructions.into());
    json.insert("instructions_per_op".into(), per_operation.into());
    report::add_ratios(&mut json, &ratios);
    let path = report::write_json(&transport.json_name("overhead"), &json.into())?;
    println!(
        "\nwrote {} (callgrind files in {})",
        path.display(),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_total_is_read_from_summary_or_totals() {
        let out = "version: 1\nevents: Ir\nfn=(1) main\n5 10\nsummary: 1234\ntotals: 1234\n";
        assert_eq!(total_instructions(out), Some(1234));
        assert_eq!(total_instructions("totals: 99 3\n"), Some(99));
        assert_eq!(total_instructions("events: Ir\n"), None);
    }

    #[test]
    fn cases_round_trip_by_name_and_count_their_unit() {
        let sizes = Sizes {
            reads: 1,
            load_rows: 2,
            loads: 3,
            copy_rows: 4,
        };
        for case in CASES {
            assert_eq!(Case::parse(case.name()).unwrap(), case);
        }
        assert!(Case::parse("nope").is_err());
        assert_eq!(Case::FindOrm.operations(&sizes), 1);
        assert_eq!(Case::PartialLoadDiesel.operations(&sizes), 3);
        assert_eq!(Case::CopyRaw.operations(&sizes), 4);
    }

    #[test]
    fn keys_stay_in_the_table() {
        assert!((0..50_000)
            .map(key)
            .all(|k| (1..=READ_TABLE_ROWS as i64).contains(&k)));
    }
}
