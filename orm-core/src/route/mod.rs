//! The replica router: reads to healthy, caught-up replicas; writes stay on the primary.
//!
//! A [`ReplicaSet`] holds what a background monitor (see the `monitor` module) last learned
//! about each replica, in atomics. Before a read, the caller asks [`ReplicaSet::pick`] (or
//! [`ReplicaSet::pick_after`] for a session that wrote) which replica to use: the set keeps the
//! replicas that are healthy, within the lag limits and, for a session that wrote, have
//! replayed its write, and its [`ReadPolicy`] chooses among them. `None` means the primary. The
//! decision reads atomics and does arithmetic: no I/O, no lock, no allocation.
//!
//! Around the call on the chosen replica, the caller holds an [`InUse`] guard
//! ([`ReplicaSet::acquire`]; it feeds [`LeastInUse`](policy::LeastInUse)), and on a
//! connection-level failure ([`is_connection_failure`]) calls [`ReplicaSet::report_failure`],
//! which ejects the replica at once, then retries the read once on the primary.
//!
//! ```no_run
//! use orm_core::route::{ReplicaSet, RouterConfig};
//! # fn main() -> orm_core::Result<()> {
//! let set = ReplicaSet::start(
//!     "postgres://app@db-primary/app",
//!     ["postgres://app@db-replica-1/app", "postgres://app@db-replica-2/app"],
//!     RouterConfig::default(),
//! )?;
//! match set.pick(None)? {
//!     Some(replica) => {
//!         let _busy = set.acquire(replica);
//!         // … run the read on replica `replica`'s pool …
//!     }
//!     None => { /* … run the read on the primary … */ }
//! }
//! # Ok(()) }
//! ```

mod config;
mod health;
mod lsn;
mod monitor;
pub mod policy;
mod session;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use config::{Backoff, BuiltinPolicy, ReadYourWrites, RouterConfig};
pub use health::ReplicaState;
pub use lsn::{current_primary_lsn, Lsn, ParseLsnError};
pub use policy::{ReadPolicy, ReplicaView};
pub use session::LastWrite;

use crate::error::{Error, Result};
use crate::meta::RedactedUrl;
use crate::url::{DatabaseUrl, Target};
use health::ReplicaHealth;
use monitor::{MonitorHandle, Shared};

/// The most replicas one set routes to: the read path gathers the usable ones in a fixed array
/// on the stack, so that choosing never allocates.
pub const MAX_REPLICAS: usize = 16;

/// A primary's read replicas, watched by a background monitor, and the policy that spreads
/// reads over them. Safe to share between threads; dropping it stops the monitor.
pub struct ReplicaSet {
    shared: Arc<Shared>,
    urls: Box<[RedactedUrl]>,
    policy: Box<dyn ReadPolicy>,
    fallback_to_primary: bool,
    /// A replica silent for longer than this (ms) is not used: its lag can no longer be vouched
    /// for. `None` without a time limit on lag.
    silence_limit_ms: Option<u64>,
    read_your_writes: ReadYourWrites,
    /// Stops the monitor thread when the set is dropped.
    _monitor: Option<MonitorHandle>,
}

impl fmt::Debug for ReplicaSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaSet")
            .field("replicas", &self.urls)
            .field("fallback_to_primary", &self.fallback_to_primary)
            .field("primary_lsn", &self.primary_lsn())
            .finish_non_exhaustive()
    }
}

