//! Random: a uniformly random usable replica.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{scale, ReadPolicy, ReplicaView};

/// Sends each read to a uniformly random usable replica.
///
/// The numbers come from SplitMix64 over one atomic counter seeded from the clock: one relaxed
/// atomic add and a few multiplications per read, safe from any number of threads, with no
/// dependency. Spreading load needs uniformity, not unpredictability, so a cryptographic or
/// thread-local generator (`rand`, `fastrand`) would add a crate for nothing.
#[derive(Debug)]
pub struct Random {
    state: AtomicU64,
}

/// SplitMix64's increment: the golden ratio in 64 bits, odd, so the counter visits every value.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl Random {
    /// A generator seeded from the clock and the generator's address.
    pub fn new() -> Self {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let random = Self::with_seed(clock);
        let address = &random as *const Self as u64;
        random.state.fetch_xor(mix(address), Ordering::Relaxed);
        random
    }

    /// A generator whose choices are determined by `seed` (for reproducible tests).
    pub const fn with_seed(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    fn next_u64(&self) -> u64 {
        mix(self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA))
    }
}

impl Default for Random {
    fn default() -> Self {
        Self::new()
    }
}

/// SplitMix64's output function.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl ReadPolicy for Random {
    /// One relaxed atomic add, three multiplications and a multiply-shift.
    fn choose(&self, candidates: &[ReplicaView]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        Some(scale(self.next_u64(), candidates.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::views;
    use super::*;

    #[test]
    fn spreads_evenly() {
        let policy = Random::with_seed(7);
        let candidates = views(&[0, 0, 0, 0]);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[policy.choose(&candidates).unwrap()] += 1;
        }
        // Each of 4 gets 10,000 ± a few hundred (the standard deviation is about 87).
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(policy.choose(&[]), None);
    }

    #[test]
    fn seeds_differ_between_generators() {
        let a = Random::new();
        let b = Random::new();
        let draws = |r: &Random| (0..4).map(|_| r.next_u64()).collect::<Vec<_>>();
        assert_ne!(draws(&a), draws(&b));
    }

    #[test]
    fn matches_splitmix64() {
        // Reference values of SplitMix64 seeded with 0.
        let r = Random::with_seed(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }
}
