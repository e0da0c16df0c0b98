//! Cached reads of a materialized view: a write to the base table leaves them as they are (the
//! view has not changed), and a refresh, by hand or by the scheduled `Refresher`, makes the
//! next cached read load the refreshed rows.

use crate::common;

use orm::prelude::*;
use std::time::{Duration, Instant};

use orm::cache::{Cache, CachedReads};
use orm::schema::Refresher;
use orm::{Database, Model};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = orders)]
pub struct Order {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub product_id: i64,
    pub quantity: i32,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    materialized_view = "sales_totals",
    query = "SELECT product_id, SUM(quantity) AS total_sold FROM orders GROUP BY product_id",
    index(name = "sales_totals_product", on(product_id), unique),
    partial(SalesProduct = [product_id]),
)]
pub struct SalesTotal {
    pub product_id: i64,
    pub total_sold: i64,
}

fn order(db: &Database, product_id: i64, quantity: i32) {
    db.insert::<Order>(&NewOrder {
        product_id,
        quantity,
    })
    .unwrap();
}

fn totals(db: &Database, cache: &Cache) -> Vec<(i64, i64)> {
    let mut rows: Vec<(i64, i64)> = db
        .cached(cache)
        .load::<_, SalesTotal>(sales_totals::table)
        .unwrap()
        .into_iter()
        .map(|r| (r.product_id, r.total_sold))
        .collect();
    rows.sort();
    rows
}

#[test]
fn a_refresh_invalidates_cached_view_reads() {
    for db in common::backends("view_cache_refresh") {
        let cache = Cache::in_process();
        db.create_table::<Order>().unwrap();
        order(&db, 1, 2);
        db.create_view::<SalesTotal>().unwrap();

        assert_eq!(totals(&db, &cache), [(1, 2)], "{:?}", db.backend());
        assert_eq!(totals(&db, &cache), [(1, 2)]);
        let stats = cache.stats();
        assert_eq!((stats.misses, stats.hits), (1, 1), "{:?}", db.backend());

        // The base table changes, the view does not: the cached result is still the view's.
        order(&db, 1, 3);
        assert_eq!(totals(&db, &cache), [(1, 2)]);
        assert_eq!(
            cache.stats().hits,
            2,
            "a write of the base table leaves the view fresh"
        );

        db.refresh::<SalesTotal>().unwrap();
        assert_eq!(totals(&db, &cache), [(1, 5)], "{:?}", db.backend());
        assert_eq!(
            cache.stats().stale,
            1,
            "the entry from before the refresh was not served"
        );

        // A partial of the view is cached and invalidated the same way.
        let products: Vec<SalesProduct> = db.cached(&cache).load_all().unwrap();
        assert_eq!(products.len(), 1);
        order(&db, 2, 1);
        db.refresh::<SalesTotal>().unwrap();
        let products: Vec<SalesProduct> = db.cached(&cache).load_all().unwrap();
        assert_eq!(products.len(), 2, "{:?}", db.backend());
    }
}

#[test]
fn a_scheduled_refresh_invalidates_cached_view_reads() {
    for db in common::backends("view_cache_refresher") {
        let cache = Cache::in_process();
        db.create_table::<Order>().unwrap();
        order(&db, 1, 2);
        db.create_view::<SalesTotal>().unwrap();
        assert_eq!(totals(&db, &cache), [(1, 2)]);

        order(&db, 1, 3);
        let refresher = Refresher::every(Duration::from_millis(50))
            .view::<SalesTotal>()
            .start(&db)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while refresher.status()[0].refreshes == 0 {
            assert!(Instant::now() < deadline, "no refresh within 30 s");
            std::thread::sleep(Duration::from_millis(10));
        }
        refresher.stop();
        assert_eq!(totals(&db, &cache), [(1, 5)], "{:?}", db.backend());
    }
}