impl ReplicaSet {
    /// Watch `replica_urls` (streaming replicas of the primary at `primary_url`) and route
    /// reads over them with `config.policy`. Returns at once: the monitor's first round runs in
    /// the background, and until a replica has answered it, reads go to the primary (or fail,
    /// without `fallback_to_primary`).
    ///
    /// Fails with [`Error::InvalidUrl`] if a URL is not a valid `postgres://` URL, or there are
    /// more than [`MAX_REPLICAS`] replicas. Unreachable servers are no error here: the
    /// monitor ejects them and keeps asking.
    ///
    /// # Panics
    /// If the operating system cannot start the monitor thread.
    pub fn start<I>(primary_url: &str, replica_urls: I, config: RouterConfig) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let policy = config.policy.build();
        Self::launch(primary_url, replica_urls, config, policy)
    }

    /// [`ReplicaSet::start`] with a read policy of your own instead of `config.policy`.
    pub fn start_with_policy<I>(
        primary_url: &str,
        replica_urls: I,
        config: RouterConfig,
        policy: impl ReadPolicy,
    ) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Self::launch(primary_url, replica_urls, config, Box::new(policy))
    }

    fn launch<I>(
        primary_url: &str,
        replica_urls: I,
        config: RouterConfig,
        policy: Box<dyn ReadPolicy>,
    ) -> Result<Self>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let primary = postgres_url(primary_url)?;
        let replicas = replica_urls
            .into_iter()
            .map(|url| postgres_url(url.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        if let Some(extra) = replicas.get(MAX_REPLICAS) {
            return Err(Error::InvalidUrl {
                url: extra.redacted.clone(),
                reason: format!("a replica set routes to at most {MAX_REPLICAS} replicas"),
            });
        }
        let mut set = Self::unmonitored(
            replicas.iter().map(|u| u.redacted.clone()).collect(),
            &config,
            policy,
        );
        tracing::debug!(primary = %primary.redacted, replicas = ?set.urls, "replica monitor starting");
        set._monitor = Some(monitor::spawn(
            Arc::clone(&set.shared),
            primary,
            replicas,
            config,
        ));
        Ok(set)
    }

    /// A set whose states nothing updates: the monitor's part, for tests.
    fn unmonitored(
        urls: Vec<RedactedUrl>,
        config: &RouterConfig,
        policy: Box<dyn ReadPolicy>,
    ) -> Self {
        let silence_limit = config.max_lag_time.map(|t| t + 2 * config.interval());
        Self {
            shared: Arc::new(Shared::new(urls.len())),
            urls: urls.into(),
            policy,
            fallback_to_primary: config.fallback_to_primary,
            silence_limit_ms: silence_limit.map(|d| d.as_millis() as u64),
            read_your_writes: config.read_your_writes,
            _monitor: None,
        }
    }

    /// Which replica should serve a read that must see WAL position `min_lsn` (`None`: any
    /// position will do): `Ok(Some(index))` for replica `index` (in the order of the URLs),
    /// `Ok(None)` for the primary.
    ///
    /// A replica is usable when the monitor's last check found it in recovery and within
    /// `max_lag_bytes` and `max_lag_time`, it answered within the last `max_lag_time` plus two
    /// intervals, no failure was reported since, and (with `min_lsn`) it had replayed
    /// `min_lsn`. The [`ReadPolicy`] chooses among the usable ones.
    ///
    /// With no usable replica: the primary if `fallback_to_primary` (the default), else
    /// [`NoReplica`], which says why each replica is out. Replicas that are usable except that
    /// they have not replayed `min_lsn` yet send the read to the primary even without
    /// `fallback_to_primary`: the session must see its write.
    ///
    /// **Cost:** a few atomic loads per replica, a clock read (vDSO, no system call) when
    /// `max_lag_time` is set, and the policy's arithmetic: no I/O, no lock, no allocation.
    /// The positions are the monitor's last observation, so a read may go to the primary up to
    /// one monitor interval after a replica has in fact caught up, never the other way.
    pub fn pick(&self, min_lsn: Option<Lsn>) -> Result<Option<usize>, NoReplica> {
        let now_ms = self.silence_limit_ms.map(|_| self.shared.now_ms());
        let mut usable = [ReplicaView::new(0, 0); MAX_REPLICAS];
        let mut n = 0;
        let mut behind = 0;
        let mut out = NoReplica {
            replicas: self.urls.len(),
            ..NoReplica::default()
        };
        for (index, health) in self.shared.replicas.iter().enumerate() {
            match health.state() {
                ReplicaState::Healthy => {}
                ReplicaState::Unchecked => {
                    out.unchecked += 1;
                    continue;
                }
                ReplicaState::Lagging => {
                    out.lagging += 1;
                    continue;
                }
                ReplicaState::Unreachable => {
                    out.unreachable += 1;
                    continue;
                }
                ReplicaState::NotInRecovery => {
                    out.not_in_recovery += 1;
                    continue;
                }
            }
            if let (Some(now), Some(limit)) = (now_ms, self.silence_limit_ms) {
                if health
                    .answered_at_ms()
                    .is_none_or(|at| now.saturating_sub(at) > limit)
                {
                    out.unchecked += 1;
                    continue;
                }
            }
            let replay_lsn = health.replay_lsn();
            if min_lsn.is_some_and(|min| replay_lsn < min) {
                behind += 1;
                continue;
            }
            let lag = health.lag();
            usable[n] = ReplicaView {
                index,
                in_use: health.in_use(),
                replay_lsn,
                lag_bytes: lag.bytes,
                lag: lag.time,
            };
            n += 1;
        }
        if n == 0 {
            return if behind > 0 || self.fallback_to_primary {
                Ok(None)
            } else {
                Err(out)
            };
        }
        let usable = &usable[..n];
        Ok(self
            .policy
            .choose(usable)
            .and_then(|p| usable.get(p))
            .map(|v| v.index))
    }

    /// [`ReplicaSet::pick`] for a session whose last write was `last_write` (`None`: it has not
    /// written): after [`LastWrite::Lsn`], a replica that replayed it; within a
    /// [`LastWrite::PrimaryUntil`] window, the primary. Same cost as `pick`, plus a clock read
    /// in window mode.
    pub fn pick_after(&self, last_write: Option<LastWrite>) -> Result<Option<usize>, NoReplica> {
        match last_write {
            None => self.pick(None),
            Some(LastWrite::Lsn(lsn)) => self.pick(Some(lsn)),
            Some(LastWrite::PrimaryUntil(until)) if Instant::now() < until => Ok(None),
            Some(LastWrite::PrimaryUntil(_)) => self.pick(None),
        }
    }

    /// The read-your-writes mode of the configuration the set was made with: call its
    /// [`ReadYourWrites::after_commit`] on the session's connection after each write.
    pub fn read_your_writes(&self) -> ReadYourWrites {
        self.read_your_writes
    }

    /// Count a call on replica `index` until the returned guard is dropped (for
    /// [`LeastInUse`](policy::LeastInUse) and [`ReplicaStatus::in_use`]). One relaxed atomic
    /// add, and one subtract on drop.
    ///
    /// # Panics
    /// If `index` is not a replica of the set (`pick` only returns ones that are).
    pub fn acquire(&self, index: usize) -> InUse<'_> {
        let health = &self.shared.replicas[index];
        health
            .in_use
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InUse { health }
    }

    /// A call on replica `index` failed at the connection level (checkout, connect, a dropped
    /// connection; see [`is_connection_failure`]): eject it now, before the monitor would
    /// notice. The monitor asks it again after the backoff and readmits it when it answers.
    /// Retry the read once on the primary. Two atomic writes and a log line; no I/O.
    ///
    /// # Panics
    /// If `index` is not a replica of the set.
    pub fn report_failure(&self, index: usize) {
        self.report_failure_because(index, "a call on it failed at the connection level");
    }

    /// [`ReplicaSet::report_failure`], saying why (shown in [`ReplicaStatus::reason`]).
    pub fn report_failure_because(&self, index: usize, why: &str) {
        self.shared.replicas[index].set_reason(Some(format!("a call failed: {why}")));
        let (before, failures) = self.shared.replicas[index].report_failure();
        if before != ReplicaState::Unreachable {
            tracing::warn!(
                replica = index,
                url = %self.urls[index],
                failures,
                "replica ejected: a call on it failed at the connection level"
            );
        }
    }

    /// The number of replicas in the set.
    pub fn len(&self) -> usize {
        self.urls.len()
    }

    /// Whether the set has no replicas (every read then goes to the primary).
    pub fn is_empty(&self) -> bool {
        self.urls.is_empty()
    }

    /// The primary's WAL position at the monitor's last successful check.
    pub fn primary_lsn(&self) -> Option<Lsn> {
        self.shared.primary_lsn()
    }

    /// How many rounds the monitor has completed (each asks the primary and every replica not
    /// in backoff): to wait for a fresh observation, wait for this to grow by two.
    pub fn monitor_rounds(&self) -> u64 {
        self.shared.rounds()
    }

    /// What the set knows of each replica now, for status pages and tests. Allocates: not for
    /// the read path.
    pub fn status(&self) -> Vec<ReplicaStatus> {
        self.shared
            .replicas
            .iter()
            .zip(self.urls.iter())
            .enumerate()
            .map(|(index, (health, url))| status_of(index, health, url))
            .collect()
    }
}

