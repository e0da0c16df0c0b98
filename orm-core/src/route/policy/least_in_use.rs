//! Least in use: the usable replica serving the fewest calls.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{ReadPolicy, ReplicaView};

/// Sends each read to the usable replica serving the fewest calls right now, as counted by the
/// router's in-use guards: slow queries on one replica steer new reads to the others. Ties
/// (the common case under light load, when every count is 0) go round robin, so idle replicas
/// share the load instead of the first one taking it all.
#[derive(Debug, Default)]
pub struct LeastInUse {
    start: AtomicUsize,
}

impl LeastInUse {
    /// A least-in-use policy.
    pub const fn new() -> Self {
        Self {
            start: AtomicUsize::new(0),
        }
    }
}

impl ReadPolicy for LeastInUse {
    /// One relaxed atomic add and one pass over the candidates.
    fn choose(&self, candidates: &[ReplicaView]) -> Option<usize> {
        let len = candidates.len();
        if len == 0 {
            return None;
        }
        let start = self.start.fetch_add(1, Ordering::Relaxed) % len;
        (0..len)
            .map(|k| (start + k) % len)
            .min_by_key(|&p| candidates[p].in_use)
    }
}

#[cfg(test)]
mod tests {
    use super::super::views;
    use super::*;

    #[test]
    fn prefers_the_least_busy() {
        let policy = LeastInUse::new();
        for _ in 0..5 {
            assert_eq!(policy.choose(&views(&[3, 1, 2])), Some(1));
        }
        assert_eq!(policy.choose(&[]), None);
    }

    #[test]
    fn shares_ties_in_turn() {
        let policy = LeastInUse::new();
        let candidates = views(&[0, 4, 0, 0]);
        let picks: Vec<_> = (0..6).filter_map(|_| policy.choose(&candidates)).collect();
        assert_eq!(picks, [0, 2, 2, 3, 0, 2]);
    }
}
