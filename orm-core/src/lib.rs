//! Runtime of `orm`: model metadata, the `Database` handle over PostgreSQL and SQLite,
//! DDL and row operations. Use it through the `orm` facade crate.
#![deny(missing_docs)]

pub mod bulk;
mod database;
pub mod ddl;
mod error;
mod model;
mod projection;
pub mod sql_types;
mod url;

pub use bulk::{BatchFailure, BulkOptions, BulkProgress, BulkReport, CommitMode, OnConflict};
pub use database::{AnyConnection, Backend, Database};
pub use error::{Error, Result};
pub use model::{ColumnMeta, Crud, Model, TableMeta};
pub use projection::{unknown_field, ConstMessage, ModelField, Projection, SameTypeAs};
pub use url::RedactedUrl;

/// Wrap a value as a bound SQL parameter of the type the other side of the comparison expects:
/// `users::last_login.gt(orm::bind(cutoff))`. Needed for `DateTime<Utc>`, `uuid::Uuid` and
/// `serde_json::Value`, which map to `orm`'s own cross-backend SQL types; harmless elsewhere.
pub fn bind<ST, T>(value: T) -> diesel::internal::derives::as_expression::Bound<ST, T> {
    diesel::internal::derives::as_expression::Bound::new(value)
}
