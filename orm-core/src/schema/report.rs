//! The index report: per index its scans, size, whether it went unused and whether another
//! index makes it redundant; per partial struct of each model, whether an index covers it.

use std::fmt;

use diesel::RunQueryDsl;

use crate::conn::{Conn, RawConnection};
use crate::ddl::quote_ident;
use crate::error::Result;
use crate::meta::{Backend, TableMeta};

/// What [`Executor::index_report`](crate::Executor::index_report) found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexReport {
    /// When the statistics the scan counts come from were last reset (PostgreSQL's
    /// `pg_stat_database.stats_reset`), if the database says.
    pub stats_since: Option<String>,
    /// Every index of the tables asked about, by table then name.
    pub indexes: Vec<IndexUsage>,
    /// Every partial struct of the models asked about.
    pub partials: Vec<PartialCoverage>,
}

/// One index and how it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexUsage {
    /// The table (or materialized view) indexed.
    pub table: String,
    /// The index name.
    pub name: String,
    /// Key columns, in key order (an expression counts as no column).
    pub columns: Vec<String>,
    /// Included (non-key) columns.
    pub include: Vec<String>,
    /// Whether the key is unique.
    pub unique: bool,
    /// Whether it is the primary key's index.
    pub primary: bool,
    /// The `WHERE` predicate of a partial index.
    pub predicate: Option<String>,
    /// Scans since the statistics were reset (`pg_stat_user_indexes.idx_scan`); `None` on
    /// SQLite, which does not count them.
    pub scans: Option<i64>,
    /// Size on disk in bytes (`pg_relation_size`); `None` on SQLite.
    pub size_bytes: Option<i64>,
    /// No scan since the statistics were reset, and not the primary key or a unique index
    /// (which enforce a rule even when never scanned). Always `false` on SQLite.
    pub unused: bool,
    /// Another index of the same table whose key starts with this index's whole key (and
    /// has the same predicate): that index serves every lookup this one serves, so this one
    /// only slows writes down. Never set for the primary key or a unique index unless the
    /// other one is unique over the same key.
    pub duplicate_of: Option<String>,
}

/// Whether an index covers the columns a partial struct loads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartialCoverage {
    /// The model's Rust name.
    pub model: &'static str,
    /// The partial struct's name.
    pub partial: &'static str,
    /// The columns it loads.
    pub columns: Vec<&'static str>,
    /// An index whose key and included columns contain them all (a rowid key on SQLite is in
    /// every index), if there is one.
    pub covered_by: Option<String>,
    /// When none covers it: an index that would, keyed on the partial's first column with the
    /// others included (appended to the key on SQLite).
    pub suggested_ddl: Option<String>,
}

impl IndexUsage {
    fn all_columns(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().chain(&self.include).map(String::as_str)
    }
}

/// Mark each index whose key is a prefix of another's (which also holds its included
/// columns). Of two with the same key, the one with fewer included columns (then the later
/// name) is the duplicate.
fn mark_duplicates(indexes: &mut [IndexUsage]) {
    let n = indexes.len();
    for a in 0..n {
        for b in 0..n {
            if a == b || indexes[a].duplicate_of.is_some() {
                continue;
            }
            let (x, y) = (&indexes[a], &indexes[b]);
            let prefix = x.table == y.table
                && !x.columns.is_empty()
                && y.columns.len() >= x.columns.len()
                && y.columns[..x.columns.len()] == x.columns[..]
                && x.predicate == y.predicate;
            if !prefix || x.primary {
                continue;
            }
            let same_key = x.columns.len() == y.columns.len();
            if x.unique && !(same_key && y.unique) {
                continue;
            }
            // y must also hold what x includes, or x answers lookups y cannot answer alone.
            if !x.include.iter().all(|c| y.all_columns().any(|yc| yc == c)) {
                continue;
            }
            if same_key {
                let y_keeps = y.primary
                    || x.include.len() < y.include.len()
                    || (x.include.len() == y.include.len() && x.name > y.name);
                if !y_keeps {
                    continue;
                }
            }
            indexes[a].duplicate_of = Some(indexes[b].name.clone());
        }
    }
}

