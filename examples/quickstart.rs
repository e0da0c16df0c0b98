//! The tour: one model, every operation, on SQLite in memory (no server, no setup) or on the
//! database in `DATABASE_URL` (`postgres://user@host:5432/db` works the same).
//!
//! ```text
//! cargo run --example quickstart
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/orm_test cargo run --example quickstart
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/orm_test \
//!     REPLICA_URL=postgres://postgres@127.0.0.1:5433/orm_test cargo run --example quickstart
//! ```
//!
//! With `REPLICA_URL`, reads go to that streaming replica once it has caught up, and the tour
//! shows where each read went.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use orm::bulk::BulkOptions;
use orm::cache::{Cache, CachedReads};
use orm::prelude::*;
use orm::{Database, Model};

/// A user of the article's examples.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    table = quickstart_users,
    partial(UserCard = [id, name]),
    partial(UserLogin = [id, email, last_login]),
    // The article's covering index: the login lookup is answered from the index alone.
    index(name = "quickstart_user_email_cover", on(email), include(id, last_login)),
    index(name = "quickstart_user_name_cover", on(name), include(score)),
)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub email: String,
    pub name: String,
    pub bio: Option<String>,
    pub last_login: Option<DateTime<Utc>>,
    pub score: i32,
}

/// An order line, summed up by the view below.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = quickstart_orders)]
pub struct Order {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub product_id: i64,
    pub quantity: i32,
    pub unit_price: f64,
}

/// The article's dashboard aggregate as a materialized view: a read-only model.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    materialized_view = "quickstart_sales_summary",
    query = "SELECT product_id, SUM(quantity) AS total_sold, AVG(unit_price) AS avg_price \
             FROM quickstart_orders GROUP BY product_id",
    index(name = "quickstart_sales_summary_product", on(product_id), unique),
    refresh_concurrently
)]
pub struct SalesSummary {
    pub product_id: i64,
    pub total_sold: i64,
    pub avg_price: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite::memory:".to_owned());
    let mut builder = Database::builder(&url);
    if let Ok(replica) = std::env::var("REPLICA_URL") {
        builder = builder.replica(&replica);
    }
    let db = builder.connect()?;
    println!("connected to {} ({:?})", db.url(), db.backend());

    db.drop_table::<User>()?;
    db.create_table::<User>()?;
    println!("created table `{}` from the model", User::TABLE.name);

    let ada = db.insert::<User>(&NewUser {
        email: "ada@example.com".into(),
        name: "Ada".into(),
        bio: None,
        last_login: Some(Utc::now()),
        score: 42,
    })?;
    let grace = db.insert::<User>(&NewUser {
        email: "grace@example.com".into(),
        name: "Grace".into(),
        bio: Some("COBOL".into()),
        last_login: None,
        score: 7,
    })?;
    println!(
        "inserted {} (id {}) and {} (id {})",
        ada.name, ada.id, grace.name, grace.id
    );

    let found = db.find::<User>(ada.id)?;
    println!("found by key: {} <{}>", found.name, found.email);

    // The generated table is plain Diesel: filter, order, select as usual.
    let top: Vec<(String, i32)> = db.load(
        quickstart_users::table
            .filter(quickstart_users::score.gt(5))
            .order(quickstart_users::score.desc())
            .select((quickstart_users::name, quickstart_users::score)),
    )?;
    println!("query with the Diesel DSL: {top:?}");

    let mut changed = found;
    changed.bio = Some("Analytical Engine".into());
    changed.score += 1;
    let changed = db.update(&changed)?;
    println!(
        "updated {}: bio = {:?}, score = {}",
        changed.name, changed.bio, changed.score
    );

    db.delete::<User>(grace.id)?;
    let gone = db.find::<User>(grace.id);
    println!(
        "deleted {}; finding it again: {}",
        grace.name,
        gone.unwrap_err()
    );

    // Partial loading: `UserCard` has only `id` and `name`, and selects only those columns.
    let card = db.find_as::<UserCard>(changed.id)?;
    println!("partial load selects only id and name: {card:?}");

    // Query caching, in process (no server; `Cache::redis(url)` for Redis): the first read
    // misses and loads, the second is a hit that touches no connection, a write through the
    // database makes the entry stale, and the next read loads the new row.
    let cache = Cache::in_process();
    let report_read = |what: &str| -> Result<(), Box<dyn std::error::Error>> {
        let before = cache.stats();
        let user = db.cached(&cache).find::<User>(changed.id)?;
        let after = cache.stats();
        let outcome = if after.hits > before.hits {
            "hit"
        } else if after.stale > before.stale {
            "stale entry, loaded again"
        } else {
            "miss, loaded"
        };
        println!("cached read {what}: {outcome} (score {})", user.score);
        Ok(())
    };
    report_read("first")?;
    report_read("again")?;
    let mut scored = db.find::<User>(changed.id)?;
    scored.score += 10;
    db.update(&scored)?;
    println!("updated the score through the database: the cached row's table moved on");
    report_read("after the write")?;
    report_read("again")?;
    println!("cache key of that row: {}", User::cache_key(&changed.id));

