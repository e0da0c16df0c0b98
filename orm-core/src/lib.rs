//! Runtime of `orm`: model metadata, the `Database` handle and its connection context over
//! PostgreSQL and SQLite, DDL and row operations. Use it through the `orm` facade crate.
//!
//! Backends are cargo features, `postgres` and `sqlite`, both on by default.
#![deny(missing_docs)]

#[cfg(feature = "numeric")]
#[doc(no_inline)]
pub use bigdecimal;
#[cfg(feature = "network-address")]
#[doc(no_inline)]
pub use ipnetwork;

mod bind;
pub mod bulk;
mod call;
mod conn;
mod database;
pub mod ddl;
mod error;
mod exec;
mod listen;
mod meta;
mod model;
mod pool;
mod projection;
#[cfg(feature = "postgres")]
pub mod route;
pub mod schema;
pub mod sql_types;
mod url;
mod values;

pub use bind::{bind, Bind};
pub use bulk::{BatchFailure, BulkOptions, BulkProgress, BulkReport, CommitMode, OnConflict};
pub use call::{CallInfo, Intent, Node};
#[cfg(feature = "postgres")]
pub use conn::PostgresConn;
#[cfg(feature = "sqlite")]
pub use conn::SqliteConn;
pub use conn::{
    query_text, BackendConn, BackendConnection, Conn, ExecuteOnEveryBackend, FindAsQuery,
    LoadAllQuery, LoadOnEveryBackend, PostgresExecute, PostgresLoad, PostgresSql, PostgresStream,
    RawConnection, SqlOnEveryBackend, SqliteExecute, SqliteLoad, SqliteSql, SqliteStream,
    StreamOnEveryBackend,
};
pub use database::{Database, DatabaseBuilder, OnBackend};
pub use error::{Error, Result};
pub use exec::{Access, BackendExecutor, Executor};
pub use listen::{WriteListener, Written};
pub use meta::{
    Backend, CheckConstraint, ColumnMeta, EnumType, ForeignKey, IndexMeta, IndexMethod,
    PartialMeta, RedactedUrl, ReferentialAction, TableMeta, ViewMeta,
};
pub use model::{
    Crud, Model, PatchValues, PostgresRows, ReadModel, RowsOnEveryBackend, SqliteRows,
};
#[cfg(feature = "sqlite")]
pub use model::{NoSqliteSupport, SqliteCrud, SqliteRowOps, SqliteSupport};
pub use pool::{PoolConfig, PoolState};
pub use projection::{unknown_field, ConstMessage, ModelField, Projection, SameTypeAs};
pub use schema::{
    ConcurrentRefresh, IndexReport, MaterializedView, Plan, RefreshStatus, Refreshed, Refresher,
    RefresherHandle, SchemaDifference,
};
pub use values::{
    check_length, check_value, CheckValue, CheckValues, RejectReason, RejectedValue, TextLength,
};
