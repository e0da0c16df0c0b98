//! Reading a live table from the database's catalog (`pg_catalog` on PostgreSQL, honouring
//! the search path; SQLite's `pragma_table_info` and index pragmas): the operation whose
//! result [`super::verify`] compares with the model, without a connection.

use diesel::sql_types::{Bool, Text};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

use super::verify::{LiveColumn, LiveTable};
use crate::meta::Backend;

/// Reads a live table from one backend's catalog.
pub(crate) trait ReadCatalog {
    /// The backend whose type names the catalog reports.
    const CATALOG: Backend;
    /// The table named `name`, or `None` if there is none.
    fn live_table(&mut self, name: &str) -> QueryResult<Option<LiveTable>>;
}

#[cfg(feature = "postgres")]
mod postgres {
    use diesel::pg::PgConnection;
    use diesel::sql_types::Array;

    use super::*;
    use crate::ddl::quote_ident;

    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        sql_type: String,
        #[diesel(sql_type = Bool)]
        nullable: bool,
        #[diesel(sql_type = Bool)]
        has_default: bool,
    }

    #[derive(QueryableByName)]
    struct Index {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Bool)]
        is_primary: bool,
        #[diesel(sql_type = Array<Text>)]
        columns: Vec<String>,
    }

    // `to_regclass` of the quoted name finds the table the way an unqualified query would:
    // through the search path (`current_schema()` first).
    const COLUMNS: &str = "SELECT a.attname::text AS name, \
            format_type(a.atttypid, a.atttypmod) AS sql_type, \
            NOT a.attnotnull AS nullable, a.atthasdef AS has_default \
        FROM pg_attribute a \
        WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
        ORDER BY a.attnum";

    // Unique indexes (every UNIQUE constraint and primary key has one) over plain columns,
    // not partial; only their key columns (not INCLUDE ones), in key order.
    const INDEXES: &str = "SELECT ci.relname::text AS name, i.indisprimary AS is_primary, \
            array_agg(a.attname::text ORDER BY k.ord) AS columns \
        FROM pg_index i \
        JOIN pg_class ci ON ci.oid = i.indexrelid \
        CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
        WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indpred IS NULL \
            AND k.ord <= i.indnkeyatts AND NOT (0 = ANY (i.indkey::int2[])) \
        GROUP BY ci.relname, i.indisprimary \
        ORDER BY ci.relname";

    impl ReadCatalog for PgConnection {
        const CATALOG: Backend = Backend::Postgres;

        fn live_table(&mut self, name: &str) -> QueryResult<Option<LiveTable>> {
            let quoted = quote_ident(name);
            let columns: Vec<Column> = diesel::sql_query(COLUMNS)
                .bind::<Text, _>(&quoted)
                .load(self)?;
            if columns.is_empty() {
                return Ok(None);
            }
            let indexes: Vec<Index> = diesel::sql_query(INDEXES)
                .bind::<Text, _>(&quoted)
                .load(self)?;
            let mut table = LiveTable {
                columns: columns
                    .into_iter()
                    .map(|c| LiveColumn {
                        name: c.name,
                        sql_type: c.sql_type,
                        nullable: c.nullable,
                        has_default: c.has_default,
                    })
                    .collect(),
                ..LiveTable::default()
            };
            for index in indexes {
                if index.is_primary {
                    table.primary_key = index.columns;
                } else {
                    table.unique.push((index.name, index.columns));
                }
            }
            Ok(Some(table))
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use diesel::sql_types::{Integer, Nullable};
    use diesel::sqlite::SqliteConnection;

    use super::*;

    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        sql_type: String,
        #[diesel(sql_type = Bool)]
        not_null: bool,
        #[diesel(sql_type = Bool)]
        has_default: bool,
        #[diesel(sql_type = Integer)]
        pk: i32,
    }

    #[derive(QueryableByName)]
    struct Index {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Text)]
        origin: String,
    }

    #[derive(QueryableByName)]
    struct IndexColumn {
        #[diesel(sql_type = Nullable<Text>)]
        name: Option<String>,
    }

    impl ReadCatalog for SqliteConnection {
        const CATALOG: Backend = Backend::Sqlite;

        fn live_table(&mut self, name: &str) -> QueryResult<Option<LiveTable>> {
            let columns: Vec<Column> = diesel::sql_query(
                "SELECT name, type AS sql_type, \"notnull\" AS not_null, \
                 dflt_value IS NOT NULL AS has_default, pk FROM pragma_table_info(?) ORDER BY cid",
            )
            .bind::<Text, _>(name)
            .load(self)?;
            if columns.is_empty() {
                return Ok(None);
            }
            let mut key: Vec<(i32, String)> = columns
                .iter()
                .filter(|c| c.pk > 0)
                .map(|c| (c.pk, c.name.clone()))
                .collect();
            key.sort();
            // `INTEGER PRIMARY KEY` makes the column the rowid, which is never NULL, though the
            // pragma reports it without NOT NULL.
            let rowid_alias = match key.as_slice() {
                [(_, only)] => columns
                    .iter()
                    .any(|c| c.name == *only && c.sql_type.eq_ignore_ascii_case("INTEGER")),
                _ => false,
            };
            let mut table = LiveTable {
                columns: columns
                    .into_iter()
                    .map(|c| LiveColumn {
                        nullable: !(c.not_null || (rowid_alias && c.pk > 0)),
                        name: c.name,
                        sql_type: c.sql_type,
                        has_default: c.has_default,
                    })
                    .collect(),
                primary_key: key.into_iter().map(|(_, name)| name).collect(),
                unique: Vec::new(),
            };
            let indexes: Vec<Index> = diesel::sql_query(
                "SELECT name, origin FROM pragma_index_list(?) \
                 WHERE \"unique\" AND NOT partial ORDER BY name",
            )
            .bind::<Text, _>(name)
            .load(self)?;
            for index in indexes.into_iter().filter(|i| i.origin != "pk") {
                let columns: Vec<IndexColumn> =
                    diesel::sql_query("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                        .bind::<Text, _>(&index.name)
                        .load(self)?;
                // An index on an expression has a column without a name: not a column list.
                if let Some(columns) = columns.into_iter().map(|c| c.name).collect() {
                    table.unique.push((index.name, columns));
                }
            }
            Ok(Some(table))
        }
    }
}