    // Bulk insert: streamed batches (binary COPY on PostgreSQL), with a progress bar.
    const ROWS: u64 = 50_000;
    let bar = ProgressBar::new(ROWS).with_style(ProgressStyle::with_template(
        "bulk insert {bar:30} {pos}/{len} rows",
    )?);
    let rows = (0..ROWS).map(|i| NewUser {
        email: format!("bulk{i}@example.com"),
        name: format!("Bulk {i}"),
        bio: None,
        last_login: None,
        score: (i % 100) as i32,
    });
    let report = User::bulk_insert(
        &db,
        rows,
        BulkOptions::default()
            .batch_size(5_000)
            .on_progress(|p| bar.set_position(p.rows_done)),
    )?;
    bar.finish_and_clear();
    println!(
        "bulk inserted {} rows in {} batches ({}) in {:.2?}: {:.0} rows/s",
        report.rows,
        report.batches,
        if report.used_copy {
            "binary COPY"
        } else {
            "multi-row INSERT"
        },
        report.duration,
        report.rows_per_second()
    );

    // Where reads go: the primary, or a replica that has replayed the writes above. A session
    // reads its own writes: right after a write, its reads wait for a replica that has it.
    let session = db.session();
    session.update(&User {
        score: 100,
        ..session.find::<User>(changed.id)?
    })?;
    let (node, score) = session.read(|conn| {
        let user = conn.find::<User>(changed.id)?;
        Ok((conn.info().node, user.score))
    })?;
    println!("a session's read after its write: served by {node:?}, score {score}");
    for _ in 0..3 {
        let node = db.read(|conn| Ok(conn.info().node))?;
        println!("a read goes to {node:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    for state in db.pool_state() {
        println!(
            "pool of {:?}: {} open, {} idle, {} in use, {} checkouts, max wait {:?}",
            state.node, state.open, state.idle, state.in_use, state.checkouts, state.max_wait
        );
    }

    covering_index(&db)?;
    materialized_view(&db)?;

    match db.insert::<User>(&NewUser {
        email: "ada@example.com".into(),
        name: "Ada again".into(),
        bio: None,
        last_login: None,
        score: 0,
    }) {
        Err(orm::Error::UniqueViolation { constraint, .. }) => {
            println!("a second ada@example.com is refused by `{constraint}`")
        }
        other => return Err(format!("expected a unique violation, got {other:?}").into()),
    }
    Ok(())
}

/// The covering index: created from the model, then the plan of the login lookup.
fn covering_index(db: &Database) -> Result<(), Box<dyn std::error::Error>> {
    db.create_indexes::<User>()?;
    // Statistics for the planner (and, on PostgreSQL, the current visibility map an
    // index-only scan needs).
    db.batch_execute(match db.backend() {
        orm::Backend::Postgres => "VACUUM ANALYZE quickstart_users",
        _ => "ANALYZE quickstart_users",
    })?;
    let lookup = quickstart_users::table
        .filter(quickstart_users::email.eq("bulk42@example.com"))
        .select(UserLogin::columns());
    let plan = db.explain(lookup)?;
    let login: UserLogin = db.first(lookup)?;
    let steps: Vec<String> = plan.nodes.iter().map(|n| n.node_type.clone()).collect();
    println!(
        "login lookup of {}: {steps:?}; index-only scan: {}",
        login.email,
        plan.is_index_only_scan()
    );
    if db.backend() == orm::Backend::Sqlite {
        // SQLite takes a UNIQUE column's own index for an equality lookup, before any other.
        println!("  (SQLite looks up a UNIQUE column through its unique index; by name:)");
        let by_name = quickstart_users::table
            .filter(quickstart_users::name.eq("Bulk 42"))
            .select((quickstart_users::id, quickstart_users::score));
        let plan = db.explain(by_name)?;
        println!(
            "  lookup by name: index-only scan: {}",
            plan.is_index_only_scan()
        );
    }
    print!("{}", db.index_report(&[User::TABLE])?);
    Ok(())
}

/// A materialized view: created from its query, refreshed by hand and on a schedule.
fn materialized_view(db: &Database) -> Result<(), Box<dyn std::error::Error>> {
    db.drop_view::<SalesSummary>()?;
    db.drop_table::<Order>()?;
    db.create_table::<Order>()?;
    for (product_id, quantity, unit_price) in [(1, 2, 10.0), (1, 3, 20.0), (2, 5, 7.5)] {
        db.insert::<Order>(&NewOrder {
            product_id,
            quantity,
            unit_price,
        })?;
    }
    db.create_view::<SalesSummary>()?;
    let summary: Vec<SalesSummary> = db.load(quickstart_sales_summary::table)?;
    println!("sales summary: {summary:?}");

    db.insert::<Order>(&NewOrder {
        product_id: 2,
        quantity: 1,
        unit_price: 9.5,
    })?;
    let refreshed = db.refresh_concurrently::<SalesSummary>()?;
    let two: SalesSummary = db.first(
        quickstart_sales_summary::table.filter(quickstart_sales_summary::product_id.eq(2)),
    )?;
    println!(
        "after a refresh ({:.2?}): product 2 sold {}",
        refreshed.duration(),
        two.total_sold
    );

    // On a schedule: never two refreshes of one view at once, failures retried with backoff.
    let refresher = orm::schema::Refresher::every(std::time::Duration::from_millis(50))
        .view::<SalesSummary>()
        .start(db)?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let status = &refresher.status()[0];
    println!(
        "refresher: {} refreshes, {} failures, last took {:?}",
        status.refreshes, status.failures, status.last_duration
    );
    refresher.stop();
    Ok(())
}
