//! `load`: read a wide table in full and as a 3-column partial, through `orm`, hand-written
//! Diesel and the raw `postgres` client.
//!
//! The table has 12 columns and ~1.1 KB per row, two ~500-byte text columns among them that
//! the partial leaves out. Each round runs every method once (the starting method rotates from
//! round to round, so no method always follows the same one), each after a CHECKPOINT; the
//! medians are compared, and the spread (fastest and slowest run) is reported beside them.
//!
//! Every client uses the same transport: `sslmode=disable` (the raw client: `NoTls`) by default,
//! TLS with `--tls`. The report and `load.json` (`load_tls.json` on TLS) state which.

use orm::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::{Model, Projection};

use crate::report;
use crate::{BenchResult, Flags};

/// The benchmark's table: 12 columns, `bio` and `notes` ~500 bytes each.
#[derive(Debug, Clone, Model)]
#[orm(table = bench_wide, partial(WideCard = [id, name, score]))]
pub struct BenchWide {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
    pub score: i32,
    pub email: String,
    pub city: String,
    pub created_at: DateTime<Utc>,
    pub active: bool,
    pub balance: f64,
    pub tags: String,
    /// Wide: ~500 bytes, not in `WideCard`.
    pub bio: String,
    /// Wide: ~500 bytes, not in `WideCard`.
    pub notes: String,
    pub rating: i16,
}

/// The ways of loading the table, in the order the report lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// (a) The full model through `orm`: `db.load(bench_wide::table)`.
    FullOrm,
    /// (b) The full model through hand-written Diesel.
    FullDiesel,
    /// (c) The 3-column partial through `orm`: `db.load_all::<WideCard>()`.
    PartialOrm,
    /// (d) The same three columns through hand-written Diesel, as a tuple.
    PartialDiesel,
    /// (e) The same three columns through the raw `postgres` client: the floor.
    PartialRawPostgres,
    /// (f) All 12 columns through the raw `postgres` client, for context.
    FullRawPostgres,
}

const METHODS: [Method; 6] = [
    Method::FullOrm,
    Method::FullDiesel,
    Method::PartialOrm,
    Method::PartialDiesel,
    Method::PartialRawPostgres,
    Method::FullRawPostgres,
];

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::FullOrm => "full_orm",
            Method::FullDiesel => "full_diesel",
            Method::PartialOrm => "partial_orm",
            Method::PartialDiesel => "partial_diesel",
            Method::PartialRawPostgres => "partial_raw_postgres",
            Method::FullRawPostgres => "full_raw_postgres",
        }
    }
}

/// The three connections under test, each opened once and kept for the whole benchmark.
struct Clients {
    db: orm::Database,
    diesel: PgConnection,
    raw: postgres::Client,
    /// `SELECT <all 12 columns, in field order> FROM bench_wide`.
    full_sql: String,
    /// `SELECT id, name, score FROM bench_wide`.
    partial_sql: String,
}

/// Time `load` alone: the rows are counted and freed after the clock stops.
fn timed<T>(load: impl FnOnce() -> BenchResult<Vec<T>>) -> BenchResult<(Duration, usize)> {
    let start = Instant::now();
    let rows = black_box(load()?);
    let elapsed = start.elapsed();
    let count = rows.len();
    drop(rows);
    Ok((elapsed, count))
}

