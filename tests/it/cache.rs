//! Query-result caching through `Database`, on SQLite and PostgreSQL, with the in-process
//! backend and with the shared Redis (each test under its own key prefix): hits, invalidation
//! by every kind of write, transactions, refused queries, single-flight, and the 4-thread
//! stale-read test.

use crate::common;

use orm::prelude::*;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::Duration;

use diesel::prelude::*;
use orm::cache::{Cache, CacheConfig, CacheKey, CachedReads, Redis, RedisConfig};
use orm::{Database, Error, Model};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = accounts, partial(AccountCard = [id, name]), cache(ttl = 60))]
pub struct Account {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
    pub balance: i64,
    pub doc: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = notes)]
pub struct Note {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub account_id: i64,
    pub body: String,
}

/// Array columns (PostgreSQL arrays, JSON text on SQLite) are cached like any other.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = tagged)]
pub struct Tagged {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub tags: Vec<String>,
    pub scores: Vec<Option<i32>>,
}

diesel::allow_tables_to_appear_in_same_query!(accounts, notes);

/// A Redis cache under a prefix of its own, so concurrent tests never share keys.
fn redis_cache(test: &str) -> Option<Cache> {
    let url = common::server_url("ORM_TEST_REDIS_URL", test)?;
    let prefix = format!("t:{test}:{}:{}:", std::process::id(), unique());
    let redis = Redis::new(
        &url,
        RedisConfig {
            prefix,
            ..RedisConfig::default()
        },
    )
    .expect("redis url");
    Some(Cache::new(redis, CacheConfig::default()))
}

fn unique() -> u64 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    nanos ^ NEXT.fetch_add(1, Ordering::Relaxed) as u64
}

/// Every (database, cache) pair to run a body on: SQLite and PostgreSQL, each with the
/// in-process cache and Redis.
fn setups(test: &str) -> Vec<(Database, Cache)> {
    let mut out = Vec::new();
    for db in common::backends(test) {
        db.create_table::<Account>().unwrap();
        db.create_table::<Note>().unwrap();
        out.push((db.clone(), Cache::in_process()));
        if let Some(cache) = redis_cache(test) {
            out.push((db, cache));
        }
    }
    out
}

fn new_account(name: &str, balance: i64) -> NewAccount {
    NewAccount {
        name: name.to_owned(),
        balance,
        doc: Some(serde_json::json!({"tags": ["a", "b"], "n": 1.5})),
    }
}

#[test]
fn find_hits_until_a_write_then_loads_the_new_row() {
    for (db, cache) in setups("cache_find") {
        let ada = db.insert::<Account>(&new_account("Ada", 10)).unwrap();
        let first = db.cached(&cache).find::<Account>(ada.id).unwrap();
        assert_eq!(first, ada);
        assert_eq!((cache.stats().misses, cache.stats().hits), (1, 0));
        let checkouts = db.pool_state()[0].checkouts;
        let second = db.cached(&cache).find::<Account>(ada.id).unwrap();
        assert_eq!(second, ada, "JSON and every column survive the codec");
        assert_eq!(cache.stats().hits, 1);
        assert_eq!(
            db.pool_state()[0].checkouts,
            checkouts,
            "a hit checks out no connection"
        );

        let changed = Account {
            balance: 20,
            ..ada.clone()
        };
        db.update(&changed).unwrap();
        assert_eq!(db.cached(&cache).find::<Account>(ada.id).unwrap(), changed);
        assert_eq!(
            cache.stats().stale,
            1,
            "the entry from before the update was not served"
        );
        assert_eq!(db.cached(&cache).find::<Account>(ada.id).unwrap(), changed);
        assert_eq!(cache.stats().hits, 2);

        // A write of another table leaves the entry fresh.
        db.insert::<Note>(&NewNote {
            account_id: ada.id,
            body: "x".into(),
        })
        .unwrap();
        db.cached(&cache).find::<Account>(ada.id).unwrap();
        assert_eq!(cache.stats().hits, 3);

        // Delete: the cached row is not served any more.
        db.delete::<Account>(ada.id).unwrap();
        assert!(matches!(
            db.cached(&cache).find::<Account>(ada.id),
            Err(Error::NotFound { .. })
        ));
        // The key the derive gives is the key find stores under.
        assert!(Account::cache_key(&ada.id)
            .as_str()
            .starts_with("orm:accounts:"));
        assert_eq!(Account::TABLE.cache_ttl, Some(Duration::from_secs(60)));
    }
}

