//! The health and lag monitor: one background thread per replica set, never on the read path.
//!
//! Every `monitor_interval` it asks the primary for its WAL position and each replica (whose
//! backoff has expired) for its replay position, on connections of its own (never the pools'),
//! and publishes the outcome in the set's atomics.
//!
//! **Lag in bytes** is the primary's position at the start of the round minus the replica's
//! replay position.
//!
//! **Lag in time** is not `now() - pg_last_xact_replay_timestamp()`: that grows without bound
//! on an idle primary (no new transactions, so the last replayed one gets older while the
//! replica is fully caught up), jumps on the first write after a quiet spell, and compares two
//! machines' clocks. Instead the monitor keeps the positions the primary reported, each with
//! the instant it was first seen; a replica's lag is how long ago the primary was first seen
//! past the replica's replay position (zero when it is not behind any sample). That is the time
//! the replica has been missing WAL the primary had, to within one interval, measured on one
//! clock, and zero on an idle primary.
//!
//! **Unreachable replicas** (no connection within `connect_timeout`, no answer within
//! `check_timeout`, or a failure reported by a caller) are asked again after
//! `eject_backoff.initial`, doubling after each failure in a row up to `eject_backoff.max`, and
//! readmitted by the first check that answers within the limits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::dsl::sql;
use diesel::pg::PgConnection;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::{Connection, QueryResult, RunQueryDsl};

use super::config::RouterConfig;
use super::health::{Lag, ReplicaHealth, ReplicaState};
use super::lsn::{parse_reported, Lsn};
use crate::pool::deadline::Watch;
use crate::pool::postgres::{OpenError, Opener};
use crate::url::{DatabaseUrl, Target};

/// How long dropping a replica set waits for its monitor thread to finish. A monitor inside a
/// connection attempt or a query may need up to `connect_timeout` or `check_timeout` to notice;
/// it is then left to finish on its own (it only reads the set's atomics and its own
/// connections, and exits at its next step).
const JOIN_WAIT: Duration = Duration::from_millis(200);

/// Primary positions kept for lag in time: enough for minutes of a busy primary at the default
/// interval; older positions only matter for a replica already far past any sane limit.
const HISTORY: usize = 1024;

/// The state the monitor and the read path share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) replicas: Box<[ReplicaHealth]>,
    /// The primary's last observed position (`Lsn::INVALID`: not known yet).
    primary_lsn: AtomicU64,
    /// Completed monitor rounds.
    rounds: AtomicU64,
    /// What `answered_at` counts from.
    epoch: Instant,
    stop: Mutex<bool>,
    wake: Condvar,
}

impl Shared {
    pub(crate) fn new(replicas: usize) -> Self {
        Self {
            replicas: (0..replicas).map(|_| ReplicaHealth::default()).collect(),
            primary_lsn: AtomicU64::new(Lsn::INVALID.0),
            rounds: AtomicU64::new(0),
            epoch: Instant::now(),
            stop: Mutex::new(false),
            wake: Condvar::new(),
        }
    }

    /// Milliseconds since the set was made: the clock of `answered_at`.
    pub(crate) fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) fn primary_lsn(&self) -> Option<Lsn> {
        let lsn = Lsn(self.primary_lsn.load(Ordering::Relaxed));
        (lsn != Lsn::INVALID).then_some(lsn)
    }

    pub(crate) fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Acquire)
    }

    fn stopped(&self) -> bool {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleep for `d` or until stopped; returns whether stopped.
    fn sleep(&self, d: Duration) -> bool {
        let guard = self.stop.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopped| !*stopped)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }

    fn request_stop(&self) {
        *self.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.wake.notify_all();
    }
}

/// The running monitor thread; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct MonitorHandle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected when the thread has finished (it holds the sender). In a mutex only so
    /// that the handle, and the `Database` holding it, is `Sync`.
    finished: std::sync::Mutex<mpsc::Receiver<()>>,
}

