//! `cache`: cached reads through `orm-cache` against what they save and what bounds them.
//!
//! One thread, `--reads` reads of a `User` by primary key (cycling over 1,000 keys, all warm):
//! (a) a hit in Redis through `db.cached(&cache).find`, (b) a raw `redis` crate GET of the same
//! entry's bytes (the floor a hit cannot beat), (c) the uncached read through `Database`, (d) a
//! hit in the in-process cache. Then the article's heavy query, `email ILIKE '%@company.com'
//! AND last_login > now() - interval '30 days'` over `--users` users: (e) cached, (f)
//! uncached, `--heavy-reads` each. p50, p99 and ops/s for each; ratios beside their targets.
//! Also the codec measurement behind the choice of bincode: encode and decode of the heavy
//! query's rows with postcard, bincode (serde) and MessagePack (rmp-serde).
//!
//! PostgreSQL on `sslmode=disable` (TLS with `--tls`); Redis at `ORM_BENCH_REDIS_URL` (default
//! `redis://127.0.0.1:6379`), under a key prefix of this run's own.

use orm::prelude::*;
use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::bulk::BulkOptions;
use orm::cache::{Cache, CacheConfig, CachedReads, Redis, RedisConfig};
use orm::Model;
use serde::{Deserialize, Serialize};

use crate::report::{self, Ratio, Target};
use crate::transport::env_url;
use crate::{BenchResult, Flags, SCHEMA};

/// The benchmark's users table.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = bench_cache_users)]
pub struct CacheUser {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
    pub name: String,
    pub last_login: DateTime<Utc>,
    pub score: i32,
}

/// The same row as a plain serde struct, for the codec comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CodecRow {
    id: i64,
    email: String,
    name: String,
    last_login: DateTime<Utc>,
    score: i32,
}

/// Distinct keys the point reads cycle over.
const KEYS: i64 = 1000;

/// Latencies of one method.
struct Latencies {
    name: &'static str,
    label: String,
    samples: Vec<Duration>,
    total: Duration,
}

impl Latencies {
    fn measure(
        name: &'static str,
        label: &str,
        n: usize,
        mut op: impl FnMut(usize) -> BenchResult<()>,
    ) -> BenchResult<Self> {
        let mut samples = Vec::with_capacity(n);
        let start = Instant::now();
        for i in 0..n {
            let t = Instant::now();
            op(i)?;
            samples.push(t.elapsed());
        }
        let total = start.elapsed();
        samples.sort_unstable();
        Ok(Self {
            name,
            label: label.to_owned(),
            samples,
            total,
        })
    }

    fn percentile(&self, p: f64) -> Duration {
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples.get(i).copied().unwrap_or_default()
    }

    fn p50_us(&self) -> f64 {
        self.percentile(0.5).as_secs_f64() * 1e6
    }

    fn p99_us(&self) -> f64 {
        self.percentile(0.99).as_secs_f64() * 1e6
    }

    fn ops(&self) -> f64 {
        report::per_second(self.samples.len(), self.total)
    }
}

/// Create and fill the users table unless it already holds `users` rows of this shape: 10%
/// of emails at `company.com`, last logins spread over 60 days.
fn fill(db: &orm::Database, users: usize) -> BenchResult<()> {
    db.create_table::<CacheUser>()?;
    let count: Vec<i64> = db.load(bench_cache_users::table.count())?;
    if count.first().copied() == Some(users as i64) {
        println!("bench_cache_users already holds {users} rows: not refilled");
        return Ok(());
    }
    println!("filling bench_cache_users with {users} rows…");
    db.drop_table::<CacheUser>()?;
    db.create_table::<CacheUser>()?;
    let now = Utc::now();
    let rows = (0..users).map(|i| NewCacheUser {
        email: if i % 10 == 0 {
            format!("user{i}@company.com")
        } else {
            format!("user{i}@example.org")
        },
        name: format!("User {i}"),
        last_login: now - chrono::Duration::minutes(((i * 7919) % (60 * 24 * 60)) as i64),
        score: (i % 1000) as i32,
    });
    CacheUser::bulk_insert(db, rows, BulkOptions::default())?;
    db.batch_execute("VACUUM ANALYZE bench_cache_users")?;
    Ok(())
}

/// The article's heavy query.
fn heavy_query() -> diesel::dsl::Filter<
    diesel::dsl::Filter<
        bench_cache_users::table,
        diesel::dsl::ILike<bench_cache_users::email, &'static str>,
    >,
    diesel::expression::SqlLiteral<diesel::sql_types::Bool>,
> {
    bench_cache_users::table
        .filter(bench_cache_users::email.ilike("%@company.com"))
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "last_login > now() - interval '30 days'",
        ))
}

