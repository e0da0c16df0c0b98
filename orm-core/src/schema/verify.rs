//! Does the live table match the model? The table as the catalog gave it (read by the catalog
//! module) is compared with the model's [`TableMeta`], with no connection: missing and extra
//! columns, column types, nullability, the primary key and UNIQUE constraints. Differences come
//! back as data, [`SchemaDifference`], with a `Display` for people.
//!
//! Column defaults, CHECK and FOREIGN KEY constraints are not compared: the catalog keeps
//! them as expressions the server rewrites (`now()` comes back as `now()`, `0` as `0`, but
//! `'a'` as `'a'::text`), so a text comparison would report differences that are not there.

use super::difference::SchemaDifference;
use crate::meta::{Backend, ColumnMeta, TableMeta};

/// A table as the catalog describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LiveTable {
    pub(crate) columns: Vec<LiveColumn>,
    /// Key columns in key order.
    pub(crate) primary_key: Vec<String>,
    /// UNIQUE constraints and unique indexes (not partial, not on expressions) other than the
    /// primary key: name and columns.
    pub(crate) unique: Vec<(String, Vec<String>)>,
}

/// One column of a live table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LiveColumn {
    pub(crate) name: String,
    pub(crate) sql_type: String,
    pub(crate) nullable: bool,
    pub(crate) has_default: bool,
}

/// Every difference between `table` (the model) and `live` (the catalog's table, `None` if it
/// does not exist) on `backend`.
pub(crate) fn compare(
    table: &'static TableMeta,
    live: Option<&LiveTable>,
    backend: Backend,
) -> Vec<SchemaDifference> {
    let Some(live) = live else {
        return vec![SchemaDifference::MissingTable { table: table.name }];
    };
    let mut out = Vec::new();
    compare_columns(table, live, backend, &mut out);
    compare_keys(table, live, &mut out);
    out
}

/// As [`compare`], leaving out what `create_table` does not create: a unique index declared
/// with `index(unique, …)` is made by `create_indexes`, so its absence is no mismatch there.
pub(crate) fn compare_for_create(
    table: &'static TableMeta,
    live: &LiveTable,
    backend: Backend,
) -> Vec<SchemaDifference> {
    let mut differences = compare(table, Some(live), backend);
    differences.retain(|d| match d {
        SchemaDifference::MissingUnique { columns, .. } => !table
            .indexes
            .iter()
            .any(|i| i.unique && i.predicate.is_none() && i.columns.iter().eq(columns.iter())),
        _ => true,
    });
    differences
}

fn compare_columns(
    table: &'static TableMeta,
    live: &LiveTable,
    backend: Backend,
    out: &mut Vec<SchemaDifference>,
) {
    let t = table.name;
    for column in table.columns {
        let Some(found) = live.columns.iter().find(|c| c.name == column.name) else {
            out.push(SchemaDifference::MissingColumn {
                table: t,
                column: column.name,
            });
            continue;
        };
        if let Some(model) = model_type(column, backend) {
            if !same_type(&model, &found.sql_type, backend) {
                out.push(SchemaDifference::TypeMismatch {
                    table: t,
                    column: column.name,
                    model,
                    live: found.sql_type.clone(),
                });
            }
        }
        if column.nullable != found.nullable {
            out.push(SchemaDifference::NullabilityMismatch {
                table: t,
                column: column.name,
                model_nullable: column.nullable,
            });
        }
    }
    for extra in &live.columns {
        if table.column(&extra.name).is_none() {
            out.push(SchemaDifference::ExtraColumn {
                table: t,
                column: extra.name.clone(),
                blocks_inserts: !extra.nullable && !extra.has_default,
            });
        }
    }
}

fn compare_keys(table: &'static TableMeta, live: &LiveTable, out: &mut Vec<SchemaDifference>) {
    let t = table.name;
    let model_key: Vec<String> = table.primary_key.iter().map(|c| c.to_string()).collect();
    if model_key != live.primary_key {
        out.push(SchemaDifference::PrimaryKeyMismatch {
            table: t,
            model: model_key,
            live: live.primary_key.clone(),
        });
    }
    // A UNIQUE constraint is the same whatever order its columns are listed in.
    let sorted = |cols: &[String]| {
        let mut cols = cols.to_vec();
        cols.sort();
        cols
    };
    // UNIQUE constraints, and unique indexes declared with `index(unique, …)` that are not
    // partial: the catalog shows both as unique indexes.
    let declared_indexes = table
        .indexes
        .iter()
        .filter(|i| i.unique && i.predicate.is_none())
        .map(|i| i.columns);
    let model_unique: Vec<Vec<String>> = table
        .unique
        .iter()
        .copied()
        .chain(declared_indexes)
        .map(|cols| cols.iter().map(|c| c.to_string()).collect())
        .collect();
    for cols in &model_unique {
        if !live.unique.iter().any(|(_, l)| sorted(l) == sorted(cols)) {
            out.push(SchemaDifference::MissingUnique {
                table: t,
                columns: cols.clone(),
            });
        }
    }
    for (name, cols) in &live.unique {
        if !model_unique.iter().any(|m| sorted(m) == sorted(cols)) {
            out.push(SchemaDifference::ExtraUnique {
                table: t,
                name: name.clone(),
                columns: cols.clone(),
            });
        }
    }
}

