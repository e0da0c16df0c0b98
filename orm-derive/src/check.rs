//! Rules that involve several attributes or fields, each checked in one place.

use std::collections::HashMap;

use syn::Ident;

use crate::ast::Model;
use crate::ctxt::Ctxt;
use crate::suggest::unknown_column;
use crate::types;

/// Run every check on `model`, recording errors in `cx`.
pub fn check(cx: &Ctxt, model: &Model<'_>) {
    check_diesel_dependency(cx, model);
    check_generics(cx, model);
    check_table_source(cx, model);
    check_primary_key(cx, model);
    check_key_not_nullable(cx, model);
    check_column_count(cx, model);
    check_generated(cx, model);
    check_server_filled(cx, model);
    check_read_only(cx, model);
    check_defaults(cx, model);
    check_foreign_keys(cx, model);
    check_constraint_names(cx, model);
    check_insertable(cx, model);
    check_field_types(cx, model);
    check_sql_type_on_bound_table(cx, model);
    check_length(cx, model);
    check_db_enum(cx, model);
    check_postgres_only_types(cx, model);
    check_duplicate_columns(cx, model);
    check_column_names(cx, model);
    check_unique_lists(cx, model);
    check_partials(cx, model);
    crate::check_schema::check(cx, model);
}

/// A generated `table!` is Diesel's own macro, whose expansion names `::diesel`: the crate
/// needs `diesel` as a dependency of its own, or each generated path is an error. Read from the
/// crate's Cargo.toml when cargo builds it; a manifest that cannot be read counts as declaring it.
fn check_diesel_dependency(cx: &Ctxt, model: &Model<'_>) {
    if !model.generates_table() {
        return;
    }
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    let Ok(manifest) = std::fs::read_to_string(std::path::Path::new(&dir).join("Cargo.toml"))
    else {
        return;
    };
    if !declares_dependency(&manifest, "diesel") {
        cx.error_spanned_by(
            model.ident(),
            "`#[derive(Model)]` generates a Diesel `table!`, which needs `diesel` as a direct \
             dependency of this crate: add `diesel = \"2.3\"` (the version `orm` is built on) \
             under `[dependencies]` in Cargo.toml",
        );
    }
}

/// Whether a Cargo manifest names the dependency `name` in any dependency table: a
/// `name = …` or `name.workspace = true` key, or a `[….name]` table header. Anything that looks
/// like it counts, so an unusual manifest never gets a false error.
pub fn declares_dependency(manifest: &str, name: &str) -> bool {
    let quoted = format!("\"{name}\"");
    manifest.lines().any(|line| {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.trim_end_matches(']').trim();
            return header.ends_with(&format!(".{name}"))
                || header.ends_with(&format!(".{quoted}"));
        }
        let rest = line
            .strip_prefix(quoted.as_str())
            .or_else(|| line.strip_prefix(name));
        rest.is_some_and(|rest| matches!(rest.trim_start().chars().next(), Some('=' | '.')))
    })
}

/// A model is one concrete table row: no type or lifetime parameters.
fn check_generics(cx: &Ctxt, model: &Model<'_>) {
    let generics = &model.input.generics;
    if !generics.params.is_empty() {
        cx.error_spanned_by(
            generics,
            "a model cannot have generic parameters: it describes one table's rows",
        );
    }
}

/// `table` generates a table, `diesel_table` binds to an existing one: not both.
fn check_table_source(cx: &Ctxt, model: &Model<'_>) {
    if let (Some(_), Some(span)) = (model.attrs.table.get(), model.attrs.diesel_table.span()) {
        cx.syn_error(syn::Error::new(
            span,
            "use either `table = name` (generate the table) or `diesel_table = path` \
             (use a table from schema.rs), not both",
        ));
    }
}

/// Every model needs a primary key to find, update and delete rows by (a view is only read).
fn check_primary_key(cx: &Ctxt, model: &Model<'_>) {
    if model.key_fields().next().is_none() && !model.is_view() {
        cx.error_spanned_by(
            model.ident(),
            format!(
                "model `{}` has no primary key; mark its key field with `#[orm(primary_key)]` \
                 (several fields for a composite key), e.g.\n    #[orm(primary_key, generated)]\n    id: i64,",
                model.ident()
            ),
        );
    }
}

/// A key column cannot be NULL: `WHERE key = NULL` never matches a row.
fn check_key_not_nullable(cx: &Ctxt, model: &Model<'_>) {
    for key in model.key_fields().filter(|f| f.nullable) {
        cx.error_spanned_by(
            key.ty(),
            "a primary key cannot be NULL; use the type without `Option`",
        );
    }
}

