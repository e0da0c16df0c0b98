//! `CREATE INDEX` and `DROP INDEX` text from a model's declared indexes, per backend.

use super::quote::{ident_list, quote_ident};
use crate::meta::{Backend, IndexMeta, IndexMethod, TableMeta};

/// How `CREATE INDEX` statements are written. `IndexDdl::default()` is `IF NOT EXISTS`,
/// without `CONCURRENTLY`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexDdl {
    /// `CREATE INDEX CONCURRENTLY` (PostgreSQL): builds without blocking writes, but cannot
    /// run inside a transaction, so each such statement is sent on its own. Ignored on
    /// SQLite. Default `false`.
    pub concurrently: bool,
    /// `IF NOT EXISTS`. Default `true`.
    pub if_not_exists: bool,
}

impl Default for IndexDdl {
    fn default() -> Self {
        Self {
            concurrently: false,
            if_not_exists: true,
        }
    }
}

impl IndexDdl {
    /// `CREATE INDEX CONCURRENTLY IF NOT EXISTS`.
    pub fn concurrently() -> Self {
        Self {
            concurrently: true,
            ..Self::default()
        }
    }
}

/// `CREATE INDEX` for `index` of `table` on `backend`.
///
/// PostgreSQL: `CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON table USING method
/// (key) [INCLUDE (…)] [WHERE …]`. SQLite has neither `INCLUDE` nor access methods: the
/// included columns are appended to the key, which makes the index just as covering (a unique
/// index keeps its key alone, so that uniqueness means what was declared), and every index is a
/// B-tree.
pub fn create_index_sql(
    table: &TableMeta,
    index: &IndexMeta,
    backend: Backend,
    ddl: IndexDdl,
) -> String {
    let mut sql = String::from("CREATE ");
    if index.unique {
        sql.push_str("UNIQUE ");
    }
    sql.push_str("INDEX ");
    if ddl.concurrently && backend == Backend::Postgres {
        sql.push_str("CONCURRENTLY ");
    }
    if ddl.if_not_exists {
        sql.push_str("IF NOT EXISTS ");
    }
    sql.push_str(&format!(
        "{} ON {}",
        quote_ident(index.name),
        quote_ident(table.name)
    ));
    match backend {
        Backend::Postgres => {
            if index.method != IndexMethod::BTree {
                sql.push_str(&format!(" USING {}", index.method.sql()));
            }
            sql.push_str(&format!(" ({})", ident_list(index.columns)));
            if !index.include.is_empty() {
                sql.push_str(&format!(" INCLUDE ({})", ident_list(index.include)));
            }
        }
        Backend::Sqlite => {
            let mut key: Vec<&str> = index.columns.to_vec();
            if !index.unique {
                key.extend(index.include.iter().filter(|c| !index.columns.contains(c)));
            }
            sql.push_str(&format!(" ({})", ident_list(&key)));
        }
    }
    if let Some(predicate) = index.predicate {
        sql.push_str(&format!(" WHERE {predicate}"));
    }
    sql
}

/// `CREATE INDEX` for every index declared on `table`, one statement each, in declaration
/// order.
pub fn create_indexes_sql(table: &TableMeta, backend: Backend, ddl: IndexDdl) -> Vec<String> {
    table
        .indexes
        .iter()
        .map(|index| create_index_sql(table, index, backend, ddl))
        .collect()
}

/// `DROP INDEX IF EXISTS` for `index`.
pub fn drop_index_sql(index: &IndexMeta) -> String {
    format!("DROP INDEX IF EXISTS {}", quote_ident(index.name))
}

/// The indexes of `table` as the text of a migration file (`up.sql`): one statement a line,
/// each ending in `;`. A Diesel migration runs in a transaction unless its `metadata.toml`
/// says `run_in_transaction = false`, which `CONCURRENTLY` needs.
pub fn migration_sql(table: &TableMeta, backend: Backend, ddl: IndexDdl) -> String {
    create_indexes_sql(table, backend, ddl)
        .into_iter()
        .map(|s| s + ";\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::ColumnMeta;

    const USERS: TableMeta = TableMeta::new(
        "User",
        "users",
        &[ColumnMeta::new(
            "id", "id", "BIGINT", "INTEGER", false, true,
        )],
        &["id"],
        &[],
        0,
    );

    #[test]
    fn postgres_writes_include_method_and_predicate() {
        let cover =
            IndexMeta::new("user_email_cover", &["email"]).with_include(&["id", "last_login"]);
        assert_eq!(
            create_index_sql(&USERS, &cover, Backend::Postgres, IndexDdl::concurrently()),
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"user_email_cover\" ON \"users\" (\"email\") INCLUDE (\"id\", \"last_login\")"
        );
        let active = IndexMeta::new("users_active", &["email"])
            .with_unique()
            .with_method(IndexMethod::Hash)
            .with_predicate("active");
        assert_eq!(
            create_index_sql(&USERS, &active, Backend::Postgres, IndexDdl::default()),
            "CREATE UNIQUE INDEX IF NOT EXISTS \"users_active\" ON \"users\" USING hash (\"email\") WHERE active"
        );
    }

    #[test]
    fn sqlite_appends_included_columns_to_the_key() {
        let cover =
            IndexMeta::new("user_email_cover", &["email"]).with_include(&["id", "last_login"]);
        assert_eq!(
            create_index_sql(&USERS, &cover, Backend::Sqlite, IndexDdl::concurrently()),
            "CREATE INDEX IF NOT EXISTS \"user_email_cover\" ON \"users\" (\"email\", \"id\", \"last_login\")"
        );
        let unique = cover.with_unique();
        assert!(
            create_index_sql(&USERS, &unique, Backend::Sqlite, IndexDdl::default())
                .ends_with("ON \"users\" (\"email\")")
        );
    }
}
