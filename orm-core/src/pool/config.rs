//! [`PoolConfig`]: how many connections a database keeps open, how long a call waits for one,
//! when connections are renewed or checked. Plain data: build it in code or read it from a
//! configuration file.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::error::{Error, Result};

/// How a [`Database`](crate::Database) pools its connections, with SQLAlchemy's name for each
/// setting. Start from the defaults and change what you need:
///
/// ```
/// use std::time::Duration;
/// use orm_core::PoolConfig;
///
/// let config = PoolConfig {
///     size: 15,                                 // pool_size
///     max_overflow: 8,                          // max_overflow
///     timeout: Duration::from_secs(5),          // pool_timeout
///     recycle: Some(Duration::from_secs(300)),  // pool_recycle
///     ..PoolConfig::default()
/// };
/// assert!(config.validate().is_ok());
/// ```
///
/// It deserializes with serde; every field may be left out (its default applies). Durations
/// are numbers of seconds (`0.25` is 250 ms); a setting that can be off (`overflow_idle`,
/// `recycle`, `connect_timeout`, `statement_timeout`, `leak_threshold`) is turned off with
/// `false`:
///
/// ```toml
/// [database.pool]
/// size = 15
/// max_overflow = 8
/// timeout = 5
/// recycle = 300
/// statement_timeout = 30
/// leak_threshold = 10
/// connect_timeout = false    # wait as long as the operating system does
/// ```
///
/// Every connection setting applies to PostgreSQL and to SQLite files. An in-memory SQLite
/// database (`sqlite::memory:`) lives in its one connection, so it keeps exactly that one
/// connection whatever the configuration: `size`, `max_overflow`, `overflow_idle`, `recycle`
/// and `pre_ping` do not apply to it, and [`PoolConfig::none`] is refused with
/// [`Error::InvalidConfig`] (each call would get a new, empty database).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PoolConfig {
    /// Whether connections are pooled at all. `false` ([`PoolConfig::none`]) opens a connection
    /// for every call and closes it when the call ends (SQLAlchemy's `NullPool`); only
    /// `connect_timeout`, `statement_timeout`, `prepared_statements` and `leak_threshold` apply
    /// then. Default `true` (SQLAlchemy chooses with `poolclass`).
    pub pooled: bool,
    /// Connections kept open, idle or in use (SQLAlchemy `pool_size`; default 5 in both). The
    /// pool opens them when it is built, reopens one that is closed, and keeps them however
    /// long they sit idle. While a call finds one of them idle, the pool opens no other: this
    /// is the number to plan against the server's `max_connections` (or a pooler's limit) for
    /// steady load. 0 keeps none open: every connection is then an overflow one.
    pub size: u32,
    /// Connections opened beyond `size`, each only for a call that finds none idle and would
    /// otherwise wait. Default 10 (SQLAlchemy `max_overflow`, also 10). `size + max_overflow`
    /// is the most connections the pool ever holds to the server, and must not be 0.
    pub max_overflow: u32,
    /// An overflow connection left idle this long is closed, so the pool falls back to `size`
    /// once the load that needed more is gone; the `size` connections are never closed for
    /// being idle. SQLAlchemy closes an overflow connection as soon as it is returned, which
    /// under bursty load means a connect for nearly every call beyond `size`. Default 10
    /// minutes; `None` keeps overflow connections open.
    #[serde(deserialize_with = "optional_seconds")]
    pub overflow_idle: Option<Duration>,
    /// How long a call waits for a connection before it fails with
    /// [`Error::PoolTimeout`] (SQLAlchemy `pool_timeout`, default 30 s). Default 5 s: fail
    /// fast, with the pool's numbers in the error, rather than pile up callers behind an
    /// exhausted pool. A call that opens an overflow connection itself waits for it as long
    /// as connecting takes (at most `connect_timeout`), past `timeout` if need be, as in
    /// SQLAlchemy. On SQLite it is also how long a
    /// statement waits for another connection's lock (`PRAGMA busy_timeout`).
    #[serde(deserialize_with = "seconds")]
    pub timeout: Duration,
    /// A connection older than this is closed and replaced instead of being handed out
    /// (SQLAlchemy `pool_recycle`, default -1: never). Default 30 minutes: connections are
    /// renewed before load balancers and firewalls drop them, and pick up DNS and server
    /// changes. Each connection's lifetime is drawn between 90% and 100% of this, so
    /// connections opened together are not all replaced at once. `None` keeps them for ever.
    #[serde(deserialize_with = "optional_seconds")]
    pub recycle: Option<Duration>,
    /// Check a connection with a round trip (`SELECT 1`) before handing it out, if it has been
    /// idle longer than `pre_ping_idle`; a dead connection (server restarted, connection
    /// killed) is replaced and the call never sees it (SQLAlchemy `pool_pre_ping`, default
    /// false). Default `true`.
    pub pre_ping: bool,
    /// Only connections idle at least this long are pinged, so a busy pool pays no extra round
    /// trip (HikariCP's rule; SQLAlchemy pings every checkout). Default 1 s.
    #[serde(deserialize_with = "seconds")]
    pub pre_ping_idle: Duration,
    /// PostgreSQL: how long opening a connection may take (libpq's `connect_timeout`, in whole
    /// seconds, at least 2; added to the URL unless it sets `connect_timeout` itself). Default
    /// 5 s; `None` waits as long as the operating system does. Not used by SQLite. SQLAlchemy
    /// leaves it to the driver (`connect_args`).
    #[serde(deserialize_with = "optional_seconds")]
    pub connect_timeout: Option<Duration>,
    /// PostgreSQL: statements running longer than this are cancelled by the server
    /// (`SET statement_timeout` on each new connection). Default `None`: the server's setting.
    /// Behind PgBouncer in transaction mode a `SET` reaches whichever server connection runs
    /// it, so set it on the role there instead (`ALTER ROLE app SET statement_timeout = '30s'`).
    /// SQLite has no statement timeout: not used there. SQLAlchemy has no such setting.
    #[serde(deserialize_with = "optional_seconds")]
    pub statement_timeout: Option<Duration>,
    /// PostgreSQL: whether connections use named prepared statements (Diesel's statement
    /// cache: each distinct query is parsed and planned once per connection).
    ///
    /// `None` (the default): named statements only on a connection shown to reach PostgreSQL
    /// directly, unnamed ones otherwise. When a connection opens, the server is asked which
    /// client address and port it sees (`inet_client_addr()`, `inet_client_port()`, and its
    /// own); a direct connection is one whose own socket has exactly those two ends. Behind a
    /// pooler, a proxy or a NAT the server sees another socket, so the connection uses unnamed
    /// statements: behind PgBouncer in transaction mode, a named statement prepared by one
    /// client can run on another client's server connection, which fails, or returns another
    /// query's rows. Unnamed statements are sent with their parameters in one message, which
    /// any server connection runs correctly. The check costs one round trip per new
    /// connection; it needs Linux's `/proc` and TCP (over a Unix socket, or elsewhere, the
    /// connection is not shown direct).
    ///
    /// `Some(true)` uses named statements on every connection; `Some(false)` never does.
    /// Not used by SQLite (always named). SQLAlchemy has no such setting.
    pub prepared_statements: Option<bool>,
    /// PostgreSQL: a call fails with [`Error::Deadline`] once the server has shown no sign of
    /// life for this long, and its connection is closed (never pooled again). Default 3 s;
    /// `None`: no deadline (a call to a hung server waits as long as the server hangs).
    ///
    /// A sign of life is the call starting, another call to the same server ending, or the
    /// server answering a liveness probe, which is sent once a call has run half its deadline.
    /// So a slow query on a live server runs on (bound it with `statement_timeout`), and only
    /// a server that does not answer at all (stopped, frozen, cut off) is given up on. The
    /// deadline also bounds the pre-ping and the set-up of a new connection (whole, with no
    /// probe), and a checkout waiting for a connection to a server silent that long. A write
    /// that passed its deadline may still commit if the server resumes: its error says so,
    /// and `orm` never retries it. SQLite has no server: not used there.
    #[serde(deserialize_with = "optional_seconds")]
    pub deadline: Option<Duration>,
    /// A connection held by one call longer than this is logged (`tracing::warn!`) with the
    /// place in your code that checked it out: once while it is still held, and again when it
    /// is returned. Default `None` (off, and nothing is tracked; SQLAlchemy has no such
    /// setting).
    #[serde(deserialize_with = "optional_seconds")]
    pub leak_threshold: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            pooled: true,
            size: 5,
            max_overflow: 10,
            overflow_idle: Some(Duration::from_secs(600)),
            timeout: Duration::from_secs(5),
            recycle: Some(Duration::from_secs(1800)),
            pre_ping: true,
            pre_ping_idle: Duration::from_secs(1),
            connect_timeout: Some(Duration::from_secs(5)),
            statement_timeout: None,
            prepared_statements: None,
            deadline: Some(Duration::from_secs(3)),
            leak_threshold: None,
        }
    }
}

