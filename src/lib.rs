#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use orm_core::sql_types::DbEnum;
#[cfg(feature = "postgres")]
pub use orm_core::PostgresConn;
#[cfg(feature = "sqlite")]
pub use orm_core::SqliteConn;
pub use orm_core::{
    bind, ddl, sql_types, Access, Backend, BackendConn, BackendConnection, BackendExecutor,
    BatchFailure, Bind, BulkOptions, BulkProgress, BulkReport, CallInfo, CheckConstraint,
    ColumnMeta, CommitMode, Conn, Database, DatabaseBuilder, EnumType, Error, Executor, ForeignKey,
    Intent, Model, Node, OnBackend, OnConflict, PoolConfig, PoolState, Projection, RawConnection,
    RedactedUrl, ReferentialAction, RejectReason, Result, SchemaDifference, TableMeta,
};
pub use orm_core::{
    schema, ConcurrentRefresh, IndexMeta, IndexMethod, IndexReport, MaterializedView, PartialMeta,
    Plan, ReadModel, RefreshStatus, Refreshed, Refresher, RefresherHandle, ViewMeta,
};
pub use orm_derive::{DbEnum, Model, Projection};

/// The traits that give handles their methods: `use orm::prelude::*;` brings
/// `db.find::<User>(7)`, `db.postgres()?.load(…)` and `db.cached(&cache)` into scope.
pub mod prelude {
    pub use orm_cache::CachedReads;
    pub use orm_core::{BackendExecutor, Executor};
}

/// Read replicas: routing reads to healthy, caught-up replicas (PostgreSQL).
#[cfg(feature = "postgres")]
pub use orm_core::route;

/// Query-result caching: `db.cached(&cache).find::<User>(7)`, keys from the derive,
/// invalidation by every write through the ORM, Redis and in-process backends.
pub use orm_cache as cache;

/// The `bigdecimal` version whose `BigDecimal` stores `numeric` columns (feature `numeric`).
#[cfg(feature = "numeric")]
pub use orm_core::bigdecimal;

/// The `ipnetwork` version whose `IpNetwork` stores `inet` and `cidr` columns (feature
/// `network-address`).
#[cfg(feature = "network-address")]
pub use orm_core::ipnetwork;

/// The Diesel version `orm` is built on; list the same version as your own `diesel` dependency.
pub use diesel;

/// The guide: one chapter per technique, and the chapters the techniques rest on. Each is a
/// page of `docs/` in the repository; their examples run as doctests.
pub mod guide {
    #[doc = include_str!("../docs/getting-started.md")]
    pub mod getting_started {}
    #[doc = include_str!("../docs/models.md")]
    pub mod models {}
    #[doc = include_str!("../docs/database.md")]
    pub mod database {}
    #[doc = include_str!("../docs/backends.md")]
    pub mod backends {}
    #[doc = include_str!("../docs/errors.md")]
    pub mod errors {}
    #[doc = include_str!("../docs/schema.md")]
    pub mod schema {}
    #[doc = include_str!("../docs/writes.md")]
    pub mod writes {}
    #[doc = include_str!("../docs/pooling.md")]
    pub mod pooling {}
    #[doc = include_str!("../docs/faults.md")]
    pub mod faults {}
    #[doc = include_str!("../docs/bulk-insert.md")]
    pub mod bulk_insert {}
    #[doc = include_str!("../docs/indexes.md")]
    pub mod indexes {}
    #[doc = include_str!("../docs/materialized-views.md")]
    pub mod materialized_views {}
    #[doc = include_str!("../docs/partial-loading.md")]
    pub mod partial_loading {}
    #[doc = include_str!("../docs/caching.md")]
    pub mod caching {}
    #[doc = include_str!("../docs/replicas.md")]
    pub mod replicas {}
    #[doc = include_str!("../docs/performance.md")]
    pub mod performance {}
    #[doc = include_str!("../docs/layout.md")]
    pub mod layout {}
}

/// Items the derive's generated code names. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use diesel;
    #[cfg(feature = "postgres")]
    pub use diesel::pg::{Pg, PgConnection, PgMetadataLookup};
    #[cfg(feature = "postgres")]
    pub use diesel::query_builder::bind_collector::RawBytesBindCollector;
    #[cfg(feature = "sqlite")]
    pub use diesel::sqlite::{Sqlite, SqliteConnection};
    pub use orm_core::bulk::{
        rows_per_statement, BindRow, ConflictClause, KeyedBySql, MultiRowInsert, StatementKind,
        POSTGRES_BIND_LIMIT, SQLITE_BIND_LIMIT,
    };
    #[cfg(feature = "postgres")]
    pub use orm_core::bulk::{write_binary_copy, CopyRow, CopyTypes};
    pub use orm_core::sql_types::{self, DdlType};
    #[cfg(feature = "sqlite")]
    pub use orm_core::{NoSqliteSupport, SqliteCrud, SqliteRowOps, SqliteSupport};
    // Generated insert structs bind through Diesel's own bound type, so that Diesel's
    // `copy_from(..).from_insertable(..)` accepts them as it accepts its own derives.
    pub use diesel::internal::derives::as_expression::Bound;
    pub use orm_cache::{CacheKey, CacheRow};
    pub use orm_core::{
        check_length, check_value, unknown_field, Backend, CheckConstraint, CheckValues,
        ColumnMeta, ConcurrentRefresh, ConstMessage, Crud, EnumType, ForeignKey, IndexMeta,
        IndexMethod, MaterializedView, Model, ModelField, PartialMeta, PatchValues, Projection,
        ReadModel, ReferentialAction, RejectedValue, SameTypeAs, TableMeta, ViewMeta,
    };
    pub use serde;

    /// What generated cache rows name.
    pub mod cache {
        pub use orm_cache::__private::*;
        pub use orm_cache::Result;
    }
}
