//! Runtime of `orm`: model metadata, the `Database` handle over PostgreSQL and SQLite,
//! DDL and row operations. Use it through the `orm` facade crate.
#![deny(missing_docs)]

mod bind;
pub mod bulk;
mod database;
pub mod ddl;
mod error;
mod model;
mod projection;
pub mod sql_types;
mod url;

pub use bind::{bind, Bind};
pub use bulk::{BatchFailure, BulkOptions, BulkProgress, BulkReport, CommitMode, OnConflict};
pub use database::{AnyConnection, Backend, Database};
pub use error::{Error, Result};
pub use model::{ColumnMeta, Crud, Model, TableMeta};
pub use projection::{unknown_field, ConstMessage, ModelField, Projection, SameTypeAs};
pub use url::RedactedUrl;
