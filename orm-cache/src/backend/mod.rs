//! Where entries and table generations live: one [`CacheBackend`] per store.
//!
//! A generation is a counter per table, bumped after every committed write of the table; an
//! entry records the generations it was computed under and is served only while all of them
//! are still current. The name [`ALL_TABLES`] is the global generation, bumped by writes
//! whose tables cannot be known, which every entry records too.

mod memory;
mod redis;
mod tiered;

use std::time::Duration;

pub use self::memory::InProcess;
pub use self::redis::{Redis, RedisConfig};
pub use self::tiered::Tiered;

use crate::error::Result;

/// The generation every entry records besides its own tables': bumped by writes whose tables
/// `orm` cannot name (`batch_execute`, `execute`, the raw connection), so those make every
/// entry stale.
pub const ALL_TABLES: &str = "*";

/// An entry and the current generations of its tables, fetched together.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Lookup {
    /// The bytes stored under the key, if any.
    pub entry: Option<Vec<u8>>,
    /// The current generation of each table asked for, in order (0 for one never bumped).
    pub generations: Vec<u64>,
}

impl Lookup {
    /// A lookup result. For backends outside this crate.
    pub fn new(entry: Option<Vec<u8>>, generations: Vec<u64>) -> Self {
        Self { entry, generations }
    }
}

/// A store for cache entries and table generations. Implemented by [`Redis`], [`InProcess`]
/// and [`Tiered`]; implement it for another store. Every method may be called from many
/// threads at once, and must return within a bounded time (a command timeout): a cached read
/// waits for it.
pub trait CacheBackend: Send + Sync + 'static {
    /// A short name for logs and errors: `redis`, `in-process`.
    fn name(&self) -> &'static str;

    /// The entry under `key` and the current generation of each of `tables`, in ONE round
    /// trip (a hit costs exactly this call). Called on every cached read.
    fn lookup(&self, key: &str, tables: &[&str]) -> Result<Lookup>;

    /// Store `entry` under `key` for `ttl`. Called after a miss loaded from the database.
    fn store(&self, key: &str, entry: &[u8], ttl: Duration) -> Result<()>;

    /// Bump the generation of each of `tables` (one round trip). Called after every committed
    /// write through a database the cache is attached to.
    fn bump(&self, tables: &[&str]) -> Result<()>;

    /// Try to take a short lock on `key` for `lease`, across processes: `true` if taken.
    /// Called on a miss when [`CacheConfig::lock`](crate::CacheConfig::lock) is set. The
    /// default has no cross-process lock and always answers `true`.
    fn try_lock(&self, key: &str, lease: Duration) -> Result<bool> {
        let _ = (key, lease);
        Ok(true)
    }

    /// Release a lock taken by [`CacheBackend::try_lock`]. The default does nothing.
    fn unlock(&self, key: &str) -> Result<()> {
        let _ = key;
        Ok(())
    }
}