/// The coverage of each partial of `tables` by `indexes`.
fn partial_coverage(
    tables: &[&'static TableMeta],
    indexes: &[IndexUsage],
    backend: Backend,
) -> Vec<PartialCoverage> {
    let mut out = Vec::new();
    for table in tables {
        // SQLite stores the rowid (an `INTEGER PRIMARY KEY` column) in every index.
        let rowid = (backend == Backend::Sqlite && table.primary_key.len() == 1)
            .then(|| table.primary_key[0])
            .filter(|k| table.column(k).is_some_and(|c| c.generated));
        for partial in table.partials {
            let covered_by = indexes
                .iter()
                .filter(|i| i.table == table.name && i.predicate.is_none())
                .find(|i| {
                    partial
                        .columns
                        .iter()
                        .all(|c| Some(*c) == rowid || i.all_columns().any(|ic| ic == *c))
                })
                .map(|i| i.name.clone());
            let suggested_ddl = covered_by
                .is_none()
                .then(|| covering_ddl(table, partial.name, partial.columns, backend));
            out.push(PartialCoverage {
                model: table.model,
                partial: partial.name,
                columns: partial.columns.to_vec(),
                covered_by,
                suggested_ddl,
            });
        }
    }
    out
}

fn covering_ddl(table: &TableMeta, partial: &str, columns: &[&str], backend: Backend) -> String {
    let name = format!("{}_{}_cover", table.name, snake_case(partial));
    let quoted: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let (key, rest) = quoted.split_at(1.min(quoted.len()));
    let on = format!(
        "CREATE INDEX IF NOT EXISTS {} ON {}",
        quote_ident(&name),
        quote_ident(table.name)
    );
    match backend {
        Backend::Postgres if !rest.is_empty() => {
            format!("{on} ({}) INCLUDE ({})", key.join(", "), rest.join(", "))
        }
        _ => format!("{on} ({})", quoted.join(", ")),
    }
}

fn snake_case(name: &str) -> String {
    let mut out = String::new();
    for (i, ch) in name.chars().enumerate() {
        if ch.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(ch.to_lowercase());
    }
    out
}

#[cfg(feature = "postgres")]
mod postgres {
    use diesel::pg::PgConnection;
    use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text};

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        index_name: String,
        #[diesel(sql_type = Text)]
        key_columns: String,
        #[diesel(sql_type = Text)]
        include_columns: String,
        #[diesel(sql_type = Bool)]
        is_unique: bool,
        #[diesel(sql_type = Bool)]
        is_primary: bool,
        #[diesel(sql_type = Nullable<Text>)]
        predicate: Option<String>,
        #[diesel(sql_type = BigInt)]
        scans: i64,
        #[diesel(sql_type = BigInt)]
        size_bytes: i64,
    }

    #[derive(diesel::QueryableByName)]
    struct StatsReset {
        #[diesel(sql_type = Nullable<Text>)]
        stats_reset: Option<String>,
    }

    fn split_list(list: &str) -> Vec<String> {
        list.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Key and included columns come from `pg_index.indkey` split at `indnkeyatts`.
    const INDEXES: &str = "\
        SELECT t.relname::text AS table_name, c.relname::text AS index_name, \
          COALESCE((SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) \
            FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
            WHERE k.ord <= i.indnkeyatts), '') AS key_columns, \
          COALESCE((SELECT string_agg(a.attname::text, ',' ORDER BY k.ord) \
            FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
            WHERE k.ord > i.indnkeyatts), '') AS include_columns, \
          i.indisunique AS is_unique, i.indisprimary AS is_primary, \
          pg_get_expr(i.indpred, i.indrelid) AS predicate, \
          COALESCE(s.idx_scan, 0) AS scans, pg_relation_size(i.indexrelid) AS size_bytes \
        FROM pg_index i \
        JOIN pg_class c ON c.oid = i.indexrelid \
        JOIN pg_class t ON t.oid = i.indrelid \
        JOIN pg_namespace n ON n.oid = t.relnamespace \
        LEFT JOIN pg_stat_user_indexes s ON s.indexrelid = i.indexrelid \
        WHERE n.nspname = current_schema() AND t.relname = ANY($1) \
        ORDER BY t.relname, c.relname";

    pub(super) fn indexes(
        conn: &mut PgConnection,
        tables: &[&str],
    ) -> Result<(Option<String>, Vec<IndexUsage>)> {
        let names: Vec<String> = tables.iter().map(|t| t.to_string()).collect();
        let rows: Vec<Row> = diesel::sql_query(INDEXES)
            .bind::<Array<Text>, _>(names)
            .load(conn)?;
        let reset: Vec<StatsReset> = diesel::sql_query(
            "SELECT stats_reset::text AS stats_reset FROM pg_stat_database \
             WHERE datname = current_database()",
        )
        .load(conn)?;
        let usage = rows
            .into_iter()
            .map(|r| IndexUsage {
                unused: r.scans == 0 && !r.is_primary && !r.is_unique,
                table: r.table_name,
                name: r.index_name,
                columns: split_list(&r.key_columns),
                include: split_list(&r.include_columns),
                unique: r.is_unique,
                primary: r.is_primary,
                predicate: r.predicate,
                scans: Some(r.scans),
                size_bytes: Some(r.size_bytes),
                duplicate_of: None,
            })
            .collect();
        Ok((reset.into_iter().next().and_then(|r| r.stats_reset), usage))
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use diesel::sql_types::{Integer, Nullable, Text};
    use diesel::sqlite::SqliteConnection;

    use super::*;

    #[derive(diesel::QueryableByName)]
    struct ListRow {
        #[diesel(sql_type = Text)]
        name: String,
        #[diesel(sql_type = Integer)]
        unique: i32,
        #[diesel(sql_type = Text)]
        origin: String,
        #[diesel(sql_type = Integer)]
        partial: i32,
    }

    #[derive(diesel::QueryableByName)]
    struct ColumnRow {
        #[diesel(sql_type = Nullable<Text>)]
        name: Option<String>,
        #[diesel(sql_type = Integer)]
        key: i32,
    }

    #[derive(diesel::QueryableByName)]
    struct SqlRow {
        #[diesel(sql_type = Nullable<Text>)]
        sql: Option<String>,
    }

    pub(super) fn indexes(conn: &mut SqliteConnection, tables: &[&str]) -> Result<Vec<IndexUsage>> {
        let mut out = Vec::new();
        for table in tables {
            let list: Vec<ListRow> =
                diesel::sql_query(format!("PRAGMA index_list({})", quote_ident(table)))
                    .load(conn)?;
            for index in list {
                let columns: Vec<ColumnRow> =
                    diesel::sql_query(format!("PRAGMA index_xinfo({})", quote_ident(&index.name)))
                        .load(conn)?;
                let predicate = if index.partial == 1 {
                    let sql: Vec<SqlRow> = diesel::sql_query(
                        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?",
                    )
                    .bind::<Text, _>(&index.name)
                    .load(conn)?;
                    sql.into_iter()
                        .filter_map(|r| r.sql)
                        .next()
                        .and_then(|s| s.split_once(" WHERE ").map(|(_, p)| p.to_owned()))
                } else {
                    None
                };
                out.push(IndexUsage {
                    table: table.to_string(),
                    columns: columns
                        .into_iter()
                        .filter(|c| c.key == 1)
                        .filter_map(|c| c.name)
                        .collect(),
                    include: Vec::new(),
                    unique: index.unique == 1,
                    primary: index.origin == "pk",
                    predicate,
                    scans: None,
                    size_bytes: None,
                    unused: false,
                    duplicate_of: None,
                    name: index.name,
                });
            }
        }
        out.sort_by(|a, b| (&a.table, &a.name).cmp(&(&b.table, &b.name)));
        Ok(out)
    }
}

