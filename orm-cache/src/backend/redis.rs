//! The Redis backend: a small r2d2 pool of synchronous connections, opened with a connect
//! timeout. Every call (waiting for a connection, then the command) ends within one command
//! timeout, so a refusing or hung server costs a call that much at most. A hit is one `MGET`
//! of the entry and its tables' generations.

use std::time::{Duration, Instant};

use redis::ConnectionLike;

use super::{CacheBackend, Lookup};
use crate::error::{Error, Result};

/// Settings of a [`Redis`] backend.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// Time to open a connection (TCP connect and handshake), in the pool's own threads: a
    /// call waits for a new connection only as long as its command timeout allows. Default
    /// 200 ms.
    pub connect_timeout: Duration,
    /// Time a call may take in all: waiting for a pooled connection, writing the command and
    /// reading its reply. At least 1 ms. Default 100 ms.
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
    /// The read and write timeouts set on its socket.
    timeout: Duration,
}

impl PooledRedis {
    /// Give the socket's reads and writes `budget`, a whole number of milliseconds (so a call
    /// whose checkout took under a millisecond, as nearly all do, sets nothing).
    fn set_timeout(&mut self, budget: Duration) -> redis::RedisResult<()> {
        if self.timeout != budget {
            self.conn.set_read_timeout(Some(budget))?;
            self.conn.set_write_timeout(Some(budget))?;
            self.timeout = budget;
        }
        Ok(())
    }
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
            timeout: self.command_timeout,
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
    command_timeout: Duration,
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
        if config.command_timeout < Duration::from_millis(1) {
            return Err(Error::InvalidConfig {
                field: "command_timeout",
                reason: "a call needs at least 1 ms".to_owned(),
            });
        }
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
            // The pool's own connection attempts back off by half of this between failures;
            // a call's checkout waits only the time left of its command timeout.
            .connection_timeout(config.connect_timeout)
            // A PING per checkout would double the round trips of a hit; a connection that
            // failed is marked broken and never handed out again instead.
            .test_on_check_out(false)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(connector);
        Ok(Self {
            pool,
            command_timeout: config.command_timeout,
            prefix: config.prefix,
        })
    }

    /// Run `command` on a pooled connection, the checkout and the command together within
    /// one command timeout; a failure marks the connection broken.
    fn with_conn<T>(
        &self,
        command: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + self.command_timeout;
        let mut conn = self
            .pool
            .get_timeout(self.command_timeout)
            .map_err(|e| backend_error(&format_args!("no connection: {e}")))?;
        // Whole milliseconds left, rounded down: the command ends by the deadline.
        let left = deadline.saturating_duration_since(Instant::now());
        let budget = Duration::from_millis(u64::try_from(left.as_millis()).unwrap_or(u64::MAX));
        if budget.is_zero() {
            return Err(backend_error(
                &"no time left for the command after the checkout",
            ));
        }
        let result = conn
            .set_timeout(budget)
            .and_then(|()| command(&mut conn.conn));
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