#[test]
fn every_kind_of_write_invalidates() {
    for (db, cache) in setups("cache_writes") {
        let a = db.insert::<Account>(&new_account("A", 1)).unwrap();
        let read = || db.cached(&cache).find::<Account>(a.id).unwrap().balance;
        let assert_stale_then_hit = |expected: i64, what: &str| {
            let stale = cache.stats().stale;
            assert_eq!(read(), expected, "{what}");
            assert_eq!(
                cache.stats().stale,
                stale + 1,
                "{what} made the entry stale"
            );
            let hits = cache.stats().hits;
            assert_eq!(read(), expected);
            assert_eq!(cache.stats().hits, hits + 1);
        };
        read();
        read();

        // A Diesel statement: its tables are unknown, so every entry goes stale.
        db.execute(
            diesel::update(accounts::table.filter(accounts::id.eq(a.id)))
                .set(accounts::balance.eq(2)),
        )
        .unwrap();
        assert_stale_then_hit(2, "execute");

        // SQL text.
        db.batch_execute(&format!(
            "UPDATE accounts SET balance = 3 WHERE id = {}",
            a.id
        ))
        .unwrap();
        assert_stale_then_hit(3, "batch_execute");

        // A committed transaction.
        db.transaction(|conn| {
            let mut row = conn.find::<Account>(a.id)?;
            row.balance = 4;
            conn.update(&row)?;
            Ok(())
        })
        .unwrap();
        assert_stale_then_hit(4, "committed transaction");

        // A transaction that rolls back changes nothing and bumps nothing.
        let result: orm::Result<()> = db.transaction(|conn| {
            let mut row = conn.find::<Account>(a.id)?;
            row.balance = 999;
            conn.update(&row)?;
            Err(Error::NotFound { table: "accounts" })
        });
        assert!(result.is_err());
        let hits = cache.stats().hits;
        assert_eq!(read(), 4);
        assert_eq!(
            cache.stats().hits,
            hits + 1,
            "a rolled-back transaction bumps nothing"
        );

        // A savepoint rolled back inside a committed transaction: the outer write still bumps.
        db.transaction(|conn| {
            let mut row = conn.find::<Account>(a.id)?;
            row.balance = 5;
            conn.update(&row)?;
            let _ = conn.transaction(|inner| -> orm::Result<()> {
                inner.insert::<Note>(&NewNote {
                    account_id: 1,
                    body: "n".into(),
                })?;
                Err(Error::NotFound { table: "notes" })
            });
            Ok(())
        })
        .unwrap();
        assert_stale_then_hit(5, "transaction with a rolled-back savepoint");

        // Bulk insert bumps its table: a cached list of all rows sees the new ones.
        let before = db
            .cached(&cache)
            .load::<_, Account>(accounts::table)
            .unwrap()
            .len();
        db.bulk_insert::<Account, _>(
            vec![new_account("B", 1), new_account("C", 1)],
            orm::bulk::BulkOptions::default(),
        )
        .unwrap();
        assert_eq!(
            db.cached(&cache)
                .load::<_, Account>(accounts::table)
                .unwrap()
                .len(),
            before + 2
        );

        // A failed autocommit write (a statement may have run) still bumps.
        db.cached(&cache).find::<Account>(a.id).unwrap();
        let stale = cache.stats().stale;
        assert!(db
            .batch_execute("UPDATE accounts SET balance = 6; SELECT no_such_column FROM accounts")
            .is_err());
        let now = db.cached(&cache).find::<Account>(a.id).unwrap().balance;
        let actual = db.find::<Account>(a.id).unwrap().balance;
        assert_eq!(now, actual);
        assert_eq!(cache.stats().stale, stale + 1);

        // A write through a clone, a session and a pinned handle: the cache is attached to
        // the database, not to one handle.
        for (i, handle) in [db.clone(), db.session(), db.primary()]
            .into_iter()
            .enumerate()
        {
            let mut row = db.find::<Account>(a.id).unwrap();
            row.balance = 100 + i as i64;
            handle.update(&row).unwrap();
            assert_eq!(read(), 100 + i as i64);
        }
    }
}