/// Diesel's tables (as `orm` builds it) have at most 32 columns.
fn check_column_count(cx: &Ctxt, model: &Model<'_>) {
    const MOST_COLUMNS: usize = 32;
    if let Some(extra) = model.fields.get(MOST_COLUMNS) {
        cx.error_spanned_by(
            extra.ident,
            format!(
                "a model has at most {MOST_COLUMNS} columns (Diesel's `32-column-tables`); this is column {}",
                MOST_COLUMNS + 1
            ),
        );
    }
}

/// Only a single integer primary key can be generated by the database.
fn check_generated(cx: &Ctxt, model: &Model<'_>) {
    let keys = model.key_fields().count();
    for field in &model.fields {
        let Some(span) = field.attrs.generated.span() else {
            continue;
        };
        let problem = if !field.is_key() {
            Some("`#[orm(generated)]` is for a primary key the database assigns; add `primary_key`: `#[orm(primary_key, generated)]`")
        } else if keys > 1 {
            Some("`#[orm(generated)]` needs a single-column primary key; a composite key is given by the caller")
        } else if !types::is_integer(field.ty()) {
            Some(
                "`#[orm(generated)]` needs an integer key (`i16`, `i32` or `i64`); for a key the \
                  database fills another way (a default such as `gen_random_uuid()`), use \
                  `#[orm(primary_key, server_filled, default = \"gen_random_uuid()\")]`",
            )
        } else {
            None
        };
        if let Some(message) = problem {
            cx.syn_error(syn::Error::new(span, message));
        }
    }
}

/// `generated` already leaves the key to the database: `server_filled` beside it says nothing.
fn check_server_filled(cx: &Ctxt, model: &Model<'_>) {
    for field in model.fields.iter().filter(|f| f.is_generated()) {
        if let Some(span) = field.attrs.server_filled.span() {
            cx.syn_error(syn::Error::new(
                span,
                "`server_filled` is implied by `generated`, which already leaves the key to the \
                 database; remove one of them",
            ));
        }
    }
}

/// `read_only` leaves a column out of every write: not the key (rows are found and written by
/// it), not beside `server_filled` (which it implies) nor `generated`, and not on a view
/// (nothing of which is written).
fn check_read_only(cx: &Ctxt, model: &Model<'_>) {
    for field in &model.fields {
        let Some(span) = field.attrs.read_only.span() else {
            continue;
        };
        let problem = if field.is_key() {
            "a primary key cannot be `read_only`: rows are found, updated and deleted by it, and \
             an insert gives it; for a key the database assigns use \
             `#[orm(primary_key, generated)]`, or \
             `#[orm(primary_key, server_filled, default = \"…\")]`"
        } else if field.attrs.server_filled.get().is_some() {
            "`read_only` already leaves the column to the database, and also keeps it out of the \
             patch struct; use `read_only` alone (or `server_filled` alone, to keep it patchable)"
        } else if model.is_view() {
            "every column of a materialized view is read-only: remove `read_only`"
        } else {
            continue;
        };
        cx.syn_error(syn::Error::new(span, problem));
    }
}

/// A generated key takes its values from its identity (PostgreSQL) or the rowid (SQLite): a
/// `DEFAULT` beside it would be refused by the database.
fn check_defaults(cx: &Ctxt, model: &Model<'_>) {
    for field in model.fields.iter().filter(|f| f.is_generated()) {
        if let Some(span) = field.attrs.default.span() {
            cx.syn_error(syn::Error::new(
                span,
                "a `generated` key takes its values from an identity column, so it cannot have a \
                 `default`; for a key filled by a default expression use \
                 `#[orm(primary_key, server_filled, default = \"…\")]` without `generated`",
            ));
        }
    }
}

/// `on_delete` and `fk_name` describe a foreign key, so they need `references`; `set_null`
/// needs a column that can be NULL.
fn check_foreign_keys(cx: &Ctxt, model: &Model<'_>) {
    for field in &model.fields {
        let referenced = field.attrs.references.get().is_some();
        for (key, span) in [
            ("on_delete", field.attrs.on_delete.span()),
            ("fk_name", field.attrs.fk_name.span()),
        ] {
            if let (false, Some(span)) = (referenced, span) {
                cx.syn_error(syn::Error::new(
                    span,
                    format!(
                        "`{key}` belongs to a foreign key: add the referenced column, \
                         `#[orm(references = users(id), {key} = …)]`"
                    ),
                ));
            }
        }
        let sets_null = field.attrs.on_delete.get() == Some(&crate::attr::OnDeleteAttr::SetNull);
        if let (true, false, Some(span)) = (sets_null, field.nullable, field.attrs.on_delete.span())
        {
            cx.syn_error(syn::Error::new(
                span,
                "`on_delete = set_null` needs a column that can be NULL: make the field an \
                 `Option`, or choose `cascade` or `restrict`",
            ));
        }
    }
}

