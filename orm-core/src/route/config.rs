//! The router's options: plain data, every field with a documented default, deserializable
//! (durations as `"200ms"`, `"5s"`, `"1m"` or a number of milliseconds).

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::policy::{LeastInUse, Random, ReadPolicy, RoundRobin};

/// How the replica router decides and how its monitor watches the replicas.
///
/// ```
/// use std::time::Duration;
/// use orm_core::route::{BuiltinPolicy, RouterConfig};
/// let config = RouterConfig {
///     max_lag_time: Some(Duration::from_secs(2)),
///     policy: BuiltinPolicy::LeastInUse,
///     ..RouterConfig::default()
/// };
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouterConfig {
    /// A replica whose replay position is more than this many bytes of WAL behind the primary's
    /// is not used until it catches up. `None`: no limit in bytes. Default: 16 MiB.
    pub max_lag_bytes: Option<u64>,
    /// A replica that has been missing WAL the primary had for longer than this is not used
    /// until it catches up. Measured by the monitor against its own clock (see
    /// [`ReplicaStatus::lag`](super::ReplicaStatus::lag)), so it is right on an idle primary
    /// and across machines whose clocks differ. `None`: no limit in time. Default: 5 s.
    #[serde(deserialize_with = "optional_duration")]
    pub max_lag_time: Option<Duration>,
    /// How often the monitor asks every replica (and the primary) for its position. Lag is
    /// known to within this interval. Values below 10 ms are raised to 10 ms. Default: 200 ms.
    #[serde(deserialize_with = "duration")]
    pub monitor_interval: Duration,
    /// How long the monitor waits for a connection to a replica or the primary. libpq counts
    /// whole seconds with a minimum of 2, so this is rounded up to that. Default: 2 s.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// How long the monitor waits for a server's answer to its position query: a server that
    /// takes longer counts as unreachable, and reads stop going to it. Kept by the client
    /// (the call is ended and its connection closed), so it holds for a hung server too, and
    /// also set as the `statement_timeout` of the monitor's connections. Default: 1 s.
    #[serde(deserialize_with = "duration")]
    pub check_timeout: Duration,
    /// The deadline of a call on a replica ([`PoolConfig::deadline`](crate::PoolConfig::deadline)
    /// applies to the primary): a read whose replica shows no sign of life for this long is
    /// ended, the replica is reported unreachable, and the read runs again on the primary
    /// (reads are moved there on any connection failure). Shorter than the primary's, because
    /// a read given up here still succeeds there. `None`: the pool's `deadline`. Default: 1 s.
    #[serde(deserialize_with = "optional_duration")]
    pub read_deadline: Option<Duration>,
    /// How long an unreachable replica is left alone before the monitor tries again.
    pub eject_backoff: Backoff,
    /// With no usable replica, whether reads go to the primary (`true`) or
    /// [`ReplicaSet::pick`](super::ReplicaSet::pick) fails with
    /// [`NoReplica`](super::NoReplica) (`false`, to keep read load off the primary). A read that
    /// must see the session's own write goes to the primary either way when the usable
    /// replicas have not replayed it yet. Default: `true`.
    pub fallback_to_primary: bool,
    /// Which usable replica serves a read, for sets built with
    /// [`ReplicaSet::start`](super::ReplicaSet::start). Default: round robin.
    pub policy: BuiltinPolicy,
    /// How a session's reads see its own writes. Default: [`ReadYourWrites::Lsn`].
    pub read_your_writes: ReadYourWrites,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            max_lag_bytes: Some(16 * 1024 * 1024),
            max_lag_time: Some(Duration::from_secs(5)),
            monitor_interval: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(2),
            check_timeout: Duration::from_secs(1),
            read_deadline: Some(Duration::from_secs(1)),
            eject_backoff: Backoff::default(),
            fallback_to_primary: true,
            policy: BuiltinPolicy::default(),
            read_your_writes: ReadYourWrites::default(),
        }
    }
}

impl RouterConfig {
    /// The monitor's interval, at least 10 ms.
    pub(crate) fn interval(&self) -> Duration {
        self.monitor_interval.max(Duration::from_millis(10))
    }

    /// libpq's `connect_timeout`: whole seconds, at least 2 (libpq reads 1 as 2).
    pub(crate) fn connect_timeout_secs(&self) -> u64 {
        let d = self.connect_timeout;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(2)
    }
}

/// Exponential backoff for an unreachable replica: after its n-th failure in a row the monitor
/// waits `initial × 2ⁿ⁻¹`, at most `max`, before asking it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Backoff {
    /// The wait after the first failure. Default: 200 ms.
    #[serde(deserialize_with = "duration")]
    pub initial: Duration,
    /// The longest wait (a smaller value than `initial` counts as `initial`). Default: 10 s.
    #[serde(deserialize_with = "duration")]
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The wait after `failures` failures in a row (none after none).
    pub fn after(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let factor = 1u32.checked_shl(failures - 1).unwrap_or(u32::MAX);
        self.initial
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.max.max(self.initial))
    }
}

/// The read policies `orm` ships, by name (`"round_robin"`, `"random"`, `"least_in_use"`), for
/// configuration files; a policy of your own is given to
/// [`ReplicaSet::start_with_policy`](super::ReplicaSet::start_with_policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinPolicy {
    /// [`RoundRobin`](super::policy::RoundRobin): each usable replica in turn.
    #[default]
    RoundRobin,
    /// [`Random`](super::policy::Random): a uniformly random usable replica.
    Random,
    /// [`LeastInUse`](super::policy::LeastInUse): the usable replica serving the fewest calls.
    LeastInUse,
}