/// Encode and decode `rows` with each codec: (name, bytes, encode+decode median).
fn codecs(rows: &[CodecRow]) -> BenchResult<Vec<(&'static str, usize, Duration)>> {
    let runs = 15;
    let mut out = Vec::new();
    let time = |f: &mut dyn FnMut() -> BenchResult<usize>| -> BenchResult<(usize, Duration)> {
        let mut samples = Vec::new();
        let mut size = 0;
        for _ in 0..runs {
            let t = Instant::now();
            size = f()?;
            samples.push(t.elapsed());
        }
        Ok((size, report::median(&samples)))
    };
    let rows_owned = rows.to_vec();
    let (size, t) = time(&mut || {
        let bytes = postcard::to_stdvec(&rows_owned)?;
        let back: Vec<CodecRow> = postcard::from_bytes(&bytes)?;
        black_box(back);
        Ok(bytes.len())
    })?;
    out.push(("postcard", size, t));
    let (size, t) = time(&mut || {
        let config = bincode::config::standard();
        let bytes = bincode::serde::encode_to_vec(&rows_owned, config)?;
        let (back, _): (Vec<CodecRow>, usize) = bincode::serde::decode_from_slice(&bytes, config)?;
        black_box(back);
        Ok(bytes.len())
    })?;
    out.push(("bincode", size, t));
    let (size, t) = time(&mut || {
        let bytes = rmp_serde::to_vec(&rows_owned)?;
        let back: Vec<CodecRow> = rmp_serde::from_slice(&bytes)?;
        black_box(back);
        Ok(bytes.len())
    })?;
    out.push(("rmp-serde", size, t));
    Ok(out)
}

