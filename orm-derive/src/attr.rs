//! `#[orm(...)]` attributes parsed into typed values. Unknown keys and duplicates are errors
//! that show the right syntax.

use proc_macro2::Span;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, Ident, LitStr, Token};

use crate::ctxt::Ctxt;
use crate::suggest::did_you_mean;

/// A value set at most once; a second setting is reported on its own token.
pub struct Once<T> {
    name: &'static str,
    value: Option<(Span, T)>,
}

impl<T> Once<T> {
    fn new(name: &'static str) -> Self {
        Self { name, value: None }
    }

    fn set(&mut self, cx: &Ctxt, span: Span, value: T) {
        if self.value.is_some() {
            cx.syn_error(syn::Error::new(
                span,
                format!("duplicate `#[orm({})]` attribute", self.name),
            ));
        } else {
            self.value = Some((span, value));
        }
    }

    /// The value, if set.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref().map(|(_, v)| v)
    }

    /// The span of the setting, if set.
    pub fn span(&self) -> Option<Span> {
        self.value.as_ref().map(|(s, _)| *s)
    }
}

/// A partial struct requested with `#[orm(partial(Name = [col, …], derive(…)))]`.
pub struct PartialAttr {
    /// The struct name.
    pub name: Ident,
    /// The listed columns (field names of the model).
    pub columns: Vec<Ident>,
    /// The bracketed list, for errors about the whole list.
    pub list_span: Span,
    /// Extra derives.
    pub derives: Vec<syn::Path>,
}

/// Attributes on the model struct.
pub struct ModelAttrs {
    /// `table = users`: the table to generate.
    pub table: Once<Ident>,
    /// `diesel_table = crate::schema::users`: bind to a table declared elsewhere.
    pub diesel_table: Once<syn::Path>,
    /// `unique(a, b)`: a UNIQUE constraint over several columns.
    pub unique: Vec<Vec<Ident>>,
    /// `partial(Name = [a, b])`.
    pub partials: Vec<PartialAttr>,
    /// `backend = postgres`: the only backend the model's table can be used on.
    pub backend: Once<BackendAttr>,
    /// `check(name = "sql")`: named CHECK constraints over the table.
    pub checks: Vec<(Ident, LitStr)>,
    /// `cache(ttl = 600)`: how long cached results of the model are kept.
    pub cache: Once<CacheAttr>,
    /// `index(name = "…", on(a), include(b), unique, method = gin, predicate = "…")`.
    pub indexes: Vec<IndexAttr>,
    /// `materialized_view = "name"`: the model is a materialized view of that name.
    pub materialized_view: Once<LitStr>,
    /// `query = "SELECT …"`: the view's defining query.
    pub query: Once<LitStr>,
    /// `refresh_concurrently`: the view is refreshed `CONCURRENTLY`.
    pub refresh_concurrently: Once<()>,
}

/// `#[orm(cache)]` or `#[orm(cache(ttl = …))]`: the model's rows are stored in the query
/// cache (even with fields of the user's own types, which must then implement serde).
pub struct CacheAttr {
    /// The TTL in milliseconds (`ttl = 600` is seconds; `600s`, `500ms`, `10min`, `2h`).
    pub ttl_millis: Option<u64>,
}

/// An index declared with `#[orm(index(…))]`.
pub struct IndexAttr {
    /// The `index` keyword, for errors about the whole declaration.
    pub span: Span,
    /// `name = "…"`.
    pub name: Option<LitStr>,
    /// `on(a, b)`: the key columns.
    pub on: Vec<Ident>,
    /// `include(c, d)`: stored, non-key columns.
    pub include: Vec<Ident>,
    /// `unique`.
    pub unique: Option<Span>,
    /// `method = btree | hash | gin | brin`.
    pub method: Option<(Ident, IndexMethodAttr)>,
    /// `predicate = "deleted_at IS NULL"`: a partial index's `WHERE`, as SQL.
    pub predicate: Option<LitStr>,
}