/// How reads made after a session's write see that write, though replicas replay it a little
/// later (about a millisecond on a local network, seconds under load).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadYourWrites {
    /// After each commit the session asks the primary for its WAL position (one extra round
    /// trip per writing call, [`current_primary_lsn`](super::current_primary_lsn)); its reads
    /// then go to a replica the monitor has seen replay that position, else the primary.
    /// Exact: reads leave the primary as soon as a replica has caught up.
    #[default]
    Lsn,
    /// For this long after a session's write, all its reads go to the primary; no extra round
    /// trip, but reads stay on the primary for the whole window even when replicas caught up at
    /// once, and a replica lagging more than the window can still serve a stale read (keep
    /// `max_lag_time` below the window). Written `{ "window": "2s" }`.
    #[serde(deserialize_with = "duration")]
    Window(Duration),
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => {
            return Err(format!(
                "`{text}`: expected a duration like `200ms`, `5s`, `1m`"
            ))
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration like `200ms`, `5s`, `1m`"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("`{text}`: {e}"))
}

/// A duration as text with a unit (`"200ms"`, `"1.5s"`, `"1m"`, `"1h"`) or whole milliseconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationRepr {
    Millis(u64),
    Text(String),
}

impl DurationRepr {
    fn into_duration<E: serde::de::Error>(self) -> Result<Duration, E> {
        match self {
            DurationRepr::Millis(ms) => Ok(Duration::from_millis(ms)),
            DurationRepr::Text(text) => parse_duration(&text).map_err(E::custom),
        }
    }
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    DurationRepr::deserialize(d)?.into_duration()
}

fn optional_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<DurationRepr>::deserialize(d)?
        .map(DurationRepr::into_duration)
        .transpose()
}

impl BuiltinPolicy {
    /// A fresh instance of the named policy.
    pub fn build(self) -> Box<dyn ReadPolicy> {
        match self {
            BuiltinPolicy::RoundRobin => Box::new(RoundRobin::new()),
            BuiltinPolicy::Random => Box::new(Random::new()),
            BuiltinPolicy::LeastInUse => Box::new(LeastInUse::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtins_build_by_name() {
        let candidates = crate::route::policy::views(&[0, 0, 0]);
        for kind in [
            BuiltinPolicy::RoundRobin,
            BuiltinPolicy::Random,
            BuiltinPolicy::LeastInUse,
        ] {
            let policy = kind.build();
            for _ in 0..10 {
                assert!(
                    policy.choose(&candidates).is_some_and(|p| p < 3),
                    "{kind:?}"
                );
            }
        }
    }

    use super::*;

    #[test]
    fn deserializes_with_defaults_and_units() {
        let config: RouterConfig = serde_json::from_str(
            r#"{ "max_lag_time": "1.5s", "monitor_interval": 50, "eject_backoff": { "max": "1m" },
                 "max_lag_bytes": null, "policy": "least_in_use",
                 "read_your_writes": { "window": "2s" } }"#,
        )
        .unwrap();
        assert_eq!(
            config,
            RouterConfig {
                max_lag_bytes: None,
                max_lag_time: Some(Duration::from_millis(1500)),
                monitor_interval: Duration::from_millis(50),
                eject_backoff: Backoff {
                    max: Duration::from_secs(60),
                    ..Backoff::default()
                },
                policy: BuiltinPolicy::LeastInUse,
                read_your_writes: ReadYourWrites::Window(Duration::from_secs(2)),
                ..RouterConfig::default()
            }
        );
        let empty: RouterConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(empty, RouterConfig::default());
        let lsn: RouterConfig = serde_json::from_str(r#"{"read_your_writes": "lsn"}"#).unwrap();
        assert_eq!(lsn.read_your_writes, ReadYourWrites::Lsn);
    }

    #[test]
    fn refuses_unknown_fields_and_bad_durations() {
        let typo = serde_json::from_str::<RouterConfig>(r#"{"max_lag": 1}"#).unwrap_err();
        assert!(typo.to_string().contains("max_lag"), "{typo}");
        let bad =
            serde_json::from_str::<RouterConfig>(r#"{"check_timeout": "5 parsecs"}"#).unwrap_err();
        assert!(bad.to_string().contains("200ms"), "{bad}");
    }

    #[test]
    fn backoff_doubles_up_to_its_max() {
        let b = Backoff::default();
        let waits: Vec<u128> = (0..10).map(|n| b.after(n).as_millis()).collect();
        assert_eq!(
            waits,
            [0, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]
        );
        assert_eq!(b.after(u32::MAX), Duration::from_secs(10));
        let inverted = Backoff {
            initial: Duration::from_secs(3),
            max: Duration::from_secs(1),
        };
        assert_eq!(inverted.after(5), Duration::from_secs(3));
    }

    #[test]
    fn timeouts_are_clamped_to_what_libpq_and_the_monitor_accept() {
        let mut c = RouterConfig::default();
        assert_eq!(c.connect_timeout_secs(), 2);
        c.connect_timeout = Duration::from_millis(2500);
        assert_eq!(c.connect_timeout_secs(), 3);
        c.monitor_interval = Duration::ZERO;
        assert_eq!(c.interval(), Duration::from_millis(10));
    }
}