/// The index report of `tables` on `conn`: see
/// [`Executor::index_report`](crate::Executor::index_report).
pub(crate) fn index_report_on(
    conn: &mut Conn<'_>,
    tables: &[&'static TableMeta],
) -> Result<IndexReport> {
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    let backend = conn.backend();
    let (stats_since, mut indexes) = match conn.raw_for_runtime() {
        #[cfg(feature = "postgres")]
        RawConnection::Postgres(pg) => postgres::indexes(pg, &names)?,
        #[cfg(feature = "sqlite")]
        RawConnection::Sqlite(lite) => (None, sqlite::indexes(lite, &names)?),
    };
    mark_duplicates(&mut indexes);
    let partials = partial_coverage(tables, &indexes, backend);
    Ok(IndexReport {
        stats_since,
        indexes,
        partials,
    })
}

impl fmt::Display for IndexReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let widest =
            |names: &mut dyn Iterator<Item = usize>, least: usize| names.fold(least, usize::max);
        let tw = widest(&mut self.indexes.iter().map(|i| i.table.len()), 5);
        let nw = widest(&mut self.indexes.iter().map(|i| i.name.len()), 5);
        writeln!(
            f,
            "{:<tw$} {:<nw$} {:>8} {:>10}  key, notes",
            "table", "index", "scans", "bytes"
        )?;
        for i in &self.indexes {
            let mut notes = Vec::new();
            if i.primary {
                notes.push("primary key".to_owned());
            } else if i.unique {
                notes.push("unique".to_owned());
            }
            if i.unused {
                notes.push("UNUSED".to_owned());
            }
            if let Some(other) = &i.duplicate_of {
                notes.push(format!("DUPLICATE of {other}"));
            }
            writeln!(
                f,
                "{:<tw$} {:<nw$} {:>8} {:>10}  ({}){}{} {}",
                i.table,
                i.name,
                opt(i.scans),
                opt(i.size_bytes),
                i.columns.join(", "),
                if i.include.is_empty() {
                    String::new()
                } else {
                    format!(" INCLUDE ({})", i.include.join(", "))
                },
                i.predicate
                    .as_ref()
                    .map(|p| format!(" WHERE {p}"))
                    .unwrap_or_default(),
                notes.join("; "),
            )?;
        }
        if let Some(since) = &self.stats_since {
            writeln!(f, "(scans counted since {since})")?;
        }
        for p in &self.partials {
            match (&p.covered_by, &p.suggested_ddl) {
                (Some(index), _) => writeln!(f, "{}::{}: covered by {index}", p.model, p.partial)?,
                (None, Some(ddl)) => writeln!(
                    f,
                    "{}::{}: not covered; would be by: {ddl}",
                    p.model, p.partial
                )?,
                (None, None) => writeln!(f, "{}::{}: not covered", p.model, p.partial)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(name: &str, columns: &[&str], include: &[&str], unique: bool) -> IndexUsage {
        IndexUsage {
            table: "users".into(),
            name: name.into(),
            columns: columns.iter().map(|s| s.to_string()).collect(),
            include: include.iter().map(|s| s.to_string()).collect(),
            unique,
            primary: false,
            predicate: None,
            scans: Some(0),
            size_bytes: Some(8192),
            unused: true,
            duplicate_of: None,
        }
    }

    #[test]
    fn a_key_that_prefixes_another_is_a_duplicate() {
        let mut all = vec![
            index("users_email", &["email"], &[], false),
            index("users_email_name", &["email", "name"], &[], false),
            index("users_name", &["name"], &[], false),
        ];
        mark_duplicates(&mut all);
        assert_eq!(all[0].duplicate_of.as_deref(), Some("users_email_name"));
        assert_eq!(all[1].duplicate_of, None);
        assert_eq!(all[2].duplicate_of, None);
    }

    #[test]
    fn of_two_equal_keys_the_covering_one_stays() {
        let mut all = vec![
            index("user_email_cover", &["email"], &["id", "last_login"], false),
            index("users_email", &["email"], &[], false),
        ];
        mark_duplicates(&mut all);
        assert_eq!(all[0].duplicate_of, None);
        assert_eq!(all[1].duplicate_of.as_deref(), Some("user_email_cover"));
    }

    #[test]
    fn a_unique_index_is_kept_for_its_rule() {
        let mut all = vec![
            index("users_email_key", &["email"], &[], true),
            index("users_email_name", &["email", "name"], &[], false),
        ];
        mark_duplicates(&mut all);
        assert_eq!(all[0].duplicate_of, None);
    }
}
