//! Materialized views' DDL text per backend: `CREATE MATERIALIZED VIEW`, `DROP`, and the
//! statements of one refresh (a table refilled in one transaction on SQLite, which has no
//! materialized views). `schema::view` runs them.

use super::create_table_sql;
use super::quote::quote_ident;
use crate::meta::{Backend, TableMeta};

/// The statements that create view `table` on `backend`: `CREATE MATERIALIZED VIEW IF NOT
/// EXISTS … AS <query>` on PostgreSQL (filled at once); a table of the model's columns on SQLite
/// (filled by a refresh). Indexes are created apart, by [`super::create_indexes_sql`].
pub fn create_view_sql(table: &TableMeta, backend: Backend) -> Vec<String> {
    let Some(view) = table.view else {
        return Vec::new();
    };
    match backend {
        Backend::Postgres => vec![format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {} AS {}",
            quote_ident(table.name),
            view.query
        )],
        Backend::Sqlite => vec![create_table_sql(table, backend)],
    }
}

/// `DROP MATERIALIZED VIEW IF EXISTS` (a `DROP TABLE` on SQLite).
pub fn drop_view_sql(table: &TableMeta, backend: Backend) -> String {
    match backend {
        Backend::Postgres => format!(
            "DROP MATERIALIZED VIEW IF EXISTS {}",
            quote_ident(table.name)
        ),
        Backend::Sqlite => format!("DROP TABLE IF EXISTS {}", quote_ident(table.name)),
    }
}

/// The statements of one refresh, each to be sent on its own: `REFRESH MATERIALIZED VIEW
/// [CONCURRENTLY]` on PostgreSQL; on SQLite `DELETE` then `INSERT … SELECT`, in one
/// transaction, the columns taken from the query by name.
pub fn refresh_view_sql(table: &TableMeta, backend: Backend, concurrently: bool) -> Vec<String> {
    let Some(view) = table.view else {
        return Vec::new();
    };
    let name = quote_ident(table.name);
    match backend {
        Backend::Postgres if concurrently => {
            vec![format!("REFRESH MATERIALIZED VIEW CONCURRENTLY {name}")]
        }
        Backend::Postgres => vec![format!("REFRESH MATERIALIZED VIEW {name}")],
        Backend::Sqlite => {
            let columns = table
                .columns
                .iter()
                .map(|c| quote_ident(c.name))
                .collect::<Vec<_>>()
                .join(", ");
            vec![
                format!("DELETE FROM {name}"),
                format!(
                    "INSERT INTO {name} ({columns}) SELECT {columns} FROM ({}) AS orm_view_query",
                    view.query
                ),
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{ColumnMeta, ViewMeta};

    const SUMMARY: TableMeta = TableMeta::new(
        "SalesSummary",
        "sales_summary",
        &[
            ColumnMeta::new("product_id", "product_id", "BIGINT", "BIGINT", false, false),
            ColumnMeta::new("total_sold", "total_sold", "BIGINT", "BIGINT", false, false),
        ],
        &[],
        &[],
        0,
    )
    .with_view(ViewMeta::new(
        "SELECT product_id, SUM(quantity) AS total_sold FROM orders GROUP BY product_id",
        true,
    ));

    #[test]
    fn postgres_view_ddl() {
        assert_eq!(
            create_view_sql(&SUMMARY, Backend::Postgres),
            ["CREATE MATERIALIZED VIEW IF NOT EXISTS \"sales_summary\" AS SELECT product_id, SUM(quantity) AS total_sold FROM orders GROUP BY product_id"]
        );
        assert_eq!(
            refresh_view_sql(&SUMMARY, Backend::Postgres, true),
            ["REFRESH MATERIALIZED VIEW CONCURRENTLY \"sales_summary\""]
        );
    }

    #[test]
    fn sqlite_refresh_is_delete_then_insert_select_by_name() {
        let sql = refresh_view_sql(&SUMMARY, Backend::Sqlite, true);
        assert_eq!(sql[0], "DELETE FROM \"sales_summary\"");
        assert!(sql[1].starts_with(
            "INSERT INTO \"sales_summary\" (\"product_id\", \"total_sold\") SELECT \"product_id\", \"total_sold\" FROM (SELECT"
        ));
    }
}