/// An index access method named in `method = …`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum IndexMethodAttr {
    /// `btree`.
    BTree,
    /// `hash`.
    Hash,
    /// `gin`.
    Gin,
    /// `brin`.
    Brin,
}

/// A backend named in `#[orm(backend = …)]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BackendAttr {
    /// `postgres`.
    Postgres,
    /// `sqlite`.
    Sqlite,
}

/// Attributes on a field.
pub struct FieldAttrs {
    /// `primary_key`.
    pub primary_key: Once<()>,
    /// `generated`: the database assigns the value.
    pub generated: Once<()>,
    /// `unique`.
    pub unique: Once<()>,
    /// `column = name`.
    pub column: Once<Ident>,
    /// `sql_type = diesel::sql_types::Text`.
    pub sql_type: Once<syn::Type>,
    /// `length = 255`: a `VARCHAR(255)` column, longer values refused.
    pub length: Once<u32>,
    /// `db_enum`: the field's type (or its array's element) is a `#[derive(DbEnum)]` enum.
    pub db_enum: Once<()>,
    /// `default = "now()"` or `default(postgres = "now()", sqlite = "CURRENT_TIMESTAMP")`.
    pub default: Once<DefaultAttr>,
    /// `server_filled`: the database fills the column (default, trigger, generated column).
    pub server_filled: Once<()>,
    /// `read_only`: the column is loaded, never written (a generated column, a type Diesel
    /// reads but cannot write).
    pub read_only: Once<()>,
    /// `check = "sql"`: a CHECK constraint on this column.
    pub check: Once<LitStr>,
    /// `references = users(id)`: a FOREIGN KEY.
    pub references: Once<ReferencesAttr>,
    /// `on_delete = cascade`.
    pub on_delete: Once<OnDeleteAttr>,
    /// `fk_name = name`: the FOREIGN KEY's constraint name.
    pub fk_name: Once<Ident>,
}

/// A column default: SQL text per backend (one text for both when given once).
pub struct DefaultAttr {
    /// `DEFAULT` on PostgreSQL, if any.
    pub postgres: Option<String>,
    /// `DEFAULT` on SQLite, if any.
    pub sqlite: Option<String>,
}

/// `references = table(column)`.
pub struct ReferencesAttr {
    /// The referenced table.
    pub table: Ident,
    /// The referenced column.
    pub column: Ident,
}

/// The action named in `on_delete = …`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnDeleteAttr {
    /// `no_action`.
    NoAction,
    /// `restrict`.
    Restrict,
    /// `cascade`.
    Cascade,
    /// `set_null`.
    SetNull,
    /// `set_default`.
    SetDefault,
}

impl OnDeleteAttr {
    const ALL: [(&'static str, OnDeleteAttr); 5] = [
        ("no_action", OnDeleteAttr::NoAction),
        ("restrict", OnDeleteAttr::Restrict),
        ("cascade", OnDeleteAttr::Cascade),
        ("set_null", OnDeleteAttr::SetNull),
        ("set_default", OnDeleteAttr::SetDefault),
    ];

    /// The variant name of `orm::ReferentialAction`.
    pub fn variant(self) -> &'static str {
        match self {
            OnDeleteAttr::NoAction => "NoAction",
            OnDeleteAttr::Restrict => "Restrict",
            OnDeleteAttr::Cascade => "Cascade",
            OnDeleteAttr::SetNull => "SetNull",
            OnDeleteAttr::SetDefault => "SetDefault",
        }
    }
}

const MODEL_KEYS: &str = "`table = name`, `diesel_table = path::to::table`, `unique(col, …)`, \
`partial(Name = [col, …])`, `backend = postgres`, `check(name = \"sql\")`, `cache`, \
`cache(ttl = seconds)`, `index(name = \"…\", on(col, …))`, `materialized_view = \"name\"`, \
`query = \"SELECT …\"`, `refresh_concurrently`";
const INDEX_KEYS: &str = "`name = \"…\"`, `on(col, …)`, `include(col, …)`, `unique`, \
`method = btree | hash | gin | brin`, `predicate = \"SQL\"`";
const FIELD_KEYS: &str = "`primary_key`, `generated`, `unique`, `column = name`, \
`sql_type = diesel::sql_types::Type`, `length = 255`, `db_enum`, `default = \"sql\"`, \
`server_filled`, `read_only`, `check = \"sql\"`, `references = table(column)`, \
`on_delete = cascade`, `fk_name = name`";