#[test]
fn partials_queries_and_joins() {
    for (db, cache) in setups("cache_queries") {
        let a = db.insert::<Account>(&new_account("Ann", 5)).unwrap();
        let b = db.insert::<Account>(&new_account("Bob", 7)).unwrap();
        db.insert::<Note>(&NewNote {
            account_id: a.id,
            body: "hello".into(),
        })
        .unwrap();

        let card: AccountCard = db.cached(&cache).find_as::<AccountCard>(a.id).unwrap();
        assert_eq!(
            card,
            AccountCard {
                id: a.id,
                name: "Ann".into()
            }
        );
        assert_eq!(
            db.cached(&cache).find_as::<AccountCard>(a.id).unwrap(),
            card
        );
        let cards: Vec<AccountCard> = db.cached(&cache).load_all::<AccountCard>().unwrap();
        assert_eq!(cards.len(), db.load_all::<AccountCard>().unwrap().len());
        assert!(cards.contains(&card));

        let rich = || {
            db.cached(&cache)
                .load::<_, (i64, String)>(
                    accounts::table
                        .filter(accounts::balance.gt(6))
                        .select((accounts::id, accounts::name))
                        .order(accounts::id),
                )
                .unwrap()
        };
        assert!(rich().contains(&(b.id, "Bob".to_owned())));
        let hits = cache.stats().hits;
        assert!(rich().contains(&(b.id, "Bob".to_owned())));
        assert_eq!(cache.stats().hits, hits + 1);
        // Another bound value is another key.
        let other = db
            .cached(&cache)
            .load::<_, i64>(
                accounts::table
                    .filter(accounts::balance.gt(100))
                    .select(accounts::id),
            )
            .unwrap();
        assert!(other.is_empty());

        // A join depends on both tables: a write of the second one makes it stale.
        let joined = || {
            db.cached(&cache)
                .load::<_, (String, String)>(
                    accounts::table
                        .inner_join(notes::table.on(notes::account_id.eq(accounts::id)))
                        .select((accounts::name, notes::body))
                        .order(notes::id),
                )
                .unwrap()
        };
        let joined_before = joined().len();
        assert!(joined_before >= 1);
        db.insert::<Note>(&NewNote {
            account_id: b.id,
            body: "again".into(),
        })
        .unwrap();
        assert_eq!(
            joined().len(),
            joined_before + 1,
            "a write of the joined table invalidates"
        );

        // The partial also went stale with the table.
        let mut renamed = db.find::<Account>(a.id).unwrap();
        renamed.name = "Anna".into();
        db.update(&renamed).unwrap();
        assert_eq!(
            db.cached(&cache).find_as::<AccountCard>(a.id).unwrap().name,
            "Anna"
        );
    }
}

#[test]
fn queries_whose_tables_cannot_be_known_are_refused() {
    for (db, cache) in setups("cache_refused") {
        let a = db.insert::<Account>(&new_account("Raw", 5)).unwrap();
        // SQL text inside a DSL query: a table diesel does not quote.
        let hidden = accounts::table
            .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                "id IN (SELECT account_id FROM notes)",
            ))
            .select(accounts::id);
        let refused = db.cached(&cache).load::<_, i64>(hidden);
        assert!(
            matches!(refused, Err(Error::Uncacheable { .. })),
            "{refused:?}"
        );
        assert_eq!(cache.stats().loads, 0, "nothing was read");

        // Declared, it is cached and invalidated by writes of the declared table.
        let query = || {
            accounts::table
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "id IN (SELECT account_id FROM notes)",
                ))
                .select(accounts::id)
                .order(accounts::id)
        };
        let declared = || {
            db.cached(&cache)
                .reads::<Note>()
                .load::<_, i64>(query())
                .unwrap()
        };
        let before = declared();
        assert!(!before.contains(&a.id));
        assert_eq!(before, db.load::<_, i64>(query()).unwrap());
        db.insert::<Note>(&NewNote {
            account_id: a.id,
            body: "n".into(),
        })
        .unwrap();
        assert!(
            declared().contains(&a.id),
            "a write of the declared table invalidates"
        );
    }
}

