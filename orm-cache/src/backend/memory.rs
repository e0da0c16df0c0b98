//! The in-process backend: a bounded moka cache (TinyLFU admission, per-entry TTL) and a map
//! of generations. The embedded default; no server, no round trip.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::{CacheBackend, Lookup};
use crate::error::Result;

/// An entry's bytes and how long it lives.
#[derive(Clone)]
struct Stored {
    bytes: Arc<[u8]>,
    ttl: Duration,
}

/// Gives each entry its own time to live.
struct PerEntryTtl;

impl moka::Expiry<String, Stored> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &Stored,
        _now: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Entries and generations in this process's memory: bounded by total bytes, each entry with
/// its TTL. Only writes made through this process invalidate it, so use it alone when one
/// process writes (or as the first tier of [`Tiered`](super::Tiered)).
pub struct InProcess {
    entries: moka::sync::Cache<String, Stored>,
    generations: RwLock<HashMap<String, u64>>,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("entries", &self.entries.entry_count())
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// A cache holding at most `max_bytes` of entries (keys and values counted).
    pub fn new(max_bytes: u64) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|k: &String, v: &Stored| {
                    u32::try_from(k.len() + v.bytes.len()).unwrap_or(u32::MAX)
                })
                .expire_after(PerEntryTtl)
                .build(),
            generations: RwLock::new(HashMap::new()),
        }
    }

    /// The bytes under `key`, without generations (for the first tier of [`Tiered`](super::Tiered)).
    pub(crate) fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        self.entries.get(key).map(|s| s.bytes)
    }
}

impl CacheBackend for InProcess {
    fn name(&self) -> &'static str {
        "in-process"
    }

    fn lookup(&self, key: &str, tables: &[&str]) -> Result<Lookup> {
        let entry = self.entries.get(key).map(|s| s.bytes.to_vec());
        let generations = self.generations.read().unwrap_or_else(|e| e.into_inner());
        let current = tables
            .iter()
            .map(|t| generations.get(*t).copied().unwrap_or(0))
            .collect();
        Ok(Lookup::new(entry, current))
    }

    fn store(&self, key: &str, entry: &[u8], ttl: Duration) -> Result<()> {
        self.entries.insert(
            key.to_owned(),
            Stored {
                bytes: entry.into(),
                ttl,
            },
        );
        Ok(())
    }

    fn bump(&self, tables: &[&str]) -> Result<()> {
        let mut generations = self.generations.write().unwrap_or_else(|e| e.into_inner());
        for t in tables {
            *generations.entry((*t).to_owned()).or_insert(0) += 1;
        }
        Ok(())
    }
}
