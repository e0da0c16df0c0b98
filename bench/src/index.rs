//! `index`: the article's login lookup (`id, last_login` by `email`) with and without a
//! covering index, and its dashboard aggregate read from a materialized view against the same
//! `GROUP BY` on the base table.
//!
//! The users table is loaded twice with the same rows (server-side `INSERT … SELECT
//! generate_series`): `bench_users` with the covering index `bench_user_email_cover` (email)
//! INCLUDE (id, last_login), `bench_users_plain` with a plain index on email; both vacuumed,
//! so the covering lookup can be an index-only scan (checked with `db.explain` before timing).
//! Each round runs every method once, the order alternating between rounds; medians of the
//! per-round rates are compared. Every client is on the transport of the run (`sslmode=disable`
//! by default).

use orm::prelude::*;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::{Database, Model};

use crate::report::{self, Figures, Ratio, Target};
use crate::{BenchResult, Flags};

/// The article's user, with a covering index for the login lookup.
#[derive(Debug, Clone, Model)]
#[orm(
    table = bench_users,
    index(name = "bench_user_email_cover", on(email), include(id, last_login))
)]
pub struct BenchUser {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
    pub name: String,
    pub last_login: DateTime<Utc>,
    /// ~200 bytes, so a row is as wide as a real profile's.
    pub bio: String,
}

/// The same rows with a plain index on `email`: the lookup reads the table for `last_login`.
#[derive(Debug, Clone, Model)]
#[orm(table = bench_users_plain, index(name = "bench_user_email_plain", on(email)))]
pub struct BenchUserPlain {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
    pub name: String,
    pub last_login: DateTime<Utc>,
    pub bio: String,
}

#[derive(Debug, Clone, Model)]
#[orm(table = bench_orders)]
pub struct BenchOrder {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: f64,
}

/// The article's `sales_summary`, over `bench_orders`.
#[derive(Debug, Clone, Model)]
#[orm(
    materialized_view = "bench_sales_summary",
    query = "SELECT product_id, SUM(quantity) AS total_sold, AVG(unit_price) AS avg_price \
             FROM bench_orders GROUP BY product_id",
    index(name = "bench_sales_summary_product", on(product_id), unique),
    refresh_concurrently
)]
pub struct BenchSalesSummary {
    pub product_id: i64,
    pub total_sold: i64,
    pub avg_price: f64,
}

/// Products the orders are spread over: the view's row count.
const PRODUCTS: usize = 1000;