impl PoolConfig {
    /// No pool: every call opens its own connection and closes it when it ends (SQLAlchemy's
    /// `NullPool`). For development and scripts, or behind an external pooler that does the
    /// pooling; each call then pays for a connection (a few milliseconds on PostgreSQL).
    pub fn none() -> Self {
        Self {
            pooled: false,
            ..Self::default()
        }
    }

    /// The most connections the pool holds at once: `size + max_overflow`.
    pub fn max_connections(&self) -> u32 {
        self.size.saturating_add(self.max_overflow)
    }

    /// [`Error::InvalidConfig`] for a setting that cannot work, naming it; `Ok` otherwise.
    /// [`DatabaseBuilder::connect`](crate::DatabaseBuilder::connect) calls it before
    /// anything connects.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field: &'static str, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        let positive = |field: &'static str, value: Option<Duration>| match value {
            Some(d) if d.is_zero() => invalid(
                field,
                "is 0; give a positive duration, or `None` (`false` in a file) to turn it off",
            ),
            _ => Ok(()),
        };
        if self.pooled {
            if self.size.checked_add(self.max_overflow).is_none() {
                return invalid(
                    "max_overflow",
                    "`size + max_overflow` does not fit in a u32",
                );
            }
            if self.max_connections() == 0 {
                return invalid(
                    "size",
                    "`size + max_overflow` is 0, so no call could ever get a connection; use \
                     `PoolConfig::none()` for no pool",
                );
            }
            if self.timeout.is_zero() {
                return invalid(
                    "timeout",
                    "is 0, so every call would fail before it could wait for a connection",
                );
            }
            positive("overflow_idle", self.overflow_idle)?;
            positive("recycle", self.recycle)?;
        }
        positive("connect_timeout", self.connect_timeout)?;
        positive("statement_timeout", self.statement_timeout)?;
        positive("leak_threshold", self.leak_threshold)?;
        positive("deadline", self.deadline)?;
        Ok(())
    }

    /// libpq's `connect_timeout` value: whole seconds, rounded up (libpq takes 1 as 2).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn connect_timeout_secs(&self) -> Option<u64> {
        self.connect_timeout
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
    }
}

