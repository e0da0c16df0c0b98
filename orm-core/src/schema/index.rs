//! `db.create_indexes::<M>()` and friends: the operations that run the index DDL of
//! [`crate::ddl`] on a database.

use crate::database::Database;
use crate::ddl::{create_indexes_sql, drop_index_sql, IndexDdl};
use crate::error::Result;
use crate::meta::TableMeta;
use crate::model::ReadModel;

impl Database {
    /// Create every index declared on `M` that does not exist yet (`IF NOT EXISTS`), one
    /// statement per call.
    #[track_caller]
    pub fn create_indexes<M: ReadModel>(&self) -> Result<()> {
        self.run_index_ddl(M::TABLE, IndexDdl::default())
    }

    /// As [`Database::create_indexes`], with `CREATE INDEX CONCURRENTLY` on PostgreSQL, which
    /// does not block writes to the table while it builds. Each statement is sent on its own:
    /// `CONCURRENTLY` refuses to run in a transaction, and several statements sent together
    /// run as one.
    #[track_caller]
    pub fn create_indexes_concurrently<M: ReadModel>(&self) -> Result<()> {
        self.run_index_ddl(M::TABLE, IndexDdl::concurrently())
    }

    /// Drop every index declared on `M` (`DROP INDEX IF EXISTS`).
    #[track_caller]
    pub fn drop_indexes<M: ReadModel>(&self) -> Result<()> {
        for index in M::TABLE.indexes {
            self.batch_execute(&drop_index_sql(index))?;
        }
        Ok(())
    }

    #[track_caller]
    fn run_index_ddl(&self, table: &TableMeta, ddl: IndexDdl) -> Result<()> {
        for statement in create_indexes_sql(table, self.backend(), ddl) {
            self.batch_execute(&statement)?;
        }
        Ok(())
    }
}