pub fn run(mut flags: Flags) -> BenchResult<()> {
    let rows = flags.usize("rows", 1_000_000)?;
    let orders = flags.usize("orders", 1_000_000)?;
    let lookups = flags.usize("lookups", 20_000)?;
    let aggregates = flags.usize("aggregates", 10)?;
    let runs = flags.usize("runs", 3)?.max(1);
    let transport = flags.transport();
    flags.finish()?;
    let db = transport.database()?;

    println!(
        "index: {rows} users, {orders} orders over {PRODUCTS} products, {runs} rounds ({})",
        transport.label()
    );
    let started = Instant::now();
    setup(&db, rows, orders)?;
    println!("setup: {:.1} s", started.elapsed().as_secs_f64());
    let plans = check_plans(&db)?;

    let emails: Vec<String> = (0..lookups)
        .map(|i| format!("user{}@example.com", 1 + (i * 7919) % rows))
        .collect();
    let mut samples: [Vec<Duration>; 4] = Default::default();
    for round in 0..runs {
        let mut order = [0, 1, 2, 3];
        if round % 2 == 1 {
            order.reverse();
        }
        for method in order {
            let elapsed = match method {
                0 => lookup_plain(&db, &emails)?,
                1 => lookup_cover(&db, &emails)?,
                2 => dashboard_view(&db, aggregates * 20)?,
                _ => dashboard_group_by(&db, aggregates)?,
            };
            samples[method].push(elapsed);
        }
    }
    let label = |name: &str| format!("{name} ({})", transport.label());
    let figures = [
        Figures {
            name: "lookup_plain_index",
            label: label("lookup, plain index on email"),
            rows: lookups,
            samples: &samples[0],
        },
        Figures {
            name: "lookup_covering_index",
            label: label("lookup, covering index"),
            rows: lookups,
            samples: &samples[1],
        },
        Figures {
            name: "dashboard_view",
            label: label("dashboard from the view"),
            rows: aggregates * 20,
            samples: &samples[2],
        },
        Figures {
            name: "dashboard_group_by",
            label: label("dashboard GROUP BY orders"),
            rows: aggregates,
            samples: &samples[3],
        },
    ];
    println!("(rows = queries; rows/s = queries/s)");
    report::print_figures(&figures);
    let rate = |i: usize, n: usize| report::per_second(n, report::median(&samples[i]));
    let ratios = [
        Ratio {
            name: "covering_speedup",
            formula: "lookup_covering_index / lookup_plain_index (queries/s)".to_owned(),
            value: rate(1, lookups) / rate(0, lookups),
            target: Target::Context,
        },
        Ratio {
            name: "view_speedup",
            formula: "dashboard_view / dashboard_group_by (queries/s)".to_owned(),
            value: rate(2, aggregates * 20) / rate(3, aggregates),
            target: Target::Context,
        },
    ];
    report::print_ratios(&ratios);

    let mut json = report::figures_json(&figures);
    report::add_ratios(&mut json, &ratios);
    for r in &ratios {
        json.insert(r.name.to_owned(), serde_json::json!(r.value));
    }
    json.insert("users".into(), serde_json::json!(rows));
    json.insert("orders".into(), serde_json::json!(orders));
    json.insert("products".into(), serde_json::json!(PRODUCTS));
    json.insert("runs".into(), serde_json::json!(runs));
    json.insert("transport".into(), serde_json::json!(transport.label()));
    json.insert("plans".into(), plans);
    let path = report::write_json(
        &transport.json_name("index"),
        &serde_json::Value::Object(json),
    )?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Fresh tables filled on the server, their indexes, the view, VACUUM ANALYZE.
fn setup(db: &Database, rows: usize, orders: usize) -> BenchResult<()> {
    db.drop_view::<BenchSalesSummary>()?;
    for table in ["bench_users", "bench_users_plain", "bench_orders"] {
        db.batch_execute(&format!("DROP TABLE IF EXISTS {table}"))?;
    }
    db.create_table::<BenchUser>()?;
    db.create_table::<BenchUserPlain>()?;
    db.create_table::<BenchOrder>()?;
    db.batch_execute(&format!(
        "INSERT INTO bench_users (email, name, last_login, bio) \
         SELECT 'user' || g || '@example.com', 'User ' || g, \
                TIMESTAMPTZ '2026-01-01 00:00:00+00' - g * INTERVAL '1 second', \
                left(repeat(md5(g::text), 7), 200) \
         FROM generate_series(1::bigint, {rows}::bigint) AS g"
    ))?;
    db.batch_execute("INSERT INTO bench_users_plain SELECT * FROM bench_users")?;
    db.batch_execute(&format!(
        "INSERT INTO bench_orders (product_id, quantity, unit_price) \
         SELECT 1 + g % {PRODUCTS}, 1 + g % 7, (g % 500) * 0.25 + 1 \
         FROM generate_series(1::bigint, {orders}::bigint) AS g"
    ))?;
    db.create_indexes::<BenchUser>()?;
    db.create_indexes::<BenchUserPlain>()?;
    db.create_view::<BenchSalesSummary>()?;
    for table in [
        "bench_users",
        "bench_users_plain",
        "bench_orders",
        "bench_sales_summary",
    ] {
        db.batch_execute(&format!("VACUUM ANALYZE {table}"))?;
    }
    db.batch_execute("CHECKPOINT")?;
    Ok(())
}

/// The plans the lookups get: index-only with the covering index, not without. A benchmark
/// whose plans are not these would measure something else, so it stops.
fn check_plans(db: &Database) -> BenchResult<serde_json::Value> {
    let cover = db.explain(
        bench_users::table
            .filter(bench_users::email.eq("user42@example.com"))
            .select((bench_users::id, bench_users::last_login)),
    )?;
    let plain = db.explain(
        bench_users_plain::table
            .filter(bench_users_plain::email.eq("user42@example.com"))
            .select((bench_users_plain::id, bench_users_plain::last_login)),
    )?;
    let node = |p: &orm::schema::Plan| {
        p.nodes
            .first()
            .map(|n| n.node_type.clone())
            .unwrap_or_default()
    };
    println!(
        "plans: covering index → {}; plain index → {}",
        node(&cover),
        node(&plain)
    );
    if !cover.is_index_only_scan() || plain.is_index_only_scan() {
        return Err(format!("unexpected plans:\n{}\n{}", cover.raw, plain.raw).into());
    }
    Ok(serde_json::json!({ "covering": node(&cover), "plain": node(&plain) }))
}

/// The login lookup, `id, last_login` by email, once per email: one row each.
type Login = (i64, DateTime<Utc>);

fn lookup_cover(db: &Database, emails: &[String]) -> BenchResult<Duration> {
    timed_lookups(emails, |email| {
        db.load(
            bench_users::table
                .filter(bench_users::email.eq(email))
                .select((bench_users::id, bench_users::last_login)),
        )
    })
}

fn lookup_plain(db: &Database, emails: &[String]) -> BenchResult<Duration> {
    timed_lookups(emails, |email| {
        db.load(
            bench_users_plain::table
                .filter(bench_users_plain::email.eq(email))
                .select((bench_users_plain::id, bench_users_plain::last_login)),
        )
    })
}

/// Times `lookup` over every email, checking that each finds exactly one row.
fn timed_lookups(
    emails: &[String],
    lookup: impl Fn(&str) -> orm::Result<Vec<Login>>,
) -> BenchResult<Duration> {
    let started = Instant::now();
    for email in emails {
        let found = lookup(email)?;
        if found.len() != 1 {
            return Err(format!("{email}: {} rows", found.len()).into());
        }
    }
    Ok(started.elapsed())
}

fn dashboard_view(db: &Database, times: usize) -> BenchResult<Duration> {
    let started = Instant::now();
    for _ in 0..times {
        let rows: Vec<BenchSalesSummary> = db.load(bench_sales_summary::table)?;
        let sane = rows
            .iter()
            .all(|r| r.product_id > 0 && r.total_sold > 0 && r.avg_price > 0.0);
        if rows.len() != PRODUCTS || !sane {
            return Err(format!("the view has {} rows, or a row out of range", rows.len()).into());
        }
    }
    Ok(started.elapsed())
}

fn dashboard_group_by(db: &Database, times: usize) -> BenchResult<Duration> {
    use diesel::dsl::{avg, sum};
    let started = Instant::now();
    for _ in 0..times {
        let rows: Vec<(i64, Option<i64>, Option<f64>)> = db.load(
            bench_orders::table
                .group_by(bench_orders::product_id)
                .select((
                    bench_orders::product_id,
                    sum(bench_orders::quantity),
                    avg(bench_orders::unit_price),
                )),
        )?;
        if rows.len() != PRODUCTS {
            return Err(format!("the GROUP BY gave {} rows", rows.len()).into());
        }
    }
    Ok(started.elapsed())
}