impl Clients {
    /// Run `method` once: its time and the number of rows it loaded.
    fn run(&mut self, method: Method) -> BenchResult<(Duration, usize)> {
        match method {
            Method::FullOrm => timed(|| Ok(self.db.load::<_, BenchWide>(bench_wide::table)?)),
            Method::FullDiesel => {
                timed(|| Ok(bench_wide::table.load::<BenchWide>(&mut self.diesel)?))
            }
            Method::PartialOrm => timed(|| Ok(self.db.load_all::<WideCard>()?)),
            Method::PartialDiesel => timed(|| {
                Ok(bench_wide::table
                    .select((bench_wide::id, bench_wide::name, bench_wide::score))
                    .load::<(i64, String, i32)>(&mut self.diesel)?)
            }),
            Method::PartialRawPostgres => timed(|| {
                let rows = self.raw.query(self.partial_sql.as_str(), &[])?;
                let converted = rows
                    .iter()
                    .map(|r| -> Result<(i64, String, i32), postgres::Error> {
                        Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(converted)
            }),
            Method::FullRawPostgres => timed(|| {
                let rows = self.raw.query(self.full_sql.as_str(), &[])?;
                let converted = rows
                    .iter()
                    .map(|r| -> Result<BenchWide, postgres::Error> {
                        Ok(BenchWide {
                            id: r.try_get(0)?,
                            name: r.try_get(1)?,
                            score: r.try_get(2)?,
                            email: r.try_get(3)?,
                            city: r.try_get(4)?,
                            created_at: r.try_get(5)?,
                            active: r.try_get(6)?,
                            balance: r.try_get(7)?,
                            tags: r.try_get(8)?,
                            bio: r.try_get(9)?,
                            notes: r.try_get(10)?,
                            rating: r.try_get(11)?,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(converted)
            }),
        }
    }

    /// Run `method` once and fail unless it loaded exactly `rows` rows.
    fn run_checked(&mut self, method: Method, rows: usize) -> BenchResult<Duration> {
        let (elapsed, loaded) = self.run(method)?;
        if loaded != rows {
            return Err(format!(
                "{} loaded {loaded} rows, but the table has {rows}",
                method.name()
            )
            .into());
        }
        Ok(elapsed)
    }
}

/// The one server-side statement that fills the table with `rows` rows of ~1.1 KB.
fn fill_sql(rows: usize) -> String {
    format!(
        "INSERT INTO bench_wide \
             (name, score, email, city, created_at, active, balance, tags, bio, notes, rating) \
         SELECT 'User ' || g, \
                (g * 7919 % 100000)::integer, \
                'user' || g || '@example.com', \
                (ARRAY['Amsterdam', 'Berlin', 'Lisbon', 'Oslo', 'Paris', 'Prague', 'Vienna', 'Warsaw'])[1 + g % 8], \
                TIMESTAMPTZ '2024-01-01 00:00:00+00' + g * INTERVAL '1 minute', \
                g % 3 <> 0, \
                (g % 100000) * 1.25::double precision, \
                'tag' || g % 17 || ',tag' || g % 31 || ',tag' || g % 97, \
                left(repeat(md5(g::text), 16), 500), \
                left(repeat(md5((-g)::text), 16), 500), \
                (1 + g % 5)::smallint \
         FROM generate_series(1::bigint, {rows}::bigint) AS g"
    )
}

/// Create and fill `bench_wide` unless it already holds `rows` rows of this shape; then
/// `VACUUM ANALYZE` it.
pub(crate) fn prepare(
    db: &orm::Database,
    raw: &mut postgres::Client,
    rows: usize,
) -> BenchResult<()> {
    // The comment records the shape the rows were made for, so a changed model refills.
    let marker = format!(
        "orm-bench load: {rows} rows, model fingerprint {:016x}",
        BenchWide::TABLE.fingerprint
    );
    db.create_table::<BenchWide>()?;
    // The table the search path finds: in `orm_bench`, or the schema of another benchmark.
    let table = "bench_wide";
    let comment: Option<String> = raw
        .query_one(
            "SELECT obj_description($1::text::regclass, 'pg_class')",
            &[&table],
        )?
        .try_get(0)?;
    let count: i64 = raw
        .query_one("SELECT count(*) FROM bench_wide", &[])?
        .try_get(0)?;
    if comment.as_deref() == Some(marker.as_str()) && usize::try_from(count) == Ok(rows) {
        println!("bench_wide already holds {rows} rows: not refilled");
    } else {
        println!("filling bench_wide with {rows} rows (one INSERT … SELECT generate_series)…");
        let start = Instant::now();
        db.drop_table::<BenchWide>()?;
        db.create_table::<BenchWide>()?;
        db.batch_execute(&format!(
            "{}; COMMENT ON TABLE bench_wide IS '{marker}'",
            fill_sql(rows)
        ))?;
        println!("  filled in {:.1} s", start.elapsed().as_secs_f64());
    }
    // VACUUM cannot run inside the implicit transaction of a multi-statement batch: alone.
    db.batch_execute("VACUUM ANALYZE bench_wide")?;
    let bytes: i64 = raw
        .query_one(
            "SELECT coalesce(sum(pg_column_size(t.*)), 0)::bigint FROM bench_wide AS t",
            &[],
        )?
        .try_get(0)?;
    println!(
        "bench_wide: {rows} rows, {:.0} bytes per row on average",
        bytes as f64 / rows.max(1) as f64
    );
    Ok(())
}

/// `orm-bench load [--rows N] [--runs R] [--tls]`.
pub fn run(mut flags: Flags) -> BenchResult<()> {
    let rows = flags.usize("rows", 200_000)?;
    let runs = flags.usize("runs", 7)?;
    let transport = flags.transport();
    flags.finish()?;
    if rows == 0 {
        return Err("--rows must be at least 1".into());
    }
    if runs < 5 {
        return Err(
            format!("--runs must be at least 5 for a meaningful median, got {runs}").into(),
        );
    }

    println!("transport: every client on {}", transport.label());
    let db = transport.database()?;
    let mut raw = transport.raw_client()?;
    prepare(&db, &mut raw, rows)?;

    let columns: Vec<&str> = BenchWide::TABLE.columns.iter().map(|c| c.name).collect();
    let mut clients = Clients {
        diesel: transport.diesel()?,
        db,
        raw,
        full_sql: format!("SELECT {} FROM bench_wide", columns.join(", ")),
        partial_sql: format!("SELECT {} FROM bench_wide", WideCard::COLUMNS.join(", ")),
    };

    println!("warm-up: every method once");
    for method in METHODS {
        clients.run_checked(method, rows)?;
    }

    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); METHODS.len()];
    for round in 0..runs {
        for i in 0..METHODS.len() {
            let index = (round + i) % METHODS.len();
            // Untimed: no method pays for pages another one left dirty.
            clients.raw.batch_execute("CHECKPOINT")?;
            samples[index].push(clients.run_checked(METHODS[index], rows)?);
        }
        println!("round {}/{runs} done", round + 1);
    }

    let figures: Vec<report::Figures<'_>> = METHODS
        .iter()
        .zip(&samples)
        .map(|(m, samples)| report::Figures {
            name: m.name(),
            label: format!("{} ({})", m.name(), transport.label()),
            rows,
            samples,
        })
        .collect();
    let median_of = |m: Method| {
        let i = METHODS.iter().position(|x| *x == m).unwrap_or(0);
        report::median(&samples[i])
    };

    println!(
        "\nload: {rows} rows, {runs} interleaved runs, medians and spread, every client on {}",
        transport.label()
    );
    report::print_figures(&figures);

    // Ratios of median times: above 1, `orm` (or the full load) is the slower.
    let ratio = |name, a: Method, b: Method, target| report::Ratio {
        name,
        formula: format!("{} / {}", a.name(), b.name()),
        value: median_of(a).as_secs_f64() / median_of(b).as_secs_f64(),
        target,
    };
    use report::Target::{AtLeast, AtMost, Context};
    use Method::*;
    let ratios = [
        ratio("full_vs_raw", FullOrm, FullRawPostgres, AtMost(1.10)),
        ratio(
            "partial_vs_raw",
            PartialOrm,
            PartialRawPostgres,
            AtMost(1.05),
        ),
        ratio("full_vs_diesel", FullOrm, FullDiesel, AtMost(1.05)),
        ratio("partial_vs_diesel", PartialOrm, PartialDiesel, AtMost(1.05)),
        ratio("partial_speedup", FullOrm, PartialOrm, AtLeast(3.0)),
        ratio(
            "raw_partial_speedup",
            FullRawPostgres,
            PartialRawPostgres,
            Context,
        ),
    ];
    println!("\nratios of median times ({}):", transport.label());
    report::print_ratios(&ratios);

    let mut json = serde_json::Map::new();
    json.insert("transport".into(), transport.label().into());
    json.insert("rows".into(), rows.into());
    json.insert("runs".into(), runs.into());
    json.extend(report::figures_json(&figures));
    report::add_ratios(&mut json, &ratios);
    let path = report::write_json(&transport.json_name("load"), &json.into())?;
    println!("\nwrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_and_full_queries_name_the_right_columns() {
        assert_eq!(WideCard::COLUMNS, ["id", "name", "score"]);
        assert_eq!(BenchWide::TABLE.columns.len(), 12);
        let sql = diesel::debug_query::<diesel::pg::Pg, _>(
            &bench_wide::table.select(WideCard::columns()),
        )
        .to_string();
        assert!(!sql.contains("bio") && !sql.contains("notes"), "{sql}");
    }

    #[test]
    fn fill_names_every_non_key_column() {
        let sql = fill_sql(10);
        for c in BenchWide::TABLE.columns.iter().filter(|c| !c.generated) {
            assert!(sql.contains(c.name), "{} missing from {sql}", c.name);
        }
    }
}