impl Drop for MonitorHandle {
    /// Stops the thread and joins it if it finishes within [`JOIN_WAIT`]; never blocks longer.
    fn drop(&mut self) {
        self.shared.request_stop();
        let Some(thread) = self.thread.take() else {
            return;
        };
        let finished = self.finished.get_mut().unwrap_or_else(|e| e.into_inner());
        match finished.recv_timeout(JOIN_WAIT) {
            Err(mpsc::RecvTimeoutError::Disconnected) | Ok(()) => {
                let _ = thread.join();
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tracing::debug!("replica monitor still inside a check; it stops after it");
            }
        }
    }
}

/// Start the monitor thread for `shared`'s replicas, whose URLs are `replicas` (same order).
///
/// # Panics
/// If the operating system cannot start a thread.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    primary: DatabaseUrl,
    replicas: Vec<DatabaseUrl>,
    config: RouterConfig,
) -> MonitorHandle {
    let (done, finished) = mpsc::channel();
    let now = Instant::now();
    let monitor = Monitor {
        shared: Arc::clone(&shared),
        primary: Endpoint::new(primary, &config),
        primary_up: None,
        replicas: replicas
            .into_iter()
            .map(|url| Probe {
                endpoint: Endpoint::new(url, &config),
                next_check: now,
            })
            .collect(),
        history: History::default(),
        config,
        _done: done,
    };
    // The monitor logs to the subscriber current where the replica set is started.
    let logs_to = tracing::dispatcher::get_default(Clone::clone);
    let thread = std::thread::Builder::new()
        .name("orm-replica-monitor".into())
        .spawn(move || tracing::dispatcher::with_default(&logs_to, || monitor.run()))
        .expect("start the replica monitor thread");
    MonitorHandle {
        shared,
        thread: Some(thread),
        finished: std::sync::Mutex::new(finished),
    }
}

struct Monitor {
    shared: Arc<Shared>,
    config: RouterConfig,
    primary: Endpoint,
    /// Whether the primary answered its last check (`None`: not asked yet), to log changes only.
    primary_up: Option<bool>,
    replicas: Vec<Probe>,
    history: History,
    /// Dropped when `run` returns, which tells the handle the thread is done.
    _done: mpsc::Sender<()>,
}

struct Probe {
    endpoint: Endpoint,
    /// Not asked before this instant (backoff after failures).
    next_check: Instant,
}

/// A server the monitor asks, over a connection of its own made on demand.
struct Endpoint {
    url: DatabaseUrl,
    /// The URL with the monitor's connection parameters added.
    conninfo: String,
    statement_timeout_ms: u128,
    /// How long a check may take, kept by the client: a hung server never answers, and its
    /// `statement_timeout` runs in the hung process.
    check_timeout: Duration,
    opener: Opener,
    /// The connection, after its watch (which must drop first).
    conn: Option<(Watch, PgConnection)>,
}

impl Endpoint {
    fn new(url: DatabaseUrl, config: &RouterConfig) -> Self {
        let raw = match &url.target {
            Target::Postgres { url } => url.as_str(),
            _ => unreachable!("the replica set accepts PostgreSQL URLs only"),
        };
        // libpq lets a later parameter override an earlier one: these win over the URL's.
        let sep = if raw.contains('?') { '&' } else { '?' };
        let conninfo = format!(
            "{raw}{sep}connect_timeout={}&application_name=orm-replica-monitor",
            config.connect_timeout_secs()
        );
        let opener = Opener::new(url.redacted.to_string(), url.tcp_ports(), Some(false)).quiet();
        Self {
            url,
            conninfo,
            statement_timeout_ms: config.check_timeout.as_millis().max(1),
            check_timeout: config.check_timeout,
            opener,
            conn: None,
        }
    }