#[test]
fn one_loader_per_key_and_corrupt_values_are_misses() {
    let cache = Cache::in_process();
    let key = CacheKey::for_query::<Account>(b"expensive");
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(8);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                barrier.wait();
                let v: i64 = cache
                    .get_or_load(&key, None, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(200));
                        Ok::<_, Error>(42)
                    })
                    .unwrap();
                assert_eq!(v, 42);
            });
        }
    });
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "single-flight: one load for 8 readers"
    );
    assert_eq!(cache.stats().hits, 7);

    // A value of another type under the same key is a miss, not an error or a panic.
    let other: String = cache
        .get_or_load(&key, None, || Ok::<_, Error>("text".to_owned()))
        .unwrap();
    assert_eq!(other, "text");
    // A failed load is returned and not cached.
    let failed: Result<i64, &str> =
        cache.get_or_load(&CacheKey::for_query::<Account>(b"f"), None, || Err("no"));
    assert_eq!(failed, Err("no"));
}

/// Several processes (two caches over one Redis stand in for them) missing the same key: with
/// the cross-process lock, one loads and the others take its entry.
#[test]
fn cross_process_lock_lets_one_process_load() {
    let Some(url) = common::server_url("ORM_TEST_REDIS_URL", "cache_lock") else {
        return;
    };
    let prefix = format!("t:lock:{}:{}:", std::process::id(), unique());
    let caches: Vec<Cache> = (0..4)
        .map(|_| {
            let redis = Redis::new(
                &url,
                RedisConfig {
                    prefix: prefix.clone(),
                    ..RedisConfig::default()
                },
            )
            .unwrap();
            Cache::new(
                redis,
                CacheConfig {
                    lock: Some(Duration::from_secs(2)),
                    ..CacheConfig::default()
                },
            )
        })
        .collect();
    let key = CacheKey::for_query::<Account>(b"locked");
    let loads = AtomicUsize::new(0);
    let barrier = Barrier::new(caches.len());
    std::thread::scope(|s| {
        for cache in &caches {
            s.spawn(|| {
                barrier.wait();
                let v: i64 = cache
                    .get_or_load(&key, None, || {
                        loads.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(300));
                        Ok::<_, Error>(7)
                    })
                    .unwrap();
                assert_eq!(v, 7);
            });
        }
    });
    assert_eq!(loads.load(Ordering::SeqCst), 1);
}

/// Two tiers: entries in process and in Redis, generations in Redis, so a write made through
/// another process's cache (another `Cache` on the same Redis) invalidates this one's tier.
#[test]
fn tiered_cache_sees_other_processes_writes() {
    let Some(url) = common::server_url("ORM_TEST_REDIS_URL", "cache_tiered") else {
        return;
    };
    let prefix = format!("t:tiered:{}:{}:", std::process::id(), unique());
    let config = RedisConfig {
        prefix,
        ..RedisConfig::default()
    };
    let ours = Cache::tiered(&url, config.clone(), CacheConfig::default()).unwrap();
    let theirs = Cache::new(Redis::new(&url, config).unwrap(), CacheConfig::default());
    let Some(db) = common::backends("cache_tiered").into_iter().next() else {
        return;
    };
    db.create_table::<Account>().unwrap();
    let a = db.insert::<Account>(&new_account("T", 1)).unwrap();
    db.cached(&ours).find::<Account>(a.id).unwrap();
    db.cached(&ours).find::<Account>(a.id).unwrap();
    assert_eq!(ours.stats().hits, 1);
    // The other process writes (its cache bumps the table's generation in Redis).
    db.batch_execute(&format!(
        "UPDATE accounts SET balance = 9 WHERE id = {}",
        a.id
    ))
    .unwrap();
    theirs.invalidate_tables(&["accounts"]);
    assert_eq!(db.cached(&ours).find::<Account>(a.id).unwrap().balance, 9);
}