/// A number of seconds, whole or not: `5`, `0.25`.
fn seconds<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    match deserializer.deserialize_any(SecondsVisitor { optional: false })? {
        Some(d) => Ok(d),
        None => Err(de::Error::custom("expected a number of seconds")),
    }
}

/// A number of seconds, or `false` (or null) for off.
fn optional_seconds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Duration>, D::Error> {
    deserializer.deserialize_any(SecondsVisitor { optional: true })
}

struct SecondsVisitor {
    optional: bool,
}

impl SecondsVisitor {
    fn off<E: de::Error>(&self) -> Result<Option<Duration>, E> {
        if self.optional {
            Ok(None)
        } else {
            Err(E::custom(
                "expected a number of seconds; this setting cannot be turned off",
            ))
        }
    }
}

impl<'de> Visitor<'de> for SecondsVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.optional {
            f.write_str("a number of seconds (`5`, `0.25`), or `false` for off")
        } else {
            f.write_str("a number of seconds (`5`, `0.25`)")
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Duration::from_secs(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        u64::try_from(v)
            .map(|v| Some(Duration::from_secs(v)))
            .map_err(|_| E::custom(format!("{v} seconds is negative")))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Duration::try_from_secs_f64(v)
            .map(Some)
            .map_err(|_| E::custom(format!("{v} is not a usable number of seconds")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if v {
            Err(E::custom(
                "`true` is not a duration; give a number of seconds",
            ))
        } else {
            self.off()
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.off()
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.off()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        PoolConfig::default().validate().unwrap();
        PoolConfig::none().validate().unwrap();
    }

    #[test]
    fn reads_seconds_and_off_from_a_file() {
        let config: PoolConfig = serde_json::from_str(
            r#"{"size": 15, "max_overflow": 8, "timeout": 0.5, "recycle": 300,
                "statement_timeout": 30, "connect_timeout": false}"#,
        )
        .unwrap();
        assert_eq!(config.size, 15);
        assert_eq!(config.max_overflow, 8);
        assert_eq!(config.timeout, Duration::from_millis(500));
        assert_eq!(config.recycle, Some(Duration::from_secs(300)));
        assert_eq!(config.statement_timeout, Some(Duration::from_secs(30)));
        assert_eq!(config.connect_timeout, None);
        assert_eq!(config.overflow_idle, PoolConfig::default().overflow_idle);

        let empty: PoolConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, PoolConfig::default());
        for bad in [
            r#"{"timeout": false}"#,
            r#"{"timeout": -1}"#,
            r#"{"recycle": true}"#,
            r#"{"pool_size": 5}"#,
        ] {
            assert!(serde_json::from_str::<PoolConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn impossible_settings_are_named() {
        let field = |config: PoolConfig| match config.validate() {
            Err(Error::InvalidConfig { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let base = PoolConfig::default();
        assert_eq!(
            field(PoolConfig {
                size: 0,
                max_overflow: 0,
                ..base.clone()
            }),
            "size"
        );
        assert_eq!(
            field(PoolConfig {
                size: u32::MAX,
                max_overflow: 1,
                ..base.clone()
            }),
            "max_overflow"
        );
        assert_eq!(
            field(PoolConfig {
                timeout: Duration::ZERO,
                ..base.clone()
            }),
            "timeout"
        );
        assert_eq!(
            field(PoolConfig {
                recycle: Some(Duration::ZERO),
                ..base.clone()
            }),
            "recycle"
        );
        assert_eq!(
            field(PoolConfig {
                leak_threshold: Some(Duration::ZERO),
                ..PoolConfig::none()
            }),
            "leak_threshold"
        );
        // Without a pool, the pool's own settings are not used, so not checked.
        PoolConfig {
            size: 0,
            max_overflow: 0,
            ..PoolConfig::none()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn connect_timeout_rounds_up_to_whole_seconds() {
        let with = |d| PoolConfig {
            connect_timeout: d,
            ..PoolConfig::default()
        };
        assert_eq!(
            with(Some(Duration::from_secs(5))).connect_timeout_secs(),
            Some(5)
        );
        assert_eq!(
            with(Some(Duration::from_millis(1500))).connect_timeout_secs(),
            Some(2)
        );
        assert_eq!(with(None).connect_timeout_secs(), None);
    }
}