    /// Run `query` on the endpoint, connecting first if needed, within the check timeout. Any
    /// failure drops the connection (the next call makes a fresh one) and is returned as text
    /// without secrets.
    fn ask<T>(
        &mut self,
        query: impl FnOnce(&mut PgConnection) -> QueryResult<T>,
    ) -> Result<T, String> {
        let limit = self.check_timeout;
        let late = || format!("did not answer within {limit:?} (check_timeout)");
        let (watch, conn) = match &mut self.conn {
            Some((watch, conn)) => (&*watch, conn),
            empty => {
                let (mut conn, watch) = self
                    .opener
                    .open(Some(limit), || PgConnection::establish(&self.conninfo))
                    .map_err(|e| match e {
                        OpenError::Connect(e) => self.url.scrub(e.to_string().trim()),
                        OpenError::Setup(e) => self.url.scrub(e.to_string().trim()),
                        OpenError::Deadline(_) => late(),
                    })?;
                let sql = format!("SET statement_timeout = {}", self.statement_timeout_ms);
                let (set, timed_out) = watch.call(limit, true, || conn.batch_execute(&sql));
                if timed_out {
                    return Err(late());
                }
                set.map_err(|e| self.url.scrub(e.to_string().trim()))?;
                let (watch, conn) = empty.insert((watch, conn));
                (&*watch, conn)
            }
        };
        let (answer, timed_out) = watch.call(limit, true, || query(conn));
        if timed_out {
            self.conn = None;
            return Err(late());
        }
        answer.map_err(|e| {
            self.conn = None;
            self.url.scrub(e.to_string().trim())
        })
    }
}

/// What one replica check returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Observation {
    pub(crate) in_recovery: bool,
    pub(crate) replay: Option<Lsn>,
    pub(crate) receive: Option<Lsn>,
    pub(crate) paused: bool,
}

fn ask_replica(conn: &mut PgConnection) -> QueryResult<Observation> {
    // `pg_is_wal_replay_paused()` raises an error outside recovery; CASE keeps it from running.
    let (in_recovery, replay, receive, paused) =
        sql::<(Bool, Nullable<Text>, Nullable<Text>, Bool)>(
            "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, \
             pg_last_wal_receive_lsn()::text, \
             CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END",
        )
        .get_result::<(bool, Option<String>, Option<String>, bool)>(conn)?;
    Ok(Observation {
        in_recovery,
        replay: replay.as_deref().map(parse_reported).transpose()?,
        receive: receive.as_deref().map(parse_reported).transpose()?,
        paused,
    })
}

fn ask_primary(conn: &mut PgConnection) -> QueryResult<Lsn> {
    let text: String = sql::<Text>("SELECT pg_current_wal_lsn()::text").get_result(conn)?;
    parse_reported(&text)
}

/// The primary's positions, each with the instant the monitor first saw it, oldest first.
#[derive(Debug, Default)]
pub(crate) struct History {
    samples: VecDeque<(Lsn, Instant)>,
}

impl History {
    pub(crate) fn record(&mut self, lsn: Lsn, at: Instant) {
        if self.samples.back().is_some_and(|&(last, _)| last >= lsn) {
            return;
        }
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back((lsn, at));
    }

    /// How long, as of `now`, the primary has been seen past `replay`; `None` before the first
    /// sample. When even the oldest kept sample is past `replay`, its age (a lower bound).
    pub(crate) fn lag(&self, replay: Lsn, now: Instant) -> Option<Duration> {
        self.samples.back()?;
        let behind = self.samples.partition_point(|&(lsn, _)| lsn <= replay);
        Some(
            self.samples
                .get(behind)
                .map_or(Duration::ZERO, |&(_, seen)| {
                    now.saturating_duration_since(seen)
                }),
        )
    }
}

/// The state a check that answered puts a replica in, with its lag and, when not healthy, why.
pub(crate) fn evaluate(
    config: &RouterConfig,
    observed: &Observation,
    primary: Option<Lsn>,
    history: &History,
    now: Instant,
) -> (ReplicaState, Lag, Option<String>) {
    if !observed.in_recovery {
        let why = "not in recovery (promoted, or not a standby): not used as a replica";
        return (
            ReplicaState::NotInRecovery,
            Lag::default(),
            Some(why.into()),
        );
    }
    let Some(replay) = observed.replay else {
        let why = "in recovery but has replayed nothing yet";
        return (ReplicaState::Lagging, Lag::default(), Some(why.into()));
    };
    let lag = Lag {
        bytes: primary.map(|p| p.bytes_since(replay)),
        time: history.lag(replay, now),
    };
    let over_bytes = matches!((lag.bytes, config.max_lag_bytes), (Some(b), Some(max)) if b > max);
    let over_time = matches!((lag.time, config.max_lag_time), (Some(t), Some(max)) if t > max);
    if !(over_bytes || over_time) {
        return (ReplicaState::Healthy, lag, None);
    }
    let mut why = format!(
        "lagging: {} bytes of WAL and {:?} behind the primary (limits: {} bytes, {:?}); replayed {replay}",
        lag.bytes.map_or("?".into(), |b| b.to_string()),
        lag.time.unwrap_or_default(),
        config.max_lag_bytes.map_or("none".into(), |b| b.to_string()),
        config.max_lag_time.unwrap_or_default(),
    );
    if let Some(receive) = observed.receive {
        why.push_str(&format!(", received {receive}"));
    }
    if observed.paused {
        why.push_str(", replay paused (pg_wal_replay_pause)");
    }
    (ReplicaState::Lagging, lag, Some(why))
}

