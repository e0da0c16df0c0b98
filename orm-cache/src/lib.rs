//! Query-result caching for `orm`: stable cache keys derived from a model's metadata.
//!
//! A key is the model's table name, its schema fingerprint (so a change of columns or types
//! never reads entries written under the old shape) and an xxh3 hash of the query's bytes.
//! xxh3 is stable across Rust releases and platforms, unlike `std`'s `DefaultHasher`.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use orm_core::Model;

/// A stable cache key for a model's data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key for `query_bytes` (for example the SQL text and its bound values) on model `M`:
    /// `orm:{table}:{fingerprint}:{hash}`.
    pub fn for_query<M: Model>(query_bytes: &[u8]) -> Self {
        let table = M::TABLE;
        Self(format!(
            "orm:{}:{:016x}:{:016x}",
            table.name,
            table.fingerprint,
            xxhash_rust::xxh3::xxh3_64(query_bytes)
        ))
    }

    /// The key as text, as stored in the cache.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