/// The type `create_table` writes for `column` on `backend`, if `orm` knows it (a `table!`
/// column of a type without DDL is compared by name, nullability and keys only).
fn model_type(column: &ColumnMeta, backend: Backend) -> Option<String> {
    if !column.ddl_known {
        return None;
    }
    Some(match column.max_length {
        Some(n) => format!("VARCHAR({n})"),
        None => column.sql_type(backend).to_owned(),
    })
}

/// Whether the model's type and the catalog's name the same stored type: the same
/// normalized name on PostgreSQL (`int4` = `integer`, `timestamptz` = `timestamp with time
/// zone`, `varchar(64)` = `character varying(64)`, an unbounded `varchar` = `text`), the
/// same type affinity on SQLite, which
/// stores values by affinity and ignores the rest of a declared type.
pub fn same_type(model: &str, live: &str, backend: Backend) -> bool {
    match backend {
        Backend::Postgres => normalize_postgres_type(model) == normalize_postgres_type(live),
        Backend::Sqlite => sqlite_affinity(model) == sqlite_affinity(live),
    }
}

/// A PostgreSQL type name in the catalog's spelling: lower case, aliases resolved, schema and
/// quotes dropped, modifiers kept without spaces, `[]` per array dimension.
pub fn normalize_postgres_type(name: &str) -> String {
    let mut text = name.trim().to_lowercase().replace('"', "");
    let mut dimensions = 0;
    loop {
        let trimmed = text.trim_end();
        if let Some(rest) = trimmed.strip_suffix("[]") {
            text = rest.to_owned();
            dimensions += 1;
        } else {
            text = trimmed.to_owned();
            break;
        }
    }
    if let Some(element) = text.strip_prefix('_') {
        // The catalog's internal name of an array type: `_int4`.
        text = element.to_owned();
        dimensions += 1;
    }
    // Modifiers, wherever they are written: `varchar(64)`, `timestamp(3) with time zone`.
    let modifier = match (text.find('('), text.find(')')) {
        (Some(open), Some(close)) if open < close => {
            let m: String = text[open..=close].split_whitespace().collect();
            text.replace_range(open..=close, " ");
            m
        }
        _ => String::new(),
    };
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let base = words.rsplit_once('.').map_or(words.as_str(), |(_, t)| t);
    let base = match base {
        "int8" | "bigserial" | "serial8" => "bigint",
        "int" | "int4" | "serial" | "serial4" => "integer",
        "int2" | "smallserial" | "serial2" => "smallint",
        "float8" | "double" => "double precision",
        "float4" => "real",
        "bool" => "boolean",
        "varchar" => "character varying",
        "char" | "bpchar" => "character",
        "decimal" => "numeric",
        "timestamptz" => "timestamp with time zone",
        "timestamp" => "timestamp without time zone",
        "timetz" => "time with time zone",
        "time" => "time without time zone",
        other => other,
    };
    // An unbounded `varchar` stores exactly what `text` stores (Diesel maps both to `Text`).
    let base = if base == "character varying" && modifier.is_empty() {
        "text"
    } else {
        base
    };
    // Where PostgreSQL writes the modifier: before `with/without time zone`.
    let mut out = match base.split_once(" with") {
        Some((head, zone)) if !modifier.is_empty() => format!("{head}{modifier} with{zone}"),
        _ => format!("{base}{modifier}"),
    };
    for _ in 0..dimensions {
        out.push_str("[]");
    }
    out
}