/// `orm-bench cache [--reads N] [--users N] [--heavy-reads N] [--tls]`.
pub fn run(mut flags: Flags) -> BenchResult<()> {
    let reads = flags.usize("reads", 100_000)?.max(1000);
    let users = flags.usize("users", 200_000)?.max(KEYS as usize);
    let heavy_reads = flags.usize("heavy-reads", 100)?.max(5);
    let transport = flags.transport();
    flags.finish()?;
    let redis_url = env_url("ORM_BENCH_REDIS_URL", "redis://127.0.0.1:6379");

    let db = transport.database()?;
    fill(&db, users)?;
    let prefix = format!(
        "bench:{}:{}:",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let redis_cache = Cache::new(
        Redis::new(
            &redis_url,
            RedisConfig {
                prefix: prefix.clone(),
                ..RedisConfig::default()
            },
        )?,
        CacheConfig::default(),
    );
    let memory_cache = Cache::in_process();
    let ids: Vec<i64> = db.load(
        bench_cache_users::table
            .select(bench_cache_users::id)
            .order(bench_cache_users::id)
            .limit(KEYS),
    )?;
    let id = |i: usize| ids[i % ids.len()];
    // Warm both caches, and check that what they serve is what the database holds.
    for &key in &ids {
        let direct = db.find::<CacheUser>(key)?;
        for cache in [&redis_cache, &memory_cache] {
            db.cached(cache).find::<CacheUser>(key)?;
            if db.cached(cache).find::<CacheUser>(key)? != direct {
                return Err("a cached row differs from the database's".into());
            }
        }
    }
    let mut raw = redis::Client::open(redis_url.as_str())?.get_connection()?;
    let raw_keys: Vec<String> = ids
        .iter()
        .map(|k| format!("{prefix}{}", CacheUser::cache_key(k)))
        .collect();
    let tl = transport.label();
    println!(
        "{reads} point reads over {} keys, one thread; PostgreSQL on {tl}",
        ids.len()
    );

    let hits_before = redis_cache.stats().hits;
    let a = Latencies::measure("redis_hit", "(a) orm-cache Redis hit", reads, |i| {
        black_box(db.cached(&redis_cache).find::<CacheUser>(id(i))?);
        Ok(())
    })?;
    if redis_cache.stats().hits - hits_before != reads as u64 {
        return Err(format!("not every Redis read was a hit: {:?}", redis_cache.stats()).into());
    }
    let b = Latencies::measure("raw_get", "(b) raw redis GET of the entry", reads, |i| {
        let bytes: Vec<u8> = redis::cmd("GET")
            .arg(&raw_keys[i % raw_keys.len()])
            .query(&mut raw)?;
        black_box(bytes);
        Ok(())
    })?;
    let b2 = Latencies::measure(
        "raw_mget3",
        "(b') raw MGET of entry + 2 generations",
        reads,
        |i| {
            let bytes: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                .arg(&raw_keys[i % raw_keys.len()])
                .arg(format!("{prefix}orm:gen:*"))
                .arg(format!("{prefix}orm:gen:bench_cache_users"))
                .query(&mut raw)?;
            black_box(bytes);
            Ok(())
        },
    )?;
    let c = Latencies::measure(
        "db_find",
        &format!("(c) uncached db.find ({tl})"),
        reads,
        |i| {
            black_box(db.find::<CacheUser>(id(i))?);
            Ok(())
        },
    )?;
    let d = Latencies::measure("inproc_hit", "(d) orm-cache in-process hit", reads, |i| {
        black_box(db.cached(&memory_cache).find::<CacheUser>(id(i))?);
        Ok(())
    })?;

    let mut heavy_rows: Vec<CacheUser> = db.postgres()?.load(heavy_query())?;
    println!(
        "heavy query: {} of {users} users, {heavy_reads} reads each way",
        heavy_rows.len()
    );
    let mut cached_rows: Vec<CacheUser> = db.cached(&redis_cache).postgres()?.load(heavy_query())?;
    // The query has no ORDER BY (as in the article): a parallel scan returns its rows in any
    // order, so the two results are compared as sets of rows (ids are unique).
    heavy_rows.sort_unstable_by_key(|u| u.id);
    cached_rows.sort_unstable_by_key(|u| u.id);
    if cached_rows != heavy_rows {
        return Err("the cached heavy result differs from the database's".into());
    }
    let e = Latencies::measure(
        "heavy_hit",
        "(e) heavy query, cached in Redis",
        heavy_reads,
        |_| {
            black_box(
                db.cached(&redis_cache)
                    .postgres()?
                    .load::<_, CacheUser>(heavy_query())?,
            );
            Ok(())
        },
    )?;
    let f = Latencies::measure(
        "heavy_db",
        &format!("(f) heavy query, uncached ({tl})"),
        heavy_reads,
        |_| {
            black_box(db.postgres()?.load::<_, CacheUser>(heavy_query())?);
            Ok(())
        },
    )?;

    let methods = [&a, &b, &b2, &c, &d, &e, &f];
    let rows: Vec<Vec<String>> = methods
        .iter()
        .map(|m| {
            vec![
                m.label.clone(),
                m.samples.len().to_string(),
                format!("{:.1}", m.p50_us()),
                format!("{:.1}", m.p99_us()),
                format!("{:.0}", m.ops()),
            ]
        })
        .collect();
    report::print_table(&["method", "reads", "p50 µs", "p99 µs", "ops/s"], &rows);

    let codec_rows: Vec<CodecRow> = heavy_rows
        .iter()
        .map(|u| CodecRow {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            last_login: u.last_login,
            score: u.score,
        })
        .collect();
    let codec_figures = codecs(&codec_rows)?;
    println!(
        "\ncodecs, {} rows encoded then decoded (median of 15):",
        codec_rows.len()
    );
    report::print_table(
        &["codec", "bytes", "encode+decode ms"],
        &codec_figures
            .iter()
            .map(|(n, size, t)| {
                vec![
                    (*n).to_owned(),
                    size.to_string(),
                    format!("{:.2}", report::ms(*t)),
                ]
            })
            .collect::<Vec<_>>(),
    );

    let ratios = [
        Ratio {
            name: "hit_vs_raw_get",
            formula: "p50 redis_hit / p50 raw_get".to_owned(),
            value: a.p50_us() / b.p50_us(),
            target: Target::AtMost(1.2),
        },
        Ratio {
            name: "mget3_vs_get",
            formula: "p50 raw_mget3 / p50 raw_get".to_owned(),
            value: b2.p50_us() / b.p50_us(),
            target: Target::Context,
        },
        Ratio {
            name: "pk_hit_vs_db",
            formula: "ops/s redis_hit / ops/s db_find".to_owned(),
            value: a.ops() / c.ops(),
            target: Target::AtLeast(1.3),
        },
        Ratio {
            name: "heavy_hit_vs_db",
            formula: "ops/s heavy_hit / ops/s heavy_db".to_owned(),
            value: e.ops() / f.ops(),
            target: Target::AtLeast(20.0),
        },
        Ratio {
            name: "inproc_hit_p50_us",
            formula: "p50 inproc_hit in µs".to_owned(),
            value: d.p50_us(),
            target: Target::AtMost(5.0),
        },
    ];
    println!();
    report::print_ratios(&ratios);

    let mut json = serde_json::Map::new();
    json.insert("transport".into(), serde_json::json!(tl));
    json.insert("reads".into(), serde_json::json!(reads));
    json.insert("users".into(), serde_json::json!(users));
    json.insert("heavy_reads".into(), serde_json::json!(heavy_reads));
    json.insert("heavy_rows".into(), serde_json::json!(heavy_rows.len()));
    for m in methods {
        json.insert(
            m.name.into(),
            serde_json::json!({
                "label": m.label,
                "p50_us": m.p50_us(),
                "p99_us": m.p99_us(),
                "ops_per_s": m.ops(),
            }),
        );
        json.insert(format!("{}_p50_us", m.name), serde_json::json!(m.p50_us()));
    }
    json.insert(
        "codecs".into(),
        serde_json::json!(codec_figures
            .iter()
            .map(|(n, size, t)| (
                n.to_string(),
                serde_json::json!({"bytes": size, "encode_decode_ms": report::ms(*t)})
            ))
            .collect::<serde_json::Map<_, _>>()),
    );
    report::add_ratios(&mut json, &ratios);
    let path = report::write_json(
        &transport.json_name("cache"),
        &serde_json::Value::Object(json),
    )?;
    println!("\nwritten to {}", path.display());
    let _ = SCHEMA;
    Ok(())
}