/// Parse the `#[orm(...)]` attributes of the model struct.
pub fn model_attrs(cx: &Ctxt, attrs: &[Attribute]) -> ModelAttrs {
    let mut out = ModelAttrs {
        table: Once::new("table"),
        diesel_table: Once::new("diesel_table"),
        unique: Vec::new(),
        partials: Vec::new(),
        backend: Once::new("backend"),
        checks: Vec::new(),
        cache: Once::new("cache"),
        indexes: Vec::new(),
        materialized_view: Once::new("materialized_view"),
        query: Once::new("query"),
        refresh_concurrently: Once::new("refresh_concurrently"),
    };
    for attr in orm_attrs(attrs) {
        let result = attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("table") {
                let ident = ident_value(&meta, "table = users")?;
                out.table.set(cx, span, ident);
            } else if meta.path.is_ident("diesel_table") {
                let path = unquoted_value(
                    &meta,
                    "give the table as a path, not a string: `diesel_table = crate::schema::users`",
                )?;
                out.diesel_table.set(cx, span, path);
            } else if meta.path.is_ident("unique") {
                let content;
                syn::parenthesized!(content in meta.input);
                let cols = content.parse_terminated(Ident::parse_any_ident, Token![,])?;
                out.unique.push(cols.into_iter().collect());
            } else if meta.path.is_ident("partial") {
                out.partials.push(partial_attr(&meta)?);
            } else if meta.path.is_ident("backend") {
                let ident = ident_value(&meta, "backend = postgres")?;
                let backend =
                    match ident.to_string().as_str() {
                        "postgres" => BackendAttr::Postgres,
                        "sqlite" => BackendAttr::Sqlite,
                        _ => return Err(syn::Error::new(
                            ident.span(),
                            "unknown backend; expected `backend = postgres` or `backend = sqlite`",
                        )),
                    };
                out.backend.set(cx, span, backend);
            } else if meta.path.is_ident("check") {
                meta.parse_nested_meta(|check| {
                    let name = check.path.require_ident()?.clone();
                    let sql = sql_text_value(
                        &check,
                        "check(crates_name_length = \"length(name) <= 64\")",
                    )?;
                    out.checks.push((name, sql));
                    Ok(())
                })?;
            } else if meta.path.is_ident("cache") {
                out.cache.set(cx, span, cache_attr(&meta)?);
            } else if meta.path.is_ident("index") {
                out.indexes.push(index_attr(&meta)?);
            } else if meta.path.is_ident("materialized_view") {
                let name = string_value(&meta, "materialized_view = \"sales_summary\"")?;
                out.materialized_view.set(cx, span, name);
            } else if meta.path.is_ident("query") {
                let query = string_value(&meta, "query = \"SELECT …\"")?;
                out.query.set(cx, span, query);
            } else if meta.path.is_ident("refresh_concurrently") {
                out.refresh_concurrently.set(cx, span, ());
            } else if meta.path.is_ident("crate") {
                // Read by `crate_path::find`, which reports its mistakes.
                crate::crate_path::skip_value(&meta)?;
            } else {
                return Err(unknown_key(
                    &meta,
                    "a model",
                    MODEL_KEYS,
                    &[
                        "table",
                        "diesel_table",
                        "unique",
                        "partial",
                        "backend",
                        "check",
                        "cache",
                        "index",
                        "materialized_view",
                        "query",
                        "refresh_concurrently",
                    ],
                ));
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    out
}

/// Parse the `#[orm(...)]` attributes of one field.
pub fn field_attrs(cx: &Ctxt, attrs: &[Attribute]) -> FieldAttrs {
    let mut out = FieldAttrs {
        primary_key: Once::new("primary_key"),
        generated: Once::new("generated"),
        unique: Once::new("unique"),
        column: Once::new("column"),
        sql_type: Once::new("sql_type"),
        default: Once::new("default"),
        server_filled: Once::new("server_filled"),
        read_only: Once::new("read_only"),
        check: Once::new("check"),
        references: Once::new("references"),
        on_delete: Once::new("on_delete"),
        fk_name: Once::new("fk_name"),
        length: Once::new("length"),
        db_enum: Once::new("db_enum"),
    };
    for attr in orm_attrs(attrs) {
        let result = attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("primary_key") {
                out.primary_key.set(cx, span, ());
            } else if meta.path.is_ident("generated") {
                out.generated.set(cx, span, ());
            } else if meta.path.is_ident("unique") {
                out.unique.set(cx, span, ());
            } else if meta.path.is_ident("column") {
                let ident = ident_value(&meta, "column = full_name")?;
                out.column.set(cx, span, ident);
            } else if meta.path.is_ident("sql_type") {
                let ty = unquoted_value(
                    &meta,
                    "give the SQL type as a type, not a string: `sql_type = diesel::sql_types::Text`",
                )?;
                out.sql_type.set(cx, span, ty);
            } else if meta.path.is_ident("db_enum") {
                out.db_enum.set(cx, span, ());
            } else if meta.path.is_ident("length") {
                let length = length_value(&meta)?;
                out.length.set(cx, span, length);
            } else if meta.path.is_ident("default") {
                out.default.set(cx, span, default_attr(&meta)?);
            } else if meta.path.is_ident("server_filled") {
                out.server_filled.set(cx, span, ());
            } else if meta.path.is_ident("read_only") {
                out.read_only.set(cx, span, ());
            } else if meta.path.is_ident("check") {
                let sql = sql_text_value(&meta, "check = \"downloads >= 0\"")?;
                out.check.set(cx, span, sql);
            } else if meta.path.is_ident("references") {
                out.references.set(cx, span, references_attr(&meta)?);
            } else if meta.path.is_ident("on_delete") {
                let ident = ident_value(&meta, "on_delete = cascade")?;
                out.on_delete.set(cx, span, on_delete_attr(&ident)?);
            } else if meta.path.is_ident("fk_name") {
                let ident = ident_value(&meta, "fk_name = versions_crate_fk")?;
                out.fk_name.set(cx, span, ident);
            } else {
                return Err(unknown_key(
                    &meta,
                    "a field",
                    FIELD_KEYS,
                    &[
                        "primary_key", "generated", "unique", "column", "sql_type", "default",
                        "server_filled", "read_only", "check", "references", "on_delete", "fk_name", "length", "db_enum",
                    ],
                ));
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    out
}

/// An unknown key, with the closest known one or a word on how to say what was meant.
fn unknown_key(meta: &ParseNestedMeta<'_>, on: &str, expected: &str, known: &[&str]) -> syn::Error {
    let key = path_text(&meta.path);
    let hint = if matches!(key.as_str(), "nullable" | "null" | "optional") {
        "; a column is nullable when its field's type is `Option<T>`".to_owned()
    } else {
        did_you_mean(&key, known.iter().map(|k| k.to_string()))
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default()
    };
    meta.error(format!(
        "unknown `orm` attribute `{key}` on {on}{hint}\nexpected one of {expected}"
    ))
}

fn orm_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("orm"))
}

fn path_text(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// `key = value` where the value is a path or type; a string literal gets `message`.
fn unquoted_value<T: syn::parse::Parse>(
    meta: &ParseNestedMeta<'_>,
    message: &str,
) -> syn::Result<T> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        return Err(syn::Error::new(lit.span(), message));
    }
    value.parse()
}

/// `key = ident`; a string literal gets an error that shows the identifier form.
fn ident_value(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Ident> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        return Err(syn::Error::new(
            lit.span(),
            format!("expected an identifier, not a string: `{example}`"),
        ));
    }
    Ident::parse_any_ident(value)
}