/// 4 threads, 10,000 random interleaved cached reads and writes on one small table: every
/// cached read returns what the database held after the last write that completed before the
/// read began (or a newer value, from a write still in progress).
fn no_stale_reads(db: &Database, cache: &Cache) {
    const ROWS: usize = 4;
    const THREADS: usize = 4;
    const OPS: usize = 10_000;
    db.create_table::<Account>().unwrap();
    let ids: Vec<i64> = (0..ROWS)
        .map(|i| {
            db.insert::<Account>(&NewAccount {
                name: format!("r{i}"),
                balance: 0,
                doc: None,
            })
            .unwrap()
            .id
        })
        .collect();
    // Per row: the version of the last completed write, and a lock that orders its writers
    // (so versions are the order of commits).
    let completed: Vec<AtomicI64> = (0..ROWS).map(|_| AtomicI64::new(0)).collect();
    let started: Vec<AtomicI64> = (0..ROWS).map(|_| AtomicI64::new(0)).collect();
    let writers: Vec<Mutex<()>> = (0..ROWS).map(|_| Mutex::new(())).collect();
    let stale = AtomicUsize::new(0);
    let reads = AtomicUsize::new(0);
    let ops = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (ids, completed, started, writers) = (&ids, &completed, &started, &writers);
            let (stale, reads, ops) = (&stale, &reads, &ops);
            s.spawn(move || {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (t as u64 + 1);
                while ops.fetch_add(1, Ordering::Relaxed) < OPS {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let row = (rng % ROWS as u64) as usize;
                    match (rng >> 8) % 10 {
                        // Writes, 30%: an update, a Diesel statement, a transaction.
                        kind @ 0..=2 => {
                            let _order = writers[row].lock().unwrap();
                            let version = completed[row].load(Ordering::SeqCst) + 1;
                            started[row].store(version, Ordering::SeqCst);
                            match kind {
                                0 => {
                                    db.update(&Account {
                                        id: ids[row],
                                        name: format!("r{row}"),
                                        balance: version,
                                        doc: None,
                                    })
                                    .unwrap();
                                }
                                1 => {
                                    db.execute(
                                        diesel::update(
                                            accounts::table.filter(accounts::id.eq(ids[row])),
                                        )
                                        .set(accounts::balance.eq(version)),
                                    )
                                    .unwrap();
                                }
                                _ => {
                                    db.transaction(|conn| {
                                        let mut a = conn.find::<Account>(ids[row])?;
                                        a.balance = version;
                                        conn.update(&a)
                                    })
                                    .unwrap();
                                }
                            }
                            completed[row].store(version, Ordering::SeqCst);
                        }
                        // Reads, 70%: one row by key, or the whole table through a query.
                        kind => {
                            let floor: Vec<i64> =
                                completed.iter().map(|c| c.load(Ordering::SeqCst)).collect();
                            let seen: Vec<(usize, i64)> = if kind < 7 {
                                vec![(
                                    row,
                                    db.cached(cache).find::<Account>(ids[row]).unwrap().balance,
                                )]
                            } else {
                                db.cached(cache)
                                    .load::<_, (i64, i64)>(
                                        accounts::table.select((accounts::id, accounts::balance)),
                                    )
                                    .unwrap()
                                    .into_iter()
                                    .map(|(id, b)| (ids.iter().position(|i| *i == id).unwrap(), b))
                                    .collect()
                            };
                            for (r, balance) in seen {
                                let ceiling = started[r].load(Ordering::SeqCst);
                                reads.fetch_add(1, Ordering::Relaxed);
                                if balance < floor[r] || balance > ceiling {
                                    stale.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                    }
                }
            });
        }
    });
    let stats = cache.stats();
    assert_eq!(
        stale.load(Ordering::SeqCst),
        0,
        "stale reads, of {} ({stats:?})",
        reads.load(Ordering::SeqCst)
    );
    assert!(stats.hits > 1000, "the cache served reads: {stats:?}");
    assert!(stats.stale > 0, "writes made entries stale: {stats:?}");
}