impl Monitor {
    fn run(mut self) {
        let interval = self.config.interval();
        while !self.shared.stopped() {
            let started = Instant::now();
            self.check_primary();
            for i in 0..self.replicas.len() {
                if self.shared.stopped() {
                    return;
                }
                self.check_replica(i);
            }
            self.shared.rounds.fetch_add(1, Ordering::Release);
            if self
                .shared
                .sleep(interval.saturating_sub(started.elapsed()))
            {
                return;
            }
        }
    }

    fn check_primary(&mut self) {
        let answer = self.primary.ask(ask_primary);
        let up = answer.is_ok();
        match answer {
            Ok(lsn) => {
                self.history.record(lsn, Instant::now());
                self.shared.primary_lsn.store(lsn.0, Ordering::Relaxed);
            }
            Err(error) if self.primary_up != Some(false) => tracing::warn!(
                url = %self.primary.url.redacted,
                %error,
                "replica monitor cannot ask the primary for its WAL position; lag in bytes is \
                 measured against its last known position"
            ),
            Err(_) => {}
        }
        if up && self.primary_up == Some(false) {
            tracing::info!(url = %self.primary.url.redacted, "replica monitor reaches the primary again");
        }
        self.primary_up = Some(up);
    }

    fn check_replica(&mut self, i: usize) {
        let health = &self.shared.replicas[i];
        let probe = &mut self.replicas[i];
        let now = Instant::now();
        if health.take_reported() {
            // A caller's connection failed: make a fresh connection, after the backoff.
            probe.endpoint.conn = None;
            probe.next_check = now + self.config.eject_backoff.after(health.failures());
        }
        if now < probe.next_check {
            return;
        }
        let answer = probe.endpoint.ask(ask_replica);
        let url = &probe.endpoint.url.redacted;
        match answer {
            Ok(observed) => {
                let now = Instant::now();
                let primary = self.shared.primary_lsn();
                let (state, lag, why) =
                    evaluate(&self.config, &observed, primary, &self.history, now);
                health.set_reason(why.clone());
                let before = health.publish(state, observed.replay, lag, self.shared.now_ms());
                probe.next_check = now;
                if before == state {
                    return;
                }
                match (state, why) {
                    (ReplicaState::Healthy, _) if before == ReplicaState::Unchecked => {
                        tracing::debug!(replica = i, %url, "replica healthy")
                    }
                    (ReplicaState::Healthy, _) => tracing::info!(
                        replica = i,
                        %url,
                        was = ?before,
                        lag_bytes = lag.bytes,
                        lag_ms = lag.time.map(|t| t.as_millis() as u64),
                        "replica readmitted"
                    ),
                    (_, why)
                        if matches!(before, ReplicaState::Healthy | ReplicaState::Unchecked) =>
                    {
                        tracing::warn!(
                            replica = i,
                            %url,
                            state = ?state,
                            reason = why.as_deref().unwrap_or(""),
                            "replica ejected"
                        )
                    }
                    (_, why) => tracing::warn!(
                        replica = i,
                        %url,
                        state = ?state,
                        was = ?before,
                        reason = why.as_deref().unwrap_or(""),
                        "replica still ejected, for another reason"
                    ),
                }
            }
            Err(error) => {
                health.set_reason(Some(format!("unreachable: {error}")));
                let (before, failures) = health.fail();
                let wait = self.config.eject_backoff.after(failures);
                probe.next_check = Instant::now() + wait;
                if before != ReplicaState::Unreachable {
                    tracing::warn!(
                        replica = i,
                        %url,
                        %error,
                        retry_in_ms = wait.as_millis() as u64,
                        "replica ejected: unreachable"
                    );
                } else {
                    tracing::debug!(
                        replica = i,
                        %url,
                        %error,
                        failures,
                        retry_in_ms = wait.as_millis() as u64,
                        "replica still unreachable"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(replay: u64) -> Observation {
        Observation {
            in_recovery: true,
            replay: Some(Lsn(replay)),
            receive: Some(Lsn(replay)),
            paused: false,
        }
    }

    #[test]
    fn time_lag_is_zero_on_an_idle_primary_and_grows_while_behind() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut h = History::default();
        assert_eq!(h.lag(Lsn(5), t0), None);
        h.record(Lsn(100), t0);
        h.record(Lsn(100), t0 + 50 * s); // an idle primary: same position, nothing recorded
        assert_eq!(h.lag(Lsn(100), t0 + 60 * s), Some(Duration::ZERO));
        h.record(Lsn(200), t0 + 61 * s);
        h.record(Lsn(300), t0 + 62 * s);
        // Replayed 100: missing what the primary had at 61 s.
        assert_eq!(h.lag(Lsn(100), t0 + 63 * s), Some(2 * s));
        assert_eq!(h.lag(Lsn(250), t0 + 63 * s), Some(s));
        assert_eq!(h.lag(Lsn(300), t0 + 63 * s), Some(Duration::ZERO));
        assert_eq!(h.lag(Lsn(900), t0 + 63 * s), Some(Duration::ZERO));
        assert_eq!(h.lag(Lsn(50), t0 + 63 * s), Some(63 * s));
    }

    #[test]
    fn history_keeps_the_newest_positions() {
        let t0 = Instant::now();
        let mut h = History::default();
        for k in 1..=(HISTORY as u64 + 10) {
            h.record(Lsn(k), t0 + Duration::from_millis(k));
        }
        assert_eq!(h.samples.len(), HISTORY);
        assert_eq!(h.samples.front().unwrap().0, Lsn(11));
    }

    #[test]
    fn evaluation_ejects_for_lag_and_promotion() {
        let config = RouterConfig {
            max_lag_bytes: Some(1000),
            max_lag_time: Some(Duration::from_secs(2)),
            ..RouterConfig::default()
        };
        let t0 = Instant::now();
        let mut h = History::default();
        h.record(Lsn(10_000), t0);
        let now = t0 + Duration::from_secs(1);

        let (state, lag, why) = evaluate(&config, &observed(9_500), Some(Lsn(10_000)), &h, now);
        assert_eq!(
            (state, lag.bytes, why),
            (ReplicaState::Healthy, Some(500), None)
        );

        let (state, lag, why) = evaluate(&config, &observed(5_000), Some(Lsn(10_000)), &h, now);
        assert_eq!((state, lag.bytes), (ReplicaState::Lagging, Some(5_000)));
        assert!(why.unwrap().contains("5000 bytes"));

        let later = t0 + Duration::from_secs(3);
        let paused = Observation {
            paused: true,
            ..observed(9_999)
        };
        let (state, lag, why) = evaluate(&config, &paused, Some(Lsn(10_000)), &h, later);
        assert_eq!(
            (state, lag.time),
            (ReplicaState::Lagging, Some(Duration::from_secs(3)))
        );
        assert!(why.unwrap().contains("replay paused"));

        // Primary unknown: no byte lag, and no time lag either before a first sample.
        let (state, lag, _) = evaluate(&config, &observed(1), None, &History::default(), now);
        assert_eq!((state, lag), (ReplicaState::Healthy, Lag::default()));

        let promoted = Observation {
            in_recovery: false,
            ..observed(1)
        };
        let (state, _, why) = evaluate(&config, &promoted, Some(Lsn(2)), &h, now);
        assert_eq!(state, ReplicaState::NotInRecovery);
        assert!(why.unwrap().contains("not in recovery"));

        let unlimited = RouterConfig {
            max_lag_bytes: None,
            max_lag_time: None,
            ..config
        };
        let (state, _, _) = evaluate(&unlimited, &observed(0), Some(Lsn(1 << 40)), &h, later);
        assert_eq!(state, ReplicaState::Healthy);
    }
}