/// SQLite's type affinity of a declared type (section 3.1 of its "Datatypes" page).
pub fn sqlite_affinity(declared: &str) -> &'static str {
    let t = declared.to_uppercase();
    if t.contains("INT") {
        "INTEGER"
    } else if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") {
        "TEXT"
    } else if t.contains("BLOB") || t.trim().is_empty() {
        "BLOB"
    } else if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") {
        "REAL"
    } else {
        "NUMERIC"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_type_names_are_normalized() {
        let same = [
            ("BIGINT", "bigint"),
            ("int8", "bigint"),
            ("INTEGER", "integer"),
            ("int4", "integer"),
            ("SMALLINT", "smallint"),
            ("DOUBLE PRECISION", "double precision"),
            ("float8", "double precision"),
            ("BOOLEAN", "boolean"),
            ("TIMESTAMPTZ", "timestamp with time zone"),
            ("TIMESTAMP", "timestamp without time zone"),
            ("VARCHAR(64)", "character varying(64)"),
            ("varchar( 64 )", "character varying(64)"),
            ("NUMERIC(10, 2)", "numeric(10,2)"),
            ("timestamp(3) with time zone", "timestamptz(3)"),
            ("TEXT[]", "text[]"),
            ("_int4", "integer[]"),
            ("INTEGER[][]", "integer[][]"),
            ("public.citext", "citext"),
            ("\"Mood\"", "mood"),
            ("JSONB", "jsonb"),
            ("TEXT", "character varying"),
        ];
        for (a, b) in same {
            assert!(same_type(a, b, Backend::Postgres), "{a} vs {b}");
        }
        let different = [
            ("BIGINT", "integer"),
            ("TEXT", "character varying(64)"),
            ("VARCHAR(64)", "character varying(32)"),
            ("TEXT[]", "text"),
            ("TIMESTAMPTZ", "timestamp without time zone"),
        ];
        for (a, b) in different {
            assert!(!same_type(a, b, Backend::Postgres), "{a} vs {b}");
        }
    }

    #[test]
    fn sqlite_types_compare_by_affinity() {
        assert!(same_type("BIGINT", "INTEGER", Backend::Sqlite));
        assert!(same_type("TEXT", "VARCHAR(10)", Backend::Sqlite));
        assert!(same_type("DOUBLE", "REAL", Backend::Sqlite));
        assert!(!same_type("TEXT", "INTEGER", Backend::Sqlite));
        assert!(!same_type("BLOB", "TEXT", Backend::Sqlite));
        assert_eq!(sqlite_affinity("BOOLEAN"), "NUMERIC");
    }

    const TABLE: TableMeta = TableMeta::new(
        "User",
        "users",
        &[
            ColumnMeta::new("id", "id", "BIGINT", "BIGINT", false, true),
            ColumnMeta::new("email", "email", "TEXT", "TEXT", false, false),
            ColumnMeta::new("bio", "bio", "TEXT", "TEXT", true, false),
        ],
        &["id"],
        &[&["email"]],
        0,
    );

    fn column(name: &str, sql_type: &str, nullable: bool) -> LiveColumn {
        LiveColumn {
            name: name.into(),
            sql_type: sql_type.into(),
            nullable,
            has_default: false,
        }
    }

    #[test]
    fn a_matching_table_has_no_difference() {
        let live = LiveTable {
            columns: vec![
                column("id", "bigint", false),
                column("email", "text", false),
                column("bio", "text", true),
            ],
            primary_key: vec!["id".into()],
            unique: vec![("users_email_key".into(), vec!["email".into()])],
        };
        assert_eq!(compare(&TABLE, Some(&live), Backend::Postgres), vec![]);
    }

    #[test]
    fn every_kind_of_drift_is_reported() {
        let live = LiveTable {
            columns: vec![
                column("id", "integer", false),
                column("bio", "text", false),
                column("age", "integer", false),
            ],
            primary_key: vec![],
            unique: vec![("users_bio_key".into(), vec!["bio".into()])],
        };
        let t = "users";
        assert_eq!(
            compare(&TABLE, Some(&live), Backend::Postgres),
            vec![
                SchemaDifference::TypeMismatch {
                    table: t,
                    column: "id",
                    model: "BIGINT".into(),
                    live: "integer".into()
                },
                SchemaDifference::MissingColumn {
                    table: t,
                    column: "email"
                },
                SchemaDifference::NullabilityMismatch {
                    table: t,
                    column: "bio",
                    model_nullable: true
                },
                SchemaDifference::ExtraColumn {
                    table: t,
                    column: "age".into(),
                    blocks_inserts: true
                },
                SchemaDifference::PrimaryKeyMismatch {
                    table: t,
                    model: vec!["id".into()],
                    live: vec![]
                },
                SchemaDifference::MissingUnique {
                    table: t,
                    columns: vec!["email".into()]
                },
                SchemaDifference::ExtraUnique {
                    table: t,
                    name: "users_bio_key".into(),
                    columns: vec!["bio".into()]
                },
            ]
        );
        assert_eq!(
            compare(&TABLE, None, Backend::Sqlite),
            vec![SchemaDifference::MissingTable { table: t }]
        );
    }
}