#[test]
fn no_stale_reads_under_concurrent_writes_postgres_redis() {
    let Some(db) = common::postgres("cache_stale_pg") else {
        return;
    };
    let Some(cache) = redis_cache("cache_stale_pg") else {
        return;
    };
    no_stale_reads(&db, &cache);
}

#[test]
fn no_stale_reads_under_concurrent_writes_postgres_in_process() {
    let Some(db) = common::postgres("cache_stale_pg_mem") else {
        return;
    };
    no_stale_reads(&db, &Cache::in_process());
}

#[cfg(feature = "sqlite")]
#[test]
fn no_stale_reads_under_concurrent_writes_sqlite() {
    // In memory: one connection, so the threads' database work takes turns; hits need none.
    let db = Database::connect("sqlite::memory:").unwrap();
    no_stale_reads(&db, &Cache::in_process());
}

/// With a streaming replica, a cached read never loads there: a miss right after a write must
/// see it, and the replica may not have replayed it yet.
#[test]
fn misses_load_on_the_primary_not_a_lagging_replica() {
    let Some(primary_url) = common::postgres_url("cache_replica") else {
        return;
    };
    let Some(replica_url) = common::server_url("ORM_TEST_PG_REPLICA_URL", "cache_replica") else {
        return;
    };
    let sep = if replica_url.contains('?') { '&' } else { '?' };
    let replica_url = format!("{replica_url}{sep}options=-csearch_path%3Dorm_t_cache_replica");
    let db = Database::builder(&primary_url)
        .replica(&replica_url)
        .connect()
        .unwrap();
    db.create_table::<Account>().unwrap();
    let cache = Cache::in_process();
    let mut row = db.insert::<Account>(&new_account("R", 0)).unwrap();
    let replica_checkouts =
        |db: &Database| -> u64 { db.pool_state().iter().skip(1).map(|s| s.checkouts).sum() };
    let before = replica_checkouts(&db);
    for i in 1..=50 {
        row.balance = i;
        db.update(&row).unwrap();
        assert_eq!(
            db.cached(&cache).find::<Account>(row.id).unwrap().balance,
            i
        );
        assert_eq!(
            db.cached(&cache)
                .load::<_, i64>(accounts::table.select(accounts::balance))
                .unwrap(),
            vec![i]
        );
    }
    assert_eq!(
        replica_checkouts(&db),
        before,
        "no cached read went to the replica"
    );
    // Each write made both entries stale; the first round found none.
    assert_eq!((cache.stats().misses, cache.stats().stale), (2, 98));
}

#[test]
fn array_columns_round_trip_through_the_cache() {
    for db in common::backends("cache_arrays") {
        db.create_table::<Tagged>().unwrap();
        let cache = Cache::in_process();
        let row = db
            .insert::<Tagged>(&NewTagged {
                tags: vec!["a".into(), "b,c".into(), String::new()],
                scores: vec![Some(1), None, Some(-3)],
            })
            .unwrap();
        assert_eq!(db.cached(&cache).find::<Tagged>(row.id).unwrap(), row);
        assert_eq!(db.cached(&cache).find::<Tagged>(row.id).unwrap(), row);
        assert_eq!(cache.stats().hits, 1);
    }
}

#[test]
fn keys_are_stable_across_processes() {
    // The same row gives the same key in every process and every run: the table, the schema
    // fingerprint, then xxh3 of `row:{key:?}`, a specified hash. The constant is that hash of
    // `row:7`; it changes only if the key's derivation does, which would orphan every entry.
    let key = Account::cache_key(&7);
    assert_eq!(key, CacheKey::for_row::<Account>(&7));
    assert_ne!(key, Account::cache_key(&8));
    assert_eq!(
        key.as_str(),
        format!(
            "orm:accounts:{:016x}:132bebea0a0760f1",
            Account::TABLE.fingerprint
        )
    );
    assert_eq!(key.tables(), ["accounts"]);
}