/// CHECK constraints declared on the model need names of their own.
fn check_constraint_names(cx: &Ctxt, model: &Model<'_>) {
    for (i, (name, _)) in model.attrs.checks.iter().enumerate() {
        if model.attrs.checks[..i].iter().any(|(n, _)| n == name) {
            cx.error_spanned_by(name, format!("CHECK constraint `{name}` is declared twice"));
        }
    }
}

/// The insert struct needs at least one column to write.
fn check_insertable(cx: &Ctxt, model: &Model<'_>) {
    if !model.is_view()
        && !model.fields.is_empty()
        && model.fields.iter().all(|f| f.is_filled_by_database())
    {
        cx.error_spanned_by(
            model.ident(),
            "a model needs a column the database does not fill: there is nothing to insert",
        );
    }
}

/// Each field's type must map to an SQL type, or say which one with `sql_type`.
fn check_field_types(cx: &Ctxt, model: &Model<'_>) {
    for field in &model.fields {
        // A `db_enum` field's type is `check_db_enum`'s to report.
        if field.sql_type.is_none() && field.attrs.db_enum.get().is_none() {
            let base = types::option_inner(field.ty()).unwrap_or(field.ty());
            cx.error_spanned_by(
                field.ty(),
                format!(
                    "`orm` does not know which SQL type stores this field; {}",
                    types::unsupported_advice(base)
                ),
            );
        }
    }
}

