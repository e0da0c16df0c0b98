//! Materialized views: created from their query, read like any model (partials included),
//! refreshed (also concurrently, under readers), and refreshed on a schedule that never runs
//! two refreshes of one view at once.

use crate::common;

use orm::prelude::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use orm::schema::{Refreshed, Refresher};
use orm::{Backend, Database, Model};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = orders)]
pub struct Order {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: f64,
}

/// The article's dashboard aggregate.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    materialized_view = "sales_summary",
    query = "SELECT product_id, SUM(quantity) AS total_sold, AVG(unit_price) AS avg_price \
             FROM orders GROUP BY product_id",
    index(name = "sales_summary_product", on(product_id), unique),
    refresh_concurrently,
    partial(SalesTotal = [product_id, total_sold]),
)]
pub struct SalesSummary {
    pub product_id: i64,
    pub total_sold: i64,
    pub avg_price: f64,
}

/// A view whose refresh fails while an order has quantity 0: division by zero on
/// PostgreSQL, NULL into a NOT NULL column on SQLite.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    materialized_view = "order_weights",
    query = "SELECT 100 / MIN(quantity) AS weight FROM orders"
)]
pub struct OrderWeight {
    pub weight: i32,
}

/// A view without a unique index: refreshed plainly.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    materialized_view = "order_counts",
    query = "SELECT COUNT(*) AS orders FROM orders"
)]
pub struct OrderCount {
    pub orders: i64,
}

fn order(product_id: i64, quantity: i32, unit_price: f64) -> NewOrder {
    NewOrder {
        product_id,
        quantity,
        unit_price,
    }
}

/// A SQLite database in a file of its own (several connections, unlike `:memory:`).
fn sqlite_file(test: &str) -> Database {
    let path = std::env::temp_dir().join(format!("orm_view_{test}_{}.db", std::process::id()));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Database::connect(path.to_str().unwrap()).unwrap()
}

/// SQLite in memory and in a file, and PostgreSQL in a schema of its own.
fn databases(test: &str) -> Vec<Database> {
    let mut dbs = common::backends(test);
    if cfg!(feature = "sqlite") {
        dbs.push(sqlite_file(test));
    }
    dbs
}

#[test]
fn view_metadata_holds_its_query() {
    let view = SalesSummary::TABLE.view.unwrap();
    assert!(view.query.starts_with("SELECT product_id, SUM(quantity)"));
    assert!(view.concurrent_refresh);
    assert_eq!(SalesSummary::TABLE.name, "sales_summary");
    assert!(!OrderCount::TABLE.view.unwrap().concurrent_refresh);
    assert!(Order::TABLE.view.is_none());
}

#[test]
fn a_view_is_created_read_and_refreshed() {
    for db in databases("view_basics") {
        db.create_table::<Order>().unwrap();
        for o in [order(1, 2, 10.0), order(1, 3, 20.0), order(2, 5, 7.5)] {
            db.insert::<Order>(&o).unwrap();
        }
        db.create_view::<SalesSummary>().unwrap();
        db.create_view::<SalesSummary>().unwrap(); // IF NOT EXISTS
        db.create_view::<OrderCount>().unwrap();
        let rows: Vec<SalesSummary> = db
            .load(sales_summary::table.order(sales_summary::product_id))
            .unwrap();
        assert_eq!(
            rows,
            [
                SalesSummary {
                    product_id: 1,
                    total_sold: 5,
                    avg_price: 15.0
                },
                SalesSummary {
                    product_id: 2,
                    total_sold: 5,
                    avg_price: 7.5
                },
            ],
            "{:?}",
            db.backend()
        );
        // A materialized view keeps its rows until refreshed.
        db.insert::<Order>(&order(3, 1, 1.0)).unwrap();
        let stale: Vec<SalesTotal> = db.load_all::<SalesTotal>().unwrap();
        assert_eq!(stale.len(), 2);
        let refreshed = db.refresh::<SalesSummary>().unwrap();
        assert!(refreshed.finished >= refreshed.started);
        let mut totals: Vec<SalesTotal> = db.load_all::<SalesTotal>().unwrap();
        totals.sort_by_key(|t| t.product_id);
        assert_eq!(
            totals,
            [
                SalesTotal {
                    product_id: 1,
                    total_sold: 5
                },
                SalesTotal {
                    product_id: 2,
                    total_sold: 5
                },
                SalesTotal {
                    product_id: 3,
                    total_sold: 1
                },
            ]
        );
        db.insert::<Order>(&order(3, 4, 1.0)).unwrap();
        db.refresh_concurrently::<SalesSummary>().unwrap();
        let three: SalesSummary = db
            .first(sales_summary::table.filter(sales_summary::product_id.eq(3)))
            .unwrap();
        assert_eq!(three.total_sold, 5);
        db.refresh::<OrderCount>().unwrap();
        let count: OrderCount = db.first(order_counts::table).unwrap();
        assert_eq!(count.orders, 5);
        // The view's unique index exists, as declared.
        let report = db.index_report(&[SalesSummary::TABLE]).unwrap();
        assert!(
            report
                .indexes
                .iter()
                .any(|i| i.name == "sales_summary_product" && i.unique),
            "{report}"
        );
        db.drop_view::<OrderCount>().unwrap();
        db.drop_view::<SalesSummary>().unwrap();
        assert!(db.load::<_, SalesSummary>(sales_summary::table).is_err());
    }
}

