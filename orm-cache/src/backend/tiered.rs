//! Two tiers: entries kept in this process as well as in Redis, generations only in Redis.

use std::time::Duration;

use super::{CacheBackend, InProcess, Lookup, Redis};
use crate::error::Result;

/// An in-process first tier in front of Redis. Generations live only in Redis (so writes of
/// every process still invalidate), so a hit is still one round trip, a `MGET` of the
/// generations alone: what the first tier saves is the transfer of the entry's bytes, which
/// matters for large results.
pub struct Tiered {
    local: InProcess,
    remote: Redis,
}

impl std::fmt::Debug for Tiered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tiered")
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish()
    }
}

impl Tiered {
    /// `local` in front of `remote`.
    pub fn new(local: InProcess, remote: Redis) -> Self {
        Self { local, remote }
    }
}

impl CacheBackend for Tiered {
    fn name(&self) -> &'static str {
        "tiered"
    }

    fn lookup(&self, key: &str, tables: &[&str]) -> Result<Lookup> {
        match self.local.get(key) {
            // The entry is here; only the generations need the round trip.
            Some(bytes) => {
                let remote = self.remote.fetch(None, tables)?;
                Ok(Lookup::new(Some(bytes.to_vec()), remote.generations))
            }
            None => {
                let found = self.remote.lookup(key, tables)?;
                Ok(found)
            }
        }
    }

    fn store(&self, key: &str, entry: &[u8], ttl: Duration) -> Result<()> {
        self.local.store(key, entry, ttl)?;
        self.remote.store(key, entry, ttl)
    }

    fn bump(&self, tables: &[&str]) -> Result<()> {
        self.remote.bump(tables)
    }

    fn try_lock(&self, key: &str, lease: Duration) -> Result<bool> {
        self.remote.try_lock(key, lease)
    }

    fn unlock(&self, key: &str) -> Result<()> {
        self.remote.unlock(key)
    }
}