/// A `table!` declares each column's SQL type; a second one on the field could only disagree
/// with it (and once gave DDL a type the table does not have).
fn check_sql_type_on_bound_table(cx: &Ctxt, model: &Model<'_>) {
    let Some(table) = model.attrs.diesel_table.get() else {
        return;
    };
    let table = quote::quote!(#table).to_string().replace(' ', "");
    for field in &model.fields {
        if let Some(span) = field.attrs.sql_type.span() {
            cx.syn_error(syn::Error::new(
                span,
                format!(
                    "`sql_type` names the SQL type of a table `#[derive(Model)]` generates; this \
                     model is bound to `{table}`, whose `table!` gives column `{}` its SQL type: \
                     remove `sql_type` (the field may be of any Rust type Diesel reads and \
                     writes for that SQL type)",
                    field.column
                ),
            ));
        }
    }
}

/// `db_enum` says a field's own type is a `DbEnum`: not with another source of the SQL type,
/// and only on a type that could be one.
fn check_db_enum(cx: &Ctxt, model: &Model<'_>) {
    for field in &model.fields {
        let Some(span) = field.attrs.db_enum.span() else {
            continue;
        };
        let base = types::option_inner(field.ty()).unwrap_or(field.ty());
        let problem = if model.attrs.diesel_table.get().is_some() {
            "`db_enum` is not needed on a model bound to a `table!`: the column's SQL type comes \
             from the table; remove it"
        } else if field.attrs.sql_type.get().is_some() {
            "use either `db_enum` or `sql_type`, not both"
        } else if types::db_enum_sql_type(base).is_none() {
            "`db_enum` marks a field whose type is a `#[derive(orm::DbEnum)]` enum (or a `Vec` of \
             one); this field's type is not one"
        } else {
            continue;
        };
        cx.syn_error(syn::Error::new(span, problem));
    }
}

/// `length = n` limits text: only a `String` (or `Option<String>`) field has one.
fn check_length(cx: &Ctxt, model: &Model<'_>) {
    for field in &model.fields {
        let Some(span) = field.attrs.length.span() else {
            continue;
        };
        let base = types::option_inner(field.ty()).unwrap_or(field.ty());
        if !types::is_string(base) {
            cx.syn_error(syn::Error::new(
                span,
                "`length` is the most characters a text column holds (`VARCHAR(n)`); it applies \
                 to a `String` or `Option<String>` field only",
            ));
        }
    }
}

/// A PostgreSQL-only type (`PgInterval`) has no SQLite form: its model is declared for
/// PostgreSQL, so that no SQLite row operations are generated for it.
fn check_postgres_only_types(cx: &Ctxt, model: &Model<'_>) {
    if matches!(
        model.attrs.backend.get(),
        Some(crate::attr::BackendAttr::Postgres)
    ) {
        return;
    }
    for field in model
        .fields
        .iter()
        .filter(|f| types::is_postgres_only(f.ty()))
    {
        cx.error_spanned_by(
            field.ty(),
            "this type exists on PostgreSQL only; declare the model for PostgreSQL with \
             `#[orm(backend = postgres)]` on the struct",
        );
    }
}

/// Two fields cannot be stored in the same column.
fn check_duplicate_columns(cx: &Ctxt, model: &Model<'_>) {
    let mut seen: HashMap<String, &Ident> = HashMap::new();
    for field in &model.fields {
        let name = field.column.to_string();
        if let Some(first) = seen.get(&name) {
            let at = field.attrs.column.get().map_or(field.ident, |c| c);
            cx.error_spanned_by(
                at,
                format!(
                    "column `{name}` is already used by field `{first}`; give one of them another \
                     name with `#[orm(column = other_name)]`"
                ),
            );
        } else {
            seen.insert(name, field.ident);
        }
    }
}

/// A generated `table!` names each column with a Rust identifier, which cannot be a keyword.
fn check_column_names(cx: &Ctxt, model: &Model<'_>) {
    if !model.generates_table() {
        return;
    }
    for field in &model.fields {
        let name = field.column.to_string();
        if syn::parse_str::<Ident>(&name).is_err() {
            let at = field.attrs.column.get().map_or(field.ident, |c| c);
            cx.error_spanned_by(
                at,
                format!(
                    "`{name}` is a Rust keyword, which a generated Diesel `table!` cannot use as a \
                     column name; choose another column name (`#[orm(column = kind)]`), or declare \
                     the table yourself with `#[sql_name = \"{name}\"]` and use `diesel_table = …`"
                ),
            );
        }
    }
}

/// `unique(a, b)` must name fields of the model, each once.
fn check_unique_lists(cx: &Ctxt, model: &Model<'_>) {
    for list in &model.attrs.unique {
        if list.is_empty() {
            continue;
        }
        for (i, name) in list.iter().enumerate() {
            if model.field_named(name).is_none() {
                cx.syn_error(unknown_column(model.ident(), name, model.field_idents()));
            } else if list[..i].contains(name) {
                cx.error_spanned_by(name, format!("column `{name}` is listed twice"));
            }
        }
    }
}

/// Each partial lists existing columns, each once, and has a name of its own.
fn check_partials(cx: &Ctxt, model: &Model<'_>) {
    let insert_name = format!("New{}", model.ident());
    let patch_name = format!("{}Patch", model.ident());
    for (i, partial) in model.attrs.partials.iter().enumerate() {
        let name = &partial.name;
        if name == model.ident() || *name == insert_name || *name == patch_name {
            cx.error_spanned_by(
                name,
                format!("partial `{name}` has the same name as a struct `#[derive(Model)]` generates; choose another name"),
            );
        } else if model.attrs.partials[..i].iter().any(|p| p.name == *name) {
            cx.error_spanned_by(name, format!("partial `{name}` is declared twice"));
        }
        if partial.columns.is_empty() {
            cx.syn_error(syn::Error::new(
                partial.list_span,
                format!("partial `{name}` lists no columns; name the ones to load: `partial({name} = [id, name])`"),
            ));
        }
        for (j, column) in partial.columns.iter().enumerate() {
            if model.field_named(column).is_none() {
                cx.syn_error(unknown_column(model.ident(), column, model.field_idents()));
            } else if partial.columns[..j].contains(column) {
                cx.error_spanned_by(
                    column,
                    format!("column `{column}` is listed twice in partial `{name}`"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_dependency_however_declared() {
        for manifest in [
            "[dependencies]\ndiesel = \"2.3\"",
            "[dependencies]\ndiesel={ version = \"2.3\", features = [\"postgres\"] }",
            "[dependencies]\ndiesel.workspace = true",
            "[dependencies]\n\"diesel\" = \"2\"",
            "[dependencies.diesel]\nversion = \"2.3\"",
            "[target.'cfg(unix)'.dependencies.diesel]\nversion = \"2.3\"",
            "[dev-dependencies]\n  diesel = \"2.3\"",
        ] {
            assert!(declares_dependency(manifest, "diesel"), "{manifest}");
        }
        for manifest in [
            "[package]\nname = \"app\"\n[dependencies]\norm = \"0.1\"",
            "[dependencies]\ndiesel_migrations = \"2\"\norm = { path = \"../orm\" }",
            "# diesel = \"2.3\"\n[dependencies]\norm = \"0.1\"",
        ] {
            assert!(!declares_dependency(manifest, "diesel"), "{manifest}");
        }
    }
}
