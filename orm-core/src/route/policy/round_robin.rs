//! Round robin: each usable replica in turn.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::{ReadPolicy, ReplicaView};

/// Sends reads to the usable replicas in turn. With replicas entering and leaving the usable
/// set the turn is kept per call, not per replica, so the spread stays even over time.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// A round robin starting with the first usable replica.
    pub const fn new() -> Self {
        Self {
            next: AtomicUsize::new(0),
        }
    }
}

impl ReadPolicy for RoundRobin {
    /// One relaxed atomic add and a remainder.
    fn choose(&self, candidates: &[ReplicaView]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % candidates.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::views;
    use super::*;

    #[test]
    fn takes_turns() {
        let policy = RoundRobin::new();
        let candidates = views(&[0, 5, 9]);
        let picks: Vec<_> = (0..6).filter_map(|_| policy.choose(&candidates)).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        assert_eq!(policy.choose(&[]), None);
        assert_eq!(policy.choose(&candidates[..1]), Some(0));
    }
}
