//! # orm
//!
//! A derive ORM on [Diesel](https://diesel.rs) that makes the well-known ORM performance
//! techniques the default path. One `#[derive(Model)]` gives a Diesel table, typed CRUD and DDL
//! that run unchanged on SQLite (embedded, the development default) and PostgreSQL (production).
//!
//! ```
//! use orm::{Database, Model};
//!
//! #[derive(Debug, Model)]
//! #[orm(table = users)]
//! pub struct User {
//!     #[orm(primary_key, generated)]
//!     pub id: i64,
//!     #[orm(unique)]
//!     pub email: String,
//!     pub name: String,
//!     pub bio: Option<String>,
//! }
//!
//! # fn main() -> orm::Result<()> {
//! let db = Database::connect("sqlite::memory:")?;
//! db.create_table::<User>()?;
//! let ada = db.insert::<User>(&NewUser {
//!     email: "ada@example.com".into(),
//!     name: "Ada".into(),
//!     bio: None,
//! })?;
//! assert_eq!(db.find::<User>(ada.id)?.name, "Ada");
//!
//! // The generated `users` table is plain Diesel: its DSL keeps working.
//! use diesel::prelude::*;
//! let named: Vec<User> = db.load(users::table.filter(users::name.eq("Ada")))?;
//! assert_eq!(named.len(), 1);
//! # Ok(()) }
//! ```
//!
//! See the README for every attribute and the techniques built on this.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

#[cfg(feature = "postgres")]
pub use orm_core::PostgresConn;
#[cfg(feature = "sqlite")]
pub use orm_core::SqliteConn;
pub use orm_core::{
    bind, ddl, sql_types, Backend, BackendConn, BackendConnection, BatchFailure, Bind, BulkOptions,
    BulkProgress, BulkReport, CallInfo, ColumnMeta, CommitMode, Conn, Database, Error, Intent,
    Model, Node, OnBackend, OnConflict, Projection, RawConnection, RedactedUrl, RejectReason,
    Result, TableMeta,
};
pub use orm_derive::{Model, Projection};

/// Query-result caching: stable cache keys (the cache itself is not built yet).
pub use orm_cache as cache;

/// The Diesel version `orm` is built on; list the same version as your own `diesel` dependency.
pub use diesel;

/// Items the derive's generated code names. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use diesel;
    #[cfg(feature = "postgres")]
    pub use diesel::pg::{Pg, PgConnection, PgMetadataLookup};
    #[cfg(feature = "postgres")]
    pub use diesel::query_builder::bind_collector::RawBytesBindCollector;
    #[cfg(feature = "sqlite")]
    pub use diesel::sqlite::SqliteConnection;
    pub use orm_core::bulk::{
        rows_per_statement, BindRow, ConflictClause, KeyedBySql, MultiRowInsert, StatementKind,
        POSTGRES_BIND_LIMIT, SQLITE_BIND_LIMIT,
    };
    #[cfg(feature = "postgres")]
    pub use orm_core::bulk::{write_binary_copy, CopyRow};
    pub use orm_core::sql_types::{self, DdlType};
    // Generated insert structs bind through Diesel's own bound type, so that Diesel's
    // `copy_from(..).from_insertable(..)` accepts them as it accepts its own derives.
    pub use diesel::internal::derives::as_expression::Bound;
    pub use orm_core::{
        check_value, unknown_field, Backend, CheckValues, ColumnMeta, ConstMessage, Crud, Model,
        ModelField, Projection, RejectedValue, SameTypeAs, TableMeta,
    };
    pub use serde;
}