/// A refresh is a write of the view's table: the call says so, like a model write, which is
/// what the cache's invalidation reads.
#[test]
fn a_refresh_writes_the_view_table() {
    for db in common::backends("view_written") {
        db.create_table::<Order>().unwrap();
        db.create_view::<SalesSummary>().unwrap();
        let info = db
            .with_connection(|conn| {
                conn.refresh::<SalesSummary>()?;
                Ok(conn.info())
            })
            .unwrap();
        assert_eq!(info.tables_written, ["sales_summary"], "{:?}", db.backend());
        assert!(!info.unknown_writes);
    }
}

/// 200,000 rows in the view; a reader keeps reading it while it is refreshed concurrently
/// three times (its rows change each time), and never gets an error or an empty result.
#[test]
fn readers_keep_reading_during_a_concurrent_refresh() {
    let mut dbs = Vec::new();
    if let Some(pg) = common::postgres("view_concurrent_readers") {
        dbs.push(pg);
    }
    if cfg!(feature = "sqlite") {
        dbs.push(sqlite_file("concurrent_readers"));
    }
    const ROWS: i64 = 200_000;
    for db in dbs {
        db.create_table::<Order>().unwrap();
        fill_orders(&db, ROWS, 1);
        db.create_view::<SalesSummary>().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (db, stop) = (db.clone(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let count: i64 = db
                        .first(sales_summary::table.count())
                        .expect("reading the view during a refresh");
                    assert_eq!(count, ROWS, "a reader saw a partial or empty view");
                    let page: Vec<SalesTotal> = db
                        .load(
                            sales_summary::table
                                .order(sales_summary::product_id)
                                .limit(100)
                                .select(SalesTotal::columns()),
                        )
                        .expect("reading the view during a refresh");
                    assert_eq!(page.len(), 100);
                    reads += 1;
                }
                reads
            })
        };
        for round in 2..5 {
            db.batch_execute(&format!("UPDATE orders SET quantity = {round}"))
                .unwrap();
            db.refresh_concurrently::<SalesSummary>().unwrap();
            let one: SalesSummary = db
                .first(sales_summary::table.filter(sales_summary::product_id.eq(7)))
                .unwrap();
            assert_eq!(one.total_sold, i64::from(round));
        }
        stop.store(true, Ordering::Relaxed);
        let reads = reader
            .join()
            .expect("the reader saw no error and no empty view");
        assert!(reads > 0, "{:?}", db.backend());
    }
}

fn fill_orders(db: &Database, rows: i64, quantity: i32) {
    let sql = match db.backend() {
        Backend::Postgres => format!(
            "INSERT INTO orders (product_id, quantity, unit_price) \
             SELECT g, {quantity}, (g % 100)::float8 FROM generate_series(1, {rows}) AS g"
        ),
        _ => format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) \
             INSERT INTO orders (product_id, quantity, unit_price) SELECT n, {quantity}, n % 100 FROM g"
        ),
    };
    db.batch_execute(&sql).unwrap();
}