/// `key = "SQL"`: SQL text in a string; anything else gets an error that shows `example`.
fn sql_text_value(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<LitStr> {
    let value = meta.value()?;
    if value.peek(LitStr) {
        return value.parse();
    }
    Err(value.error(format!("expected SQL text in a string: `{example}`")))
}

/// SQL text of a default: a string (`"now()"`, `"'draft'"`), an integer or a boolean.
fn default_text(input: ParseStream<'_>, example: &str) -> syn::Result<String> {
    let lit: syn::Lit = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            format!("expected SQL text in a string: `{example}`"),
        )
    })?;
    match lit {
        syn::Lit::Str(s) => Ok(s.value()),
        syn::Lit::Int(i) => Ok(i.base10_digits().to_owned()),
        syn::Lit::Bool(b) => Ok(b.value.to_string()),
        other => Err(syn::Error::new(
            other.span(),
            format!("expected SQL text in a string, an integer or a boolean: `{example}`"),
        )),
    }
}

/// `cache(ttl = 600)`: the TTL in seconds, or with a unit: `600s`, `500ms`, `10min`, `2h`.
fn cache_attr(meta: &ParseNestedMeta<'_>) -> syn::Result<CacheAttr> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        return Ok(CacheAttr { ttl_millis: None });
    }
    if let Ok(group) = meta.input.fork().parse::<proc_macro2::Group>() {
        if group.stream().is_empty() {
            return Err(syn::Error::new(
                group.span(),
                "empty cache settings; write `cache(ttl = 600)` for a TTL in seconds, or \
                 `cache` alone for the cache's default TTL",
            ));
        }
    }
    let mut ttl = None;
    meta.parse_nested_meta(|inner| {
        if !inner.path.is_ident("ttl") {
            let key = path_text(&inner.path);
            let hint = did_you_mean(&key, std::iter::once("ttl".to_owned()))
                .map(|k| format!("; did you mean `{k}`?"))
                .unwrap_or_default();
            return Err(inner.error(format!(
                "unknown cache setting `{key}`{hint}\nexpected `cache(ttl = 600)` (seconds, or \
                 `500ms`, `10min`, `2h`)"
            )));
        }
        let value = inner.value()?;
        if value.peek(LitStr) {
            let lit: LitStr = value.parse()?;
            return Err(syn::Error::new(
                lit.span(),
                "give the TTL as a number, not a string: `cache(ttl = 600)` (seconds) or \
                 `cache(ttl = 10min)`",
            ));
        }
        let lit: syn::LitInt = value.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected a whole number of seconds: `cache(ttl = 600)`, or with a unit: \
                 `500ms`, `10min`, `2h`",
            )
        })?;
        let amount: u64 = lit.base10_parse()?;
        let per_unit: u64 = match lit.suffix() {
            "" | "s" => 1000,
            "ms" => 1,
            "min" => 60_000,
            "h" => 3_600_000,
            other => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!("unknown unit `{other}`; use `s` (the default), `ms`, `min` or `h`"),
                ))
            }
        };
        let millis = amount
            .checked_mul(per_unit)
            .ok_or_else(|| syn::Error::new(lit.span(), "this TTL is too long to represent"))?;
        if millis == 0 {
            return Err(syn::Error::new(
                lit.span(),
                "a TTL of 0 keeps nothing; leave `cache(…)` out to use the cache's default TTL",
            ));
        }
        ttl = Some(millis);
        Ok(())
    })?;
    match ttl {
        Some(millis) => Ok(CacheAttr {
            ttl_millis: Some(millis),
        }),
        None => {
            Err(meta.error("expected `cache(ttl = 600)`: how long results are kept, in seconds"))
        }
    }
}

