//! The Redis backend: a small r2d2 pool of synchronous connections, each opened with a
//! connect timeout and given a command timeout, so a refusing or hung server costs a bounded
//! wait. A hit is one `MGET` of the entry and its tables' generations.

use std::time::Duration;

use redis::ConnectionLike;

use super::{CacheBackend, Lookup};
use crate::error::{Error, Result};

/// Settings of a [`Redis`] backend.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Time to open a connection (TCP connect and handshake). Default 200 ms.
    pub connect_timeout: Duration,
    /// Time a command may take, reading and writing. Default 100 ms.
    pub command_timeout: Duration,
    /// Most connections open at once. Default 16.
    pub pool_size: u32,
    /// Prefix of every key this backend writes: entries under `{prefix}{key}`, generations
    /// under `{prefix}gen:{table}`. Default empty (keys start `orm:`). Give each database
    /// that shares one Redis its own, since table names may repeat.
    pub prefix: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(200),
            command_timeout: Duration::from_millis(100),
            pool_size: 16,
            prefix: String::new(),
        }
    }
}

/// A connection, marked broken after any error so the pool never hands out one with a reply
/// still in flight.
struct PooledRedis {
    conn: redis::Connection,
    broken: bool,
}

/// Opens connections with the configured timeouts.
struct Connector {
    client: redis::Client,
    connect_timeout: Duration,
    command_timeout: Duration,
}

impl r2d2::ManageConnection for Connector {
    type Connection = PooledRedis;
    type Error = redis::RedisError;

    fn connect(&self) -> Result<PooledRedis, redis::RedisError> {
        let conn = self
            .client
            .get_connection_with_timeout(self.connect_timeout)?;
        conn.set_read_timeout(Some(self.command_timeout))?;
        conn.set_write_timeout(Some(self.command_timeout))?;
        Ok(PooledRedis {
            conn,
            broken: false,
        })
    }

    fn is_valid(&self, conn: &mut PooledRedis) -> Result<(), redis::RedisError> {
        redis::cmd("PING").query::<()>(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut PooledRedis) -> bool {
        conn.broken || !conn.conn.is_open()
    }
}

/// Entries and generations in Redis, shared by every process that uses the same server and
/// prefix: writes made by any of them invalidate entries for all.
pub struct Redis {
    pool: r2d2::Pool<Connector>,
    prefix: String,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A backend for the server at `url` (`redis://host:6379/0`). Nothing connects here: a
    /// server that is down makes cached reads load from the database until it is up.
    pub fn new(url: &str, config: RedisConfig) -> Result<Self> {
        let client = redis::Client::open(url).map_err(|_| Error::InvalidConfig {
            field: "redis url",
            reason: "expected `redis://[user:password@]host[:port][/db]`".to_owned(),
        })?;
        if config.pool_size == 0 {
            return Err(Error::InvalidConfig {
                field: "pool_size",
                reason: "a pool of 0 connections cannot serve a read; use 1 or more".to_owned(),
            });
        }
        let connector = Connector {
            client,
            connect_timeout: config.connect_timeout,
            command_timeout: config.command_timeout,
        };
        let pool = r2d2::Pool::builder()
            .max_size(config.pool_size)
            .min_idle(Some(0))
            // A checkout waits at most the connect timeout: a refusing server fails fast.
            .connection_timeout(config.connect_timeout)
            // A PING per checkout would double the round trips of a hit; a connection that
            // failed is marked broken and never handed out again instead.
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(connector);
        Ok(Self {
            pool,
            prefix: config.prefix,
        })
    }

    /// Run `command` on a pooled connection; a failure marks the connection broken.
    fn with_conn<T>(
        &self,
        command: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let mut conn = self.pool.get().map_err(|e| backend_error(&e))?;
        let result = command(&mut conn.conn);
        if result.is_err() {
            conn.broken = true;
        }
        result.map_err(|e| backend_error(&e))
    }

    /// One `MGET`: the entry under `key` (when given) and the generations of `tables`.
    pub(crate) fn fetch(&self, key: Option<&str>, tables: &[&str]) -> Result<Lookup> {
        let mut cmd = redis::cmd("MGET");
        if let Some(key) = key {
            cmd.arg(format!("{}{}", self.prefix, key));
        }
        for t in tables {
            cmd.arg(self.generation_key(t));
        }
        let mut values: Vec<Option<Vec<u8>>> = self.with_conn(|c| cmd.query(c))?;
        let skip = usize::from(key.is_some());
        if values.len() != tables.len() + skip {
            return Err(backend_error(&"MGET answered the wrong number of values"));
        }
        let generations = values[skip..]
            .iter()
            .map(|v| parse_generation(v.as_deref()))
            .collect();
        let entry = if key.is_some() {
            values.swap_remove(0)
        } else {
            None
        };
        Ok(Lookup::new(entry, generations))
    }

    fn generation_key(&self, table: &str) -> String {
        format!("{}orm:gen:{}", self.prefix, table)
    }
}

fn backend_error(e: &dyn std::fmt::Display) -> Error {
    Error::Backend {
        backend: "redis",
        message: e.to_string(),
    }
}

/// A generation as Redis stores it: the decimal text `INCR` writes; missing is 0, anything
/// else (a foreign value) reads as a generation no entry was computed under.
fn parse_generation(bytes: Option<&[u8]>) -> u64 {
    match bytes {
        None => 0,
        Some(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX),
    }
}

impl CacheBackend for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn lookup(&self, key: &str, tables: &[&str]) -> Result<Lookup> {
        self.fetch(Some(key), tables)
    }

    fn store(&self, key: &str, entry: &[u8], ttl: Duration) -> Result<()> {
        let millis = ttl.as_millis().clamp(1, u64::MAX as u128) as u64;
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{}", self.prefix, key))
            .arg(entry)
            .arg("PX")
            .arg(millis);
        self.with_conn(|c| cmd.query::<()>(c))
    }

    fn bump(&self, tables: &[&str]) -> Result<()> {
        let mut pipe = redis::pipe();
        for t in tables {
            pipe.cmd("INCR").arg(self.generation_key(t)).ignore();
        }
        self.with_conn(|c| pipe.query::<()>(c))
    }

    fn try_lock(&self, key: &str, lease: Duration) -> Result<bool> {
        let millis = lease.as_millis().clamp(1, u64::MAX as u128) as u64;
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}{}:lock", self.prefix, key))
            .arg(std::process::id())
            .arg("NX")
            .arg("PX")
            .arg(millis);
        let answer: Option<String> = self.with_conn(|c| cmd.query(c))?;
        Ok(answer.is_some())
    }

    fn unlock(&self, key: &str) -> Result<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(format!("{}{}:lock", self.prefix, key));
        self.with_conn(|c| cmd.query::<()>(c))
    }
}
