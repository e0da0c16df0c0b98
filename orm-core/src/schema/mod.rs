//! The database schema beside the models: indexes and materialized views (their DDL per
//! backend, `db.create_indexes::<M>()`, `db.create_view::<V>()`, refreshes, also
//! `CONCURRENTLY` and never two at once, the scheduled [`Refresher`], query plans ([`Plan`]
//! and the [`IndexReport`]), and checking that live tables match their models ([`verify`]).

mod catalog;
mod difference;
mod explain;
mod refresh;
mod report;
pub mod verify;
mod view;

pub use crate::ddl::index::migration_sql;
pub use crate::ddl::{create_index_sql, create_indexes_sql, drop_index_sql, IndexDdl};
pub use crate::ddl::{create_view_sql, drop_view_sql, refresh_view_sql};
pub(crate) use catalog::ReadCatalog;
pub use difference::SchemaDifference;
pub(crate) use explain::explain_on;
pub use explain::{ExplainOnEveryBackend, Plan, PlanNode};
pub use refresh::{RefreshStatus, Refresher, RefresherHandle};
pub(crate) use report::index_report_on;
pub use report::{IndexReport, IndexUsage, PartialCoverage};
pub(crate) use view::{create_view_on, refresh_waiting};
pub use view::{view_lock_key, ConcurrentRefresh, MaterializedView, Refreshed};