/// `key = "text"`: SQL given as a string literal; anything else gets an error showing `example`.
fn string_value(meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<LitStr> {
    let value = meta.value()?;
    if !value.peek(LitStr) {
        return Err(value.error(format!("expected a string: `{example}`")));
    }
    value.parse()
}

/// `(a, b)` after a key: a parenthesized list of column names.
fn column_list(meta: &ParseNestedMeta<'_>) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in meta.input);
    Ok(content
        .parse_terminated(Ident::parse_any_ident, Token![,])?
        .into_iter()
        .collect())
}

/// `index(name = "user_email_cover", on(email), include(id, last_login), unique,
/// method = btree, predicate = "active")`.
fn index_attr(meta: &ParseNestedMeta<'_>) -> syn::Result<IndexAttr> {
    let mut index = IndexAttr {
        span: meta.path.span(),
        name: None,
        on: Vec::new(),
        include: Vec::new(),
        unique: None,
        method: None,
        predicate: None,
    };
    meta.parse_nested_meta(|inner| {
        let twice = || {
            inner.error(format!(
                "`{}` is given twice in this index",
                path_text(&inner.path)
            ))
        };
        if inner.path.is_ident("name") {
            if index.name.is_some() {
                return Err(twice());
            }
            index.name = Some(string_value(&inner, "name = \"user_email_cover\"")?);
        } else if inner.path.is_ident("on") {
            if !index.on.is_empty() {
                return Err(twice());
            }
            index.on = column_list(&inner)?;
        } else if inner.path.is_ident("include") {
            if !index.include.is_empty() {
                return Err(twice());
            }
            index.include = column_list(&inner)?;
        } else if inner.path.is_ident("unique") {
            index.unique = Some(inner.path.span());
        } else if inner.path.is_ident("method") {
            let ident = ident_value(&inner, "method = gin")?;
            let method = match ident.to_string().as_str() {
                "btree" => IndexMethodAttr::BTree,
                "hash" => IndexMethodAttr::Hash,
                "gin" => IndexMethodAttr::Gin,
                "brin" => IndexMethodAttr::Brin,
                _ => {
                    return Err(syn::Error::new(
                        ident.span(),
                        "unknown index method; expected `btree`, `hash`, `gin` or `brin`",
                    ))
                }
            };
            index.method = Some((ident, method));
        } else if inner.path.is_ident("predicate") {
            index.predicate = Some(string_value(&inner, "predicate = \"deleted_at IS NULL\"")?);
        } else {
            let key = path_text(&inner.path);
            let hint = did_you_mean(
                &key,
                ["name", "on", "include", "unique", "method", "predicate"]
                    .map(String::from)
                    .into_iter(),
            )
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_default();
            return Err(inner.error(format!(
                "unknown key `{key}` in `index(…)`{hint}\nexpected one of {INDEX_KEYS}"
            )));
        }
        Ok(())
    })?;
    Ok(index)
}

/// `length = 255`: a positive whole number of characters.
fn length_value(meta: &ParseNestedMeta<'_>) -> syn::Result<u32> {
    let value = meta.value()?;
    let example = "give the most characters the column holds as a number: `length = 255`";
    if value.peek(LitStr) {
        let lit: LitStr = value.parse()?;
        return Err(syn::Error::new(lit.span(), example));
    }
    let lit: syn::LitInt = value
        .parse()
        .map_err(|e| syn::Error::new(e.span(), example))?;
    match lit.base10_parse::<u32>() {
        Ok(n) if (1..=10_485_760).contains(&n) => Ok(n),
        _ => Err(syn::Error::new(
            lit.span(),
            "a `length` is between 1 and 10485760 characters (PostgreSQL's largest VARCHAR); \
             leave it out for text of any length",
        )),
    }
}

/// `default = "now()"` (both backends) or `default(postgres = "now()", sqlite = "…")`.
fn default_attr(meta: &ParseNestedMeta<'_>) -> syn::Result<DefaultAttr> {
    const EXAMPLE: &str =
        "default = \"now()\"` or `default(postgres = \"now()\", sqlite = \"CURRENT_TIMESTAMP\")";
    if meta.input.peek(Token![=]) {
        let text = default_text(meta.value()?, EXAMPLE)?;
        return Ok(DefaultAttr {
            postgres: Some(text.clone()),
            sqlite: Some(text),
        });
    }
    let mut out = DefaultAttr {
        postgres: None,
        sqlite: None,
    };
    meta.parse_nested_meta(|backend| {
        let slot = if backend.path.is_ident("postgres") {
            &mut out.postgres
        } else if backend.path.is_ident("sqlite") {
            &mut out.sqlite
        } else {
            return Err(backend.error(format!(
                "unknown backend `{}` in `default(…)`; expected `postgres = \"…\"` and/or \
                 `sqlite = \"…\"`: `{EXAMPLE}`",
                path_text(&backend.path)
            )));
        };
        *slot = Some(default_text(backend.value()?, EXAMPLE)?);
        Ok(())
    })?;
    Ok(out)
}

/// `references = users(id)`.
fn references_attr(meta: &ParseNestedMeta<'_>) -> syn::Result<ReferencesAttr> {
    let value = meta.value()?;
    let example = "expected the referenced table and column: `references = users(id)`";
    let table = Ident::parse_any_ident(value).map_err(|e| syn::Error::new(e.span(), example))?;
    if !value.peek(syn::token::Paren) {
        return Err(syn::Error::new(table.span(), example));
    }
    let content;
    syn::parenthesized!(content in value);
    let column = Ident::parse_any_ident(&content)?;
    if !content.is_empty() {
        return Err(
            content.error("a foreign key here references one column: `references = users(id)`")
        );
    }
    Ok(ReferencesAttr { table, column })
}

/// `cascade`, `restrict`, `set_null`, `set_default` or `no_action`.
fn on_delete_attr(ident: &Ident) -> syn::Result<OnDeleteAttr> {
    let name = ident.to_string();
    if let Some((_, action)) = OnDeleteAttr::ALL.iter().find(|(n, _)| *n == name) {
        return Ok(*action);
    }
    let names = OnDeleteAttr::ALL.iter().map(|(n, _)| n.to_string());
    let hint = did_you_mean(&name.to_lowercase(), names)
        .map(|k| format!("did you mean `{k}`? "))
        .unwrap_or_default();
    Err(syn::Error::new(
        ident.span(),
        format!(
            "unknown `on_delete` action `{name}`; {hint}expected one of `cascade`, `restrict`, \
             `set_null`, `set_default`, `no_action`"
        ),
    ))
}

/// `partial(Name = [a, b, c], derive(Hash, Eq))`.
fn partial_attr(meta: &ParseNestedMeta<'_>) -> syn::Result<PartialAttr> {
    let content;
    syn::parenthesized!(content in meta.input);
    let name: Ident = content.parse()?;
    content.parse::<Token![=]>().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected `=` after the partial's name: `partial(UserCard = [id, name])`",
        )
    })?;
    let list;
    let bracket = syn::bracketed!(list in content);
    let columns = list
        .parse_terminated(Ident::parse_any_ident, Token![,])?
        .into_iter()
        .collect();
    let mut derives = Vec::new();
    while content.peek(Token![,]) {
        content.parse::<Token![,]>()?;
        if content.is_empty() {
            break;
        }
        let key: Ident = content.parse()?;
        if key != "derive" {
            return Err(syn::Error::new(
                key.span(),
                "expected `derive(…)` after the column list: `partial(UserCard = [id, name], derive(Hash))`",
            ));
        }
        let inner;
        syn::parenthesized!(inner in content);
        derives.extend(inner.parse_terminated(syn::Path::parse_mod_style, Token![,])?);
    }
    Ok(PartialAttr {
        name,
        columns,
        list_span: bracket.span.join(),
        derives,
    })
}

trait ParseAnyIdent: Sized {
    fn parse_any_ident(input: ParseStream<'_>) -> syn::Result<Self>;
}

impl ParseAnyIdent for Ident {
    fn parse_any_ident(input: ParseStream<'_>) -> syn::Result<Self> {
        use syn::ext::IdentExt;
        Ident::parse_any(input)
    }
}
