#![doc = include_str!("../README.md")]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use orm_core::sql_types::DbEnum;
pub use orm_core::{
    Backend, Database, DatabaseBuilder, Error, Model, PoolConfig, Projection, Result,
};
pub use orm_derive::{DbEnum, Model, Projection};

/// The traits that give handles their methods, and the types nearly every program names:
/// `use orm::prelude::*;` brings `db.find::<User>(7)`, `db.postgres()?.load(…)` and
/// `db.cached(&cache)` into scope, with `Database`, the derives and `BulkOptions`.
pub mod prelude {
    pub use crate::{Backend, Database, DbEnum, Model, Projection};
    pub use orm_cache::CachedReads;
    pub use orm_core::{BackendExecutor, BulkOptions, Executor};
}

/// Running calls: the [`Executor`](exec::Executor) trait every handle implements, the
/// connection context ([`Conn`](exec::Conn)), backend-typed handles, what a call is
/// ([`CallInfo`](exec::CallInfo): its intent and the node that served it), listeners of
/// writes, and the bounds that say a query runs on every backend this build supports.
pub mod exec {
    #[cfg(feature = "postgres")]
    pub use orm_core::PostgresConn;
    #[cfg(feature = "sqlite")]
    pub use orm_core::SqliteConn;
    pub use orm_core::{
        query_text, Access, BackendConn, BackendConnection, BackendExecutor, CallInfo, Conn,
        ExecuteOnEveryBackend, Executor, FindAsQuery, Intent, LoadAllQuery, LoadOnEveryBackend,
        Node, OnBackend, PostgresExecute, PostgresLoad, PostgresSql, PostgresStream, RawConnection,
        SqlOnEveryBackend, SqliteExecute, SqliteLoad, SqliteSql, SqliteStream,
        StreamOnEveryBackend, WriteListener, Written,
    };
}

/// Connection pooling: [`PoolConfig`] (also at the root), the pool's
/// numbers ([`PoolState`](pool::PoolState)) and URLs with their password hidden.
pub mod pool {
    pub use orm_core::{PoolConfig, PoolState, RedactedUrl};
}

/// Read replicas: routing reads to healthy, caught-up replicas (PostgreSQL).
#[cfg(feature = "postgres")]
pub use orm_core::route;

/// Bulk inserts: [`BulkOptions`] for `Model::bulk_insert`, the
/// [`BulkReport`] of what committed, and the failing row of a failed one.
pub mod bulk {
    pub use orm_core::{
        BatchFailure, BulkOptions, BulkProgress, BulkReport, CommitMode, OnConflict,
    };
}

/// Schema: DDL text ([`ddl`](schema::ddl)), indexes and their usage report, query plans,
/// materialized views and their refresher, and the comparison of live tables with models.
pub mod schema {
    pub use orm_core::ddl;
    pub use orm_core::schema::*;
}

/// Query-result caching: `db.cached(&cache).find::<User>(7)`, keys from the derive,
/// invalidation by every write through the ORM, Redis and in-process backends.
pub use orm_cache as cache;

/// What the derive tells the runtime about a model: the metadata of its table, columns,
/// indexes, partials and views, and the traits the derive implements besides
/// [`Model`].
pub mod meta {
    pub use orm_core::{
        Backend, CheckConstraint, CheckValues, ColumnMeta, Crud, EnumType, ForeignKey, IndexMeta,
        IndexMethod, PartialMeta, PatchValues, PostgresRows, ReadModel, ReferentialAction,
        RejectedValue, RowsOnEveryBackend, SqliteRows, TableMeta, ViewMeta,
    };
}

/// Column types: `orm`'s own SQL types, [`bind`](sql_types::bind) for values of those types
/// in a Diesel filter, why a value was refused, and the crates whose types store `numeric`
/// and `inet`/`cidr` columns.
pub mod sql_types {
    pub use orm_core::sql_types::*;
    pub use orm_core::{bind, Bind, RejectReason};

    /// The `bigdecimal` version whose `BigDecimal` stores `numeric` columns (feature
    /// `numeric`).
    #[cfg(feature = "numeric")]
    pub use orm_core::bigdecimal;

    /// The `ipnetwork` version whose `IpNetwork` stores `inet` and `cidr` columns (feature
    /// `network-address`).
    #[cfg(feature = "network-address")]
    pub use orm_core::ipnetwork;
}

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
    #[cfg(feature = "postgres")]
    pub use orm_core::bulk::{copy_rows, CopyRow};
    pub use orm_core::bulk::{
        insert_batch, insert_batch_returning_keys, rows_per_statement, BindRow, ConflictClause,
        POSTGRES_BIND_LIMIT, SQLITE_BIND_LIMIT,
    };
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
    pub use orm_core::{BulkOptions, BulkReport, Database, Result};
    pub use serde;

    /// What generated cache rows name.
    pub mod cache {
        pub use orm_cache::__private::*;
        pub use orm_cache::Result;
    }
}