fn status_of(index: usize, health: &ReplicaHealth, url: &RedactedUrl) -> ReplicaStatus {
    let lag = health.lag();
    let replay = health.replay_lsn();
    ReplicaStatus {
        index,
        url: url.clone(),
        state: health.state(),
        replay_lsn: (replay != Lsn::INVALID).then_some(replay),
        lag_bytes: lag.bytes,
        lag: lag.time,
        in_use: health.in_use(),
        failures: health.failures(),
        reason: health.reason(),
    }
}

fn postgres_url(url: &str) -> Result<DatabaseUrl> {
    let parsed = DatabaseUrl::parse(url)?;
    match parsed.target {
        Target::Postgres { .. } => Ok(parsed),
        _ => Err(Error::InvalidUrl {
            url: parsed.redacted,
            reason: "replica routing is for PostgreSQL: expected `postgres://user@host:5432/db`"
                .into(),
        }),
    }
}

/// Counts one call on a replica while alive: from [`ReplicaSet::acquire`].
#[derive(Debug)]
#[must_use = "the call is counted only while the guard lives"]
pub struct InUse<'set> {
    health: &'set ReplicaHealth,
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.health
            .in_use
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One replica as the set sees it: from [`ReplicaSet::status`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaStatus {
    /// Its index in the set.
    pub index: usize,
    /// Its URL, password redacted.
    pub url: RedactedUrl,
    /// Whether it serves reads, and if not why.
    pub state: ReplicaState,
    /// The replay position of the last check that answered.
    pub replay_lsn: Option<Lsn>,
    /// Bytes of WAL it was behind the primary at that check (`None`: primary position unknown).
    pub lag_bytes: Option<u64>,
    /// How long it had been missing WAL the primary had, at that check: the time since the
    /// monitor first saw the primary past the replica's replay position, zero when not behind
    /// (so zero on an idle primary). Accurate to one monitor interval.
    pub lag: Option<Duration>,
    /// Calls it is serving now.
    pub in_use: usize,
    /// Failures in a row (checks that did not answer, reported failures); 0 once it answers.
    pub failures: u32,
    /// Why it does not serve reads, when it does not: the monitor's last failed check (no
    /// connection, no answer within `check_timeout`), the failure a call reported, or its lag.
    pub reason: Option<String>,
}

/// No replica can serve a read and `fallback_to_primary` is off: how many replicas are out
/// for each reason. Converts into [`Error::NoReplica`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NoReplica {
    /// Replicas in the set.
    pub replicas: usize,
    /// Not checked yet, or silent for longer than `max_lag_time` (a check that hangs).
    pub unchecked: usize,
    /// Behind the primary by more than the limits.
    pub lagging: usize,
    /// Not answering, or a call on them failed at the connection level.
    pub unreachable: usize,
    /// Not in recovery (promoted).
    pub not_in_recovery: usize,
}