/// Two refreshers of one view, each with a pool of its own (as two application instances
/// would have), refreshing as often as they can: the intervals recorded while each refresh held
/// the lock never overlap, and the lock made them skip rounds.
#[test]
fn two_refreshers_never_refresh_at_once() {
    let mut cases = Vec::new();
    if let Some(url) = common::postgres_url("view_two_refreshers") {
        cases.push((
            Database::connect(&url).unwrap(),
            Database::connect(&url).unwrap(),
        ));
    }
    if cfg!(feature = "sqlite") {
        let first = sqlite_file("two_refreshers");
        let path = first.url().to_string();
        let second = Database::connect(&path).unwrap();
        cases.push((first, second));
    }
    for (a, b) in cases {
        a.create_table::<Order>().unwrap();
        fill_orders(&a, 20_000, 1);
        a.create_view::<SalesSummary>().unwrap();
        let runs: Arc<Mutex<Vec<(usize, Refreshed)>>> = Arc::default();
        let inside = Arc::new(AtomicU64::new(0));
        let most_inside = Arc::new(AtomicU64::new(0));
        let start = |db: &Database, who: usize| {
            let (runs, inside, most) = (
                Arc::clone(&runs),
                Arc::clone(&inside),
                Arc::clone(&most_inside),
            );
            Refresher::every(Duration::from_millis(5))
                .view::<SalesSummary>()
                .on_refresh(move |view, done| {
                    assert_eq!(view, "sales_summary");
                    // Runs while the refresh holds the view's lock.
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(2));
                    runs.lock().unwrap().push((who, *done));
                    inside.fetch_sub(1, Ordering::SeqCst);
                })
                .start(db)
                .unwrap()
        };
        let (first, second) = (start(&a, 0), start(&b, 1));
        std::thread::sleep(Duration::from_secs(3));
        let (s1, s2) = (first.status()[0].clone(), second.status()[0].clone());
        first.stop();
        second.stop();
        let mut runs = runs.lock().unwrap().clone();
        assert!(
            runs.len() >= 4,
            "{:?}: {} refreshes",
            a.backend(),
            runs.len()
        );
        assert!(
            runs.iter().any(|r| r.0 == 0) && runs.iter().any(|r| r.0 == 1),
            "both refreshed"
        );
        assert_eq!(
            most_inside.load(Ordering::SeqCst),
            1,
            "two refreshes held the lock at once"
        );
        runs.sort_by_key(|r| r.1.started);
        for pair in runs.windows(2) {
            assert!(
                pair[1].1.started >= pair[0].1.finished,
                "{:?}: refreshes overlapped: {pair:?}",
                a.backend()
            );
        }
        assert_eq!(s1.failures + s2.failures, 0, "{s1:?} {s2:?}");
        if a.backend() == Backend::Postgres {
            // The advisory lock is tried, not waited for: a busy view is skipped.
            assert!(s1.skipped + s2.skipped > 0, "{s1:?} {s2:?}");
        }
    }
}

/// When a refresh held the lock, in nanoseconds since the Unix epoch: comparable between
/// processes on one machine, as `Instant`s are not.
fn wall_clock(done: &Refreshed) -> (u128, u128) {
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    let epoch = |at: Instant| {
        (wall - (now - at))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    };
    (epoch(done.started), epoch(done.finished))
}

/// Run a refresher of `SalesSummary` on `db` for `time`, as often as it can; the intervals its
/// refreshes held the lock, and its status.
fn refresh_for(db: &Database, time: Duration) -> (Vec<(u128, u128)>, orm::schema::RefreshStatus) {
    let runs: Arc<Mutex<Vec<(u128, u128)>>> = Arc::default();
    let record = Arc::clone(&runs);
    let refresher = Refresher::every(Duration::from_millis(5))
        .view::<SalesSummary>()
        .on_refresh(move |_, done| record.lock().unwrap().push(wall_clock(done)))
        .start(db)
        .unwrap();
    std::thread::sleep(time);
    let status = refresher.status()[0].clone();
    refresher.stop();
    let runs = runs.lock().unwrap().clone();
    (runs, status)
}

/// The second process of `two_processes_never_refresh_at_once`: this test binary, started
/// again with `ORM_VIEW_CHILD_URL` set, runs only this function. Without that variable (a plain
/// test run) it has nothing to do.
#[test]
fn child_process_refresher() {
    let (Ok(url), Ok(out)) = (
        std::env::var("ORM_VIEW_CHILD_URL"),
        std::env::var("ORM_VIEW_CHILD_OUT"),
    ) else {
        return;
    };
    let db = Database::connect(&url).unwrap();
    let (runs, status) = refresh_for(&db, Duration::from_secs(3));
    let lines: Vec<String> = runs.iter().map(|(a, b)| format!("{a} {b}")).collect();
    std::fs::write(&out, format!("{}\n{}", status.skipped, lines.join("\n"))).unwrap();
}

