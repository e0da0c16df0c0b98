//! The one error type of the cache.

/// What can go wrong inside the cache. A cached read never returns one of these to its
/// caller: a cache that fails is bypassed (the read loads from the database) and the failure
/// is counted in [`CacheStats::errors`](crate::CacheStats::errors). They reach users only from
/// building a cache ([`Cache::redis`](crate::Cache::redis)) and from their own
/// [`CacheBackend`](crate::CacheBackend) implementations.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Redis URL could not be understood, or a setting cannot work.
    #[error("invalid cache setting `{field}`: {reason}")]
    InvalidConfig {
        /// The setting.
        field: &'static str,
        /// Why it cannot work.
        reason: String,
    },

    /// The backend could not be reached in time, or answered with an error.
    #[error("cache backend `{backend}` failed: {message}")]
    Backend {
        /// The backend's name (`redis`, `in-process`).
        backend: &'static str,
        /// What happened (never contains a password: URLs are not repeated here).
        message: String,
    },

    /// Bytes under a key are not an entry this version wrote (corrupt, foreign, or of
    /// another shape): the read is a miss.
    #[error("cache entry cannot be decoded: {0}")]
    Decode(String),

    /// A value could not be encoded.
    #[error("cache value cannot be encoded: {0}")]
    Encode(String),
}

/// Result of the cache's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