impl fmt::Display for NoReplica {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.replicas == 0 {
            return f.write_str("the replica set has no replicas");
        }
        write!(f, "none of the {} replicas can serve reads:", self.replicas)?;
        let reasons = [
            (self.unreachable, "unreachable"),
            (self.lagging, "lagging beyond the limits"),
            (self.not_in_recovery, "not in recovery (promoted)"),
            (self.unchecked, "not checked recently"),
        ];
        let mut first = true;
        for (count, why) in reasons.into_iter().filter(|(count, _)| *count > 0) {
            write!(f, "{} {count} {why}", if first { "" } else { "," })?;
            first = false;
        }
        Ok(())
    }
}

impl std::error::Error for NoReplica {}

impl From<NoReplica> for Error {
    fn from(no: NoReplica) -> Self {
        Error::NoReplica {
            reasons: no.to_string(),
        }
    }
}

/// Whether `error`, from a call on a replica, means the replica (or the way to it) failed
/// rather than the query: no connection could be made or checked out, or the connection
/// dropped. Such a call should be [reported](ReplicaSet::report_failure) and retried once on the
/// primary. A query cancelled for a conflict with recovery (SQLSTATE 40001 on a hot standby)
/// is not one: the replica is fine, though retrying that read on the primary is reasonable.
pub fn is_connection_failure(error: &Error) -> bool {
    use diesel::result::{DatabaseErrorKind as Kind, Error as D};
    match error {
        Error::Connect { .. } | Error::PoolTimeout { .. } | Error::Deadline { .. } => true,
        Error::Query(D::DatabaseError(kind, _)) => {
            matches!(kind, Kind::ClosedConnection | Kind::UnableToSendCommand)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::health::Lag;
    use super::policy::{LeastInUse, RoundRobin};
    use super::*;

    fn set(n: usize, config: RouterConfig, policy: Box<dyn ReadPolicy>) -> ReplicaSet {
        let urls = (0..n)
            .map(|i| RedactedUrl::new(format!("postgres://replica{i}/db")))
            .collect();
        ReplicaSet::unmonitored(urls, &config, policy)
    }

    fn round_robin(n: usize) -> ReplicaSet {
        set(n, RouterConfig::default(), Box::new(RoundRobin::new()))
    }

    /// Publish what a check of replica `i` would have found, now.
    fn observe(set: &ReplicaSet, i: usize, state: ReplicaState, replay: u64) {
        let lag = Lag {
            bytes: Some(0),
            time: Some(Duration::ZERO),
        };
        let now = set.shared.now_ms();
        set.shared.replicas[i].publish(state, Some(Lsn(replay)), lag, now);
    }

    fn picks(set: &ReplicaSet, min_lsn: Option<Lsn>, times: usize) -> Vec<Option<usize>> {
        (0..times).map(|_| set.pick(min_lsn).unwrap()).collect()
    }

    #[test]
    fn only_healthy_replicas_serve_reads() {
        let set = round_robin(4);
        assert_eq!(set.pick(None), Ok(None), "nothing checked yet: the primary");
        observe(&set, 0, ReplicaState::Healthy, 100);
        observe(&set, 1, ReplicaState::Lagging, 100);
        observe(&set, 2, ReplicaState::Healthy, 100);
        observe(&set, 3, ReplicaState::NotInRecovery, 100);
        assert_eq!(picks(&set, None, 4), [Some(0), Some(2), Some(0), Some(2)]);
        set.report_failure(2);
        assert_eq!(picks(&set, None, 2), [Some(0), Some(0)]);
        assert_eq!(set.status()[2].state, ReplicaState::Unreachable);
        assert_eq!(set.status()[2].failures, 1);
    }

    #[test]
    fn a_session_read_needs_a_replica_that_replayed_its_write() {
        let set = round_robin(3);
        observe(&set, 0, ReplicaState::Healthy, 100);
        observe(&set, 1, ReplicaState::Healthy, 250);
        observe(&set, 2, ReplicaState::Healthy, 300);
        assert_eq!(
            picks(&set, Some(Lsn(250)), 4),
            [Some(1), Some(2), Some(1), Some(2)]
        );
        assert_eq!(picks(&set, Some(Lsn(300)), 2), [Some(2), Some(2)]);
        assert_eq!(set.pick(Some(Lsn(301))), Ok(None));
        assert_eq!(set.pick_after(Some(LastWrite::Lsn(Lsn(301)))), Ok(None));
        assert_eq!(set.pick_after(Some(LastWrite::Lsn(Lsn(300)))), Ok(Some(2)));
    }

    #[test]
    fn a_window_sends_reads_to_the_primary_until_it_ends() {
        let set = round_robin(1);
        observe(&set, 0, ReplicaState::Healthy, 1);
        let open = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            set.pick_after(Some(LastWrite::PrimaryUntil(open))),
            Ok(None)
        );
        let over = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            set.pick_after(Some(LastWrite::PrimaryUntil(over))),
            Ok(Some(0))
        );
        assert_eq!(set.pick_after(None), Ok(Some(0)));
    }

    #[test]
    fn without_fallback_no_usable_replica_is_an_error_naming_why() {
        let config = RouterConfig {
            fallback_to_primary: false,
            ..RouterConfig::default()
        };
        let set = set(4, config, Box::new(RoundRobin::new()));
        observe(&set, 0, ReplicaState::Lagging, 1);
        observe(&set, 1, ReplicaState::NotInRecovery, 1);
        set.report_failure(2);
        let no = set.pick(None).unwrap_err();
        assert_eq!(
            (
                no.replicas,
                no.lagging,
                no.not_in_recovery,
                no.unreachable,
                no.unchecked
            ),
            (4, 1, 1, 1, 1)
        );
        let message = Error::from(no).to_string();
        assert_eq!(
            message,
            "no replica can serve the read: none of the 4 replicas can serve reads: 1 unreachable, \
             1 lagging beyond the limits, 1 not in recovery (promoted), 1 not checked recently"
        );
        // A healthy replica that has not replayed the session's write: the primary, still.
        observe(&set, 3, ReplicaState::Healthy, 10);
        assert_eq!(set.pick(Some(Lsn(11))), Ok(None));
        assert_eq!(set.pick(None), Ok(Some(3)));
        let empty = super::tests::set(
            0,
            RouterConfig {
                fallback_to_primary: false,
                ..RouterConfig::default()
            },
            Box::new(RoundRobin::new()),
        );
        assert_eq!(
            empty.pick(None).unwrap_err().to_string(),
            "the replica set has no replicas"
        );
    }

    #[test]
    fn a_replica_silent_beyond_the_lag_limit_is_not_used() {
        let config = RouterConfig {
            max_lag_time: Some(Duration::from_millis(10)),
            monitor_interval: Duration::from_millis(10),
            ..RouterConfig::default()
        };
        let set = set(1, config, Box::new(RoundRobin::new()));
        observe(&set, 0, ReplicaState::Healthy, 1);
        assert_eq!(set.pick(None), Ok(Some(0)));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(set.pick(None), Ok(None));
        let unlimited = RouterConfig {
            max_lag_time: None,
            ..RouterConfig::default()
        };
        let set = super::tests::set(1, unlimited, Box::new(RoundRobin::new()));
        observe(&set, 0, ReplicaState::Healthy, 1);
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(set.pick(None), Ok(Some(0)));
    }

    #[test]
    fn in_use_guards_steer_least_in_use() {
        let set = set(2, RouterConfig::default(), Box::new(LeastInUse::new()));
        observe(&set, 0, ReplicaState::Healthy, 1);
        observe(&set, 1, ReplicaState::Healthy, 1);
        let busy = set.acquire(0);
        let also_busy = set.acquire(0);
        assert_eq!(set.status()[0].in_use, 2);
        assert_eq!(picks(&set, None, 3), [Some(1), Some(1), Some(1)]);
        drop((busy, also_busy));
        assert_eq!(set.status()[0].in_use, 0);
        let mut idle = picks(&set, None, 2);
        idle.sort();
        assert_eq!(idle, [Some(0), Some(1)], "idle replicas share the reads");
    }

    #[test]
    fn a_policy_may_decline_or_misbehave_safely() {
        struct Nowhere;
        impl ReadPolicy for Nowhere {
            fn choose(&self, _: &[ReplicaView]) -> Option<usize> {
                Some(99)
            }
        }
        let set = set(1, RouterConfig::default(), Box::new(Nowhere));
        observe(&set, 0, ReplicaState::Healthy, 1);
        assert_eq!(set.pick(None), Ok(None));
    }

    #[test]
    fn policies_see_what_the_monitor_published() {
        #[derive(Default)]
        struct Record(std::sync::Mutex<Vec<ReplicaView>>);
        impl ReadPolicy for Arc<Record> {
            fn choose(&self, candidates: &[ReplicaView]) -> Option<usize> {
                self.0.lock().unwrap().extend_from_slice(candidates);
                Some(candidates.len() - 1)
            }
        }
        let record = Arc::new(Record::default());
        let set = set(3, RouterConfig::default(), Box::new(Arc::clone(&record)));
        observe(&set, 0, ReplicaState::Healthy, 7);
        observe(&set, 2, ReplicaState::Healthy, 9);
        let _guard = set.acquire(2);
        assert_eq!(set.pick(None), Ok(Some(2)));
        let zero = Duration::ZERO;
        assert_eq!(
            *record.0.lock().unwrap(),
            [
                ReplicaView::new(0, 0).with_lag(Lsn(7), 0, zero),
                ReplicaView::new(2, 1).with_lag(Lsn(9), 0, zero),
            ]
        );
    }

    #[test]
    fn connection_failures_are_told_from_query_errors() {
        use diesel::result::{DatabaseErrorKind as Kind, Error as D};
        let closed = D::DatabaseError(Kind::ClosedConnection, Box::new("server closed".to_owned()));
        assert!(is_connection_failure(&Error::Query(closed)));
        let pool = Error::PoolTimeout {
            url: RedactedUrl::new("postgres://r/db".into()),
            timeout: std::time::Duration::from_secs(5),
            size: 1,
            max_overflow: 0,
            in_use: 1,
            waiting: 1,
            last_error: None,
        };
        assert!(is_connection_failure(&pool));
        assert!(!is_connection_failure(&Error::NotFound { table: "t" }));
        let conflict = D::DatabaseError(
            Kind::SerializationFailure,
            Box::new("conflict with recovery".to_owned()),
        );
        assert!(!is_connection_failure(&Error::Query(conflict)));
    }

    #[test]
    fn start_refuses_urls_that_are_not_postgres_and_too_many_replicas() {
        let err = ReplicaSet::start(
            "postgres://p/db",
            ["sqlite::memory:"],
            RouterConfig::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        let many = vec!["postgres://u:secret@r/db"; MAX_REPLICAS + 1];
        let err = ReplicaSet::start("postgres://p/db", many, RouterConfig::default()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("at most 16") && !text.contains("secret"),
            "{text}"
        );
    }

    #[test]
    fn dropping_a_set_stops_its_monitor_promptly() {
        // Nothing listens on port 1: the monitor's checks fail at once.
        let set = ReplicaSet::start(
            "postgres://postgres@127.0.0.1:1/db",
            ["postgres://postgres@127.0.0.1:1/db"],
            RouterConfig::default(),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while set.monitor_rounds() == 0 {
            assert!(
                Instant::now() < deadline,
                "the monitor never completed a round"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(set.status()[0].state, ReplicaState::Unreachable);
        assert_eq!(set.pick(None), Ok(None));
        let dropped = Instant::now();
        drop(set);
        assert!(dropped.elapsed() < Duration::from_secs(1));
    }
}