/// Two processes, each with a refresher of the same view: PostgreSQL's advisory lock keeps
/// their refreshes apart.
#[test]
fn two_processes_never_refresh_at_once() {
    let Some(url) = common::postgres_url("view_two_processes") else {
        return;
    };
    let db = Database::connect(&url).unwrap();
    db.create_table::<Order>().unwrap();
    fill_orders(&db, 20_000, 1);
    db.create_view::<SalesSummary>().unwrap();
    let out = std::env::temp_dir().join(format!("orm_view_child_{}.txt", std::process::id()));
    // The child runs this binary's `child_process_refresher` alone: its full test name is this
    // module's path without the binary's name.
    let module = module_path!()
        .split_once("::")
        .map_or("", |(_, module)| module);
    let child_test = format!("{module}::child_process_refresher");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([child_test.as_str(), "--exact", "--test-threads=1"])
        .env("ORM_VIEW_CHILD_URL", &url)
        .env("ORM_VIEW_CHILD_OUT", &out)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (mut runs, status) = refresh_for(&db, Duration::from_secs(3));
    assert!(child.wait().unwrap().success(), "the child process failed");
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let mut lines = text.lines();
    let child_skipped: u64 = lines.next().unwrap().parse().unwrap();
    let child_runs: Vec<(u128, u128)> = lines
        .map(|l| {
            let (a, b) = l.split_once(' ').unwrap();
            (a.parse().unwrap(), b.parse().unwrap())
        })
        .collect();
    assert!(
        !runs.is_empty() && !child_runs.is_empty(),
        "both processes refreshed"
    );
    assert!(status.skipped + child_skipped > 0, "the lock was contended");
    runs.extend(child_runs);
    runs.sort();
    for pair in runs.windows(2) {
        assert!(
            pair[1].0 >= pair[0].1,
            "refreshes of two processes overlapped: {pair:?}"
        );
    }
}

/// A failing refresh is recorded and retried; the refresher recovers when the cause goes
/// away, reports its last success, failure and duration, and stops on drop.
#[test]
fn a_failed_refresh_is_retried_and_reported() {
    for db in databases("view_refresh_failure") {
        db.create_table::<Order>().unwrap();
        db.insert::<Order>(&order(1, 1, 1.0)).unwrap();
        db.create_view::<OrderWeight>().unwrap();
        let refresher = Refresher::every(Duration::from_millis(20))
            .view::<OrderWeight>()
            .max_backoff(Duration::from_millis(100))
            .start(&db)
            .unwrap();
        wait_until(|| refresher.status()[0].refreshes >= 1);
        let zero = db.insert::<Order>(&order(2, 0, 1.0)).unwrap();
        wait_until(|| refresher.status()[0].failures >= 2);
        let failed = refresher.status()[0].clone();
        let (_, error) = failed.last_failure.clone().unwrap();
        assert!(
            error.contains("division by zero") || error.contains("NOT NULL"),
            "{error}"
        );
        // The view kept its last rows.
        let weight: OrderWeight = db.first(order_weights::table).unwrap();
        assert_eq!(weight.weight, 100);
        db.delete::<Order>(zero.id).unwrap();
        let after = failed.refreshes;
        wait_until(|| refresher.status()[0].refreshes > after);
        let status = refresher.status()[0].clone();
        assert!(status.last_success.unwrap() > failed.last_failure.unwrap().0);
        assert!(status.last_duration.is_some());
        let started = Instant::now();
        drop(refresher); // stops and joins at once, not after an interval
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[test]
fn a_refresher_needs_an_interval_and_a_view() {
    let db = common::backends("view_refresher_config").remove(0);
    assert!(matches!(
        Refresher::every(Duration::ZERO)
            .view::<OrderCount>()
            .start(&db),
        Err(orm::Error::InvalidConfig {
            field: "interval",
            ..
        })
    ));
    assert!(matches!(
        Refresher::every(Duration::from_secs(1)).start(&db),
        Err(orm::Error::InvalidConfig { field: "view", .. })
    ));
}

fn wait_until(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
}
