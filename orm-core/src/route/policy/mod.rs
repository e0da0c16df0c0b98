//! Read policies: which of the usable replicas serves a read. One built-in policy per file;
//! implement [`ReadPolicy`] for your own.

mod least_in_use;
mod random;
mod round_robin;

use std::time::Duration;

pub use least_in_use::LeastInUse;
pub use random::Random;
pub use round_robin::RoundRobin;

use super::lsn::Lsn;

/// Chooses which replica serves a read, among those the router found usable.
///
/// The router calls [`choose`](ReadPolicy::choose) only with replicas that are healthy (the
/// monitor's last check answered, in recovery, within the lag limits) and, for a read that must
/// see the session's own write, have replayed it. It is called from many threads at once.
pub trait ReadPolicy: Send + Sync + 'static {
    /// Returns the position in `candidates` of the replica to use, or `None` to send the read
    /// to the primary (a position past the end counts as `None`).
    ///
    /// **When it is called:** on every read routed to the replicas, on the caller's thread,
    /// with at least one candidate, ordered by replica index.
    ///
    /// **What it may cost:** nothing but arithmetic and atomics on the policy's own state. It
    /// runs before every read, so it must not block, allocate, take a contended lock or do
    /// I/O; the views already carry what the monitor knows.
    fn choose(&self, candidates: &[ReplicaView]) -> Option<usize>;
}

impl ReadPolicy for Box<dyn ReadPolicy> {
    fn choose(&self, candidates: &[ReplicaView]) -> Option<usize> {
        (**self).choose(candidates)
    }
}

/// What a policy knows of one usable replica: a copy of the router's atomics, taken for this
/// one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaView {
    /// The replica's index in the set (the order its URL was given in).
    pub index: usize,
    /// Calls the replica is serving now, as counted by the router's in-use guards.
    pub in_use: usize,
    /// The last replay position the monitor saw.
    pub replay_lsn: Lsn,
    /// Bytes of WAL the replica was behind the primary at the monitor's last check; `None`
    /// while the primary's position is unknown.
    pub lag_bytes: Option<u64>,
    /// How long the replica had been missing WAL the primary had, at the monitor's last check;
    /// `None` while unknown.
    pub lag: Option<Duration>,
}

impl ReplicaView {
    /// A view of replica `index` serving `in_use` calls, its position and lag unknown: for
    /// testing a policy of your own.
    pub const fn new(index: usize, in_use: usize) -> Self {
        Self {
            index,
            in_use,
            replay_lsn: Lsn::INVALID,
            lag_bytes: None,
            lag: None,
        }
    }

    /// This view with the given replay position and lag.
    pub const fn with_lag(mut self, replay_lsn: Lsn, bytes: u64, time: Duration) -> Self {
        self.replay_lsn = replay_lsn;
        self.lag_bytes = Some(bytes);
        self.lag = Some(time);
        self
    }
}

/// `n` in `0..len`, from a uniformly distributed 64-bit `x`, without division (Lemire's
/// multiply-shift; the bias is below 2⁻³² for any `len` a replica set has).
pub(crate) fn scale(x: u64, len: usize) -> usize {
    ((u128::from(x) * len as u128) >> 64) as usize
}

#[cfg(test)]
pub(crate) fn views(in_use: &[usize]) -> Vec<ReplicaView> {
    in_use
        .iter()
        .enumerate()
        .map(|(i, &n)| ReplicaView::new(i, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_covers_the_range() {
        assert_eq!(scale(0, 3), 0);
        assert_eq!(scale(u64::MAX, 3), 2);
        assert_eq!(scale(u64::MAX / 2, 2), 0);
        assert_eq!(scale(u64::MAX / 2 + 1, 2), 1);
        assert_eq!(scale(12345, 1), 0);
    }
}
