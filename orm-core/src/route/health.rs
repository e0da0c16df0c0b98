//! What the monitor publishes about each replica and the router reads before every read:
//! atomics only, written by the monitor thread (and by a caller reporting a failure), read
//! lock-free on the read path.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

use super::lsn::Lsn;

/// Where a replica stands, as of the monitor's last check (or a reported failure since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReplicaState {
    /// Not checked yet: the monitor's first round has not reached it. Not used.
    Unchecked,
    /// Answered, in recovery, within the lag limits: serves reads.
    Healthy,
    /// Answered, but further behind the primary than `max_lag_bytes` or `max_lag_time`: not
    /// used until it catches up.
    Lagging,
    /// Did not accept a connection or answer in time, or a call on it failed at the connection
    /// level: not used until it answers the monitor again, asked with exponential backoff.
    Unreachable,
    /// Answered but is not in recovery (it was promoted, or is not a replica at all): never
    /// used as a replica while so.
    NotInRecovery,
}

impl ReplicaState {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Healthy,
            2 => Self::Lagging,
            3 => Self::Unreachable,
            4 => Self::NotInRecovery,
            _ => Self::Unchecked,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Self::Unchecked => 0,
            Self::Healthy => 1,
            Self::Lagging => 2,
            Self::Unreachable => 3,
            Self::NotInRecovery => 4,
        }
    }
}

/// `u64::MAX` in a lag atomic: not known.
const UNKNOWN: u64 = u64::MAX;

/// One replica's published state.
#[derive(Debug)]
pub(crate) struct ReplicaHealth {
    state: AtomicU8,
    replay_lsn: AtomicU64,
    lag_bytes: AtomicU64,
    lag_micros: AtomicU64,
    /// When the replica last answered a check, in the set's milliseconds (`UNKNOWN`: never).
    answered_at_ms: AtomicU64,
    /// Calls the replica serves now (incremented and decremented by in-use guards).
    pub(crate) in_use: AtomicUsize,
    /// Failures in a row: the monitor's and reported ones.
    failures: AtomicU32,
    /// Set by a reported failure, taken by the monitor (which then drops its connection and
    /// waits out the backoff before asking again).
    reported: AtomicBool,
    /// Why the replica does not serve reads (the last failure, or why it is lagging); `None`
    /// while healthy. Written only when the state is decided, never on the read path.
    reason: std::sync::Mutex<Option<String>>,
}

/// A replica's lag as the monitor measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Lag {
    pub(crate) bytes: Option<u64>,
    pub(crate) time: Option<Duration>,
}

impl Default for ReplicaHealth {
    fn default() -> Self {
        Self {
            state: AtomicU8::new(ReplicaState::Unchecked.to_u8()),
            replay_lsn: AtomicU64::new(Lsn::INVALID.0),
            lag_bytes: AtomicU64::new(UNKNOWN),
            lag_micros: AtomicU64::new(UNKNOWN),
            answered_at_ms: AtomicU64::new(UNKNOWN),
            in_use: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            reported: AtomicBool::new(false),
            reason: std::sync::Mutex::new(None),
        }
    }
}

impl ReplicaHealth {
    /// The state; `Acquire` pairs with [`ReplicaHealth::publish`]'s `Release`, so a reader that
    /// sees `Healthy` sees the position and lag published with it.
    pub(crate) fn state(&self) -> ReplicaState {
        ReplicaState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn replay_lsn(&self) -> Lsn {
        Lsn(self.replay_lsn.load(Ordering::Relaxed))
    }

    pub(crate) fn lag(&self) -> Lag {
        let known = |v: u64| (v != UNKNOWN).then_some(v);
        Lag {
            bytes: known(self.lag_bytes.load(Ordering::Relaxed)),
            time: known(self.lag_micros.load(Ordering::Relaxed)).map(Duration::from_micros),
        }
    }

    /// When the replica last answered a check (the set's milliseconds), if ever.
    pub(crate) fn answered_at_ms(&self) -> Option<u64> {
        let at = self.answered_at_ms.load(Ordering::Relaxed);
        (at != UNKNOWN).then_some(at)
    }

    pub(crate) fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Why the replica is out of service, if it is.
    pub(crate) fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Record why the replica is out of service (`None`: it serves reads).
    pub(crate) fn set_reason(&self, why: Option<String>) {
        *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = why;
    }

    /// Publish a check that answered at `now_ms`: position, lag, then the state that makes
    /// them visible. Returns the previous state.
    pub(crate) fn publish(
        &self,
        state: ReplicaState,
        replay: Option<Lsn>,
        lag: Lag,
        now_ms: u64,
    ) -> ReplicaState {
        self.answered_at_ms.store(now_ms, Ordering::Relaxed);
        if let Some(lsn) = replay {
            self.replay_lsn.store(lsn.0, Ordering::Relaxed);
        }
        self.lag_bytes
            .store(lag.bytes.unwrap_or(UNKNOWN), Ordering::Relaxed);
        let micros = lag.time.map_or(UNKNOWN, |t| {
            t.as_micros().min(u128::from(UNKNOWN - 1)) as u64
        });
        self.lag_micros.store(micros, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        ReplicaState::from_u8(self.state.swap(state.to_u8(), Ordering::Release))
    }

    /// Mark the replica unreachable; returns the previous state and the failures in a row.
    pub(crate) fn fail(&self) -> (ReplicaState, u32) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let before = self
            .state
            .swap(ReplicaState::Unreachable.to_u8(), Ordering::Release);
        (ReplicaState::from_u8(before), failures)
    }

    /// A failure seen on the read path: eject now and tell the monitor.
    pub(crate) fn report_failure(&self) -> (ReplicaState, u32) {
        let outcome = self.fail();
        self.reported.store(true, Ordering::Release);
        outcome
    }

    /// Whether a failure was reported since the last call.
    pub(crate) fn take_reported(&self) -> bool {
        self.reported.swap(false, Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_their_encoding() {
        for s in [
            ReplicaState::Unchecked,
            ReplicaState::Healthy,
            ReplicaState::Lagging,
            ReplicaState::Unreachable,
            ReplicaState::NotInRecovery,
        ] {
            assert_eq!(ReplicaState::from_u8(s.to_u8()), s);
        }
    }

    #[test]
    fn publish_resets_failures_and_reports_the_previous_state() {
        let h = ReplicaHealth::default();
        assert_eq!(h.report_failure(), (ReplicaState::Unchecked, 1));
        assert_eq!(h.fail(), (ReplicaState::Unreachable, 2));
        assert!(h.take_reported());
        assert!(!h.take_reported());
        let lag = Lag {
            bytes: Some(10),
            time: Some(Duration::from_millis(3)),
        };
        assert_eq!(
            h.publish(ReplicaState::Healthy, Some(Lsn(42)), lag, 7),
            ReplicaState::Unreachable
        );
        assert_eq!(
            (h.state(), h.replay_lsn(), h.lag(), h.failures()),
            (ReplicaState::Healthy, Lsn(42), lag, 0)
        );
        h.publish(ReplicaState::Healthy, None, Lag::default(), 8);
        assert_eq!(h.answered_at_ms(), Some(8));
        assert_eq!((h.replay_lsn(), h.lag()), (Lsn(42), Lag::default()));
    }
}
