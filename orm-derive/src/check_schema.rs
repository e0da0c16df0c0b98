//! Rules of index and materialized-view declarations, each checked in one place (called from
//! `check::check`).

use std::collections::HashMap;

use syn::Ident;

use crate::ast::Model;
use crate::attr::{IndexAttr, IndexMethodAttr};
use crate::ctxt::Ctxt;
use crate::suggest::unknown_column;

/// Run the index and view checks on `model`.
pub fn check(cx: &Ctxt, model: &Model<'_>) {
    for index in &model.attrs.indexes {
        check_index_shape(cx, index);
        check_index_columns(cx, model, index);
        check_index_method(cx, index);
    }
    check_index_names(cx, model);
    check_view(cx, model);
}

/// An index needs a name and at least one key column.
fn check_index_shape(cx: &Ctxt, index: &IndexAttr) {
    if index.name.is_none() {
        cx.syn_error(syn::Error::new(
            index.span,
            "an index needs a name: `index(name = \"users_email\", on(email))`",
        ));
    }
    if index.on.is_empty() {
        cx.syn_error(syn::Error::new(
            index.span,
            "an index needs its key columns: `index(name = \"users_email\", on(email))`",
        ));
    }
}

/// `on` and `include` name columns of the model, each once, and no column is in both.
fn check_index_columns(cx: &Ctxt, model: &Model<'_>, index: &IndexAttr) {
    let listed: Vec<&Ident> = index.on.iter().chain(&index.include).collect();
    for (i, column) in listed.iter().enumerate() {
        if model.field_named(column).is_none() {
            cx.syn_error(unknown_column(model.ident(), column, model.field_idents()));
            continue;
        }
        let Some(first) = listed[..i].iter().position(|c| c == column) else {
            continue;
        };
        if first < index.on.len() && i >= index.on.len() {
            cx.error_spanned_by(
                column,
                format!(
                    "column `{column}` is already in the index key (`on`); an included column is \
                     stored besides the key, so list it in `on` or in `include`, not both"
                ),
            );
        } else {
            cx.error_spanned_by(
                column,
                format!("column `{column}` is listed twice in this index"),
            );
        }
    }
}

/// PostgreSQL has `INCLUDE` and `UNIQUE` for B-tree indexes only (of the methods `orm` offers).
fn check_index_method(cx: &Ctxt, index: &IndexAttr) {
    let Some((ident, method)) = &index.method else {
        return;
    };
    if *method == IndexMethodAttr::BTree {
        return;
    }
    if !index.include.is_empty() {
        cx.error_spanned_by(
            ident,
            format!("a `{ident}` index cannot `include` columns; only B-tree indexes store non-key columns (leave out `method`, or `include`)"),
        );
    }
    if index.unique.is_some() {
        cx.error_spanned_by(
            ident,
            format!("a `{ident}` index cannot be `unique`; only B-tree indexes enforce uniqueness"),
        );
    }
}

/// Index names are unique in a schema: two declarations cannot share one.
fn check_index_names(cx: &Ctxt, model: &Model<'_>) {
    let mut seen: HashMap<String, ()> = HashMap::new();
    for name in model.attrs.indexes.iter().filter_map(|i| i.name.as_ref()) {
        let text = name.value();
        if text.is_empty() {
            cx.error_spanned_by(name, "an index name cannot be empty");
        } else if seen.insert(text.clone(), ()).is_some() {
            cx.error_spanned_by(
                name,
                format!("two indexes are named `{text}`; an index name is unique in its schema, so give this one another name"),
            );
        }
    }
}

/// A view has a name usable as an identifier and a defining query; `query` and
/// `refresh_concurrently` belong to a view; concurrent refresh needs a unique index.
fn check_view(cx: &Ctxt, model: &Model<'_>) {
    let attrs = &model.attrs;
    let Some(view) = attrs.materialized_view.get() else {
        if let Some(span) = attrs.query.span() {
            cx.syn_error(syn::Error::new(
                span,
                "`query` defines a materialized view; add `materialized_view = \"name\"`",
            ));
        }
        if let Some(span) = attrs.refresh_concurrently.span() {
            cx.syn_error(syn::Error::new(span, "`refresh_concurrently` is for a materialized view; add `materialized_view = \"name\"` and `query = \"SELECT …\"`"));
        }
        return;
    };
    if view.parse::<Ident>().is_err() {
        cx.error_spanned_by(view, "a view name must be an identifier (letters, digits, `_`): `materialized_view = \"sales_summary\"`");
    }
    if attrs.query.get().is_none() {
        cx.error_spanned_by(view, "a materialized view needs its defining query: `query = \"SELECT product_id, SUM(quantity) AS total_sold FROM orders GROUP BY product_id\"`");
    }
    for (span, what) in [
        (attrs.table.span(), "`table`"),
        (attrs.diesel_table.span(), "`diesel_table`"),
    ] {
        if let Some(span) = span {
            cx.syn_error(syn::Error::new(span, format!("{what} names a table; a materialized view is named by `materialized_view = \"…\"`")));
        }
    }
    for field in model.fields.iter().filter(|f| f.is_generated()) {
        if let Some(span) = field.attrs.generated.span() {
            cx.syn_error(syn::Error::new(
                span,
                "a view's rows come from its query: no column of a view is generated on insert",
            ));
        }
    }
    let Some(span) = attrs.refresh_concurrently.span() else {
        return;
    };
    let has_unique = attrs
        .indexes
        .iter()
        .any(|i| i.unique.is_some() && i.predicate.is_none());
    if !has_unique {
        cx.syn_error(syn::Error::new(
            span,
            "`refresh_concurrently` needs a unique index on the view (PostgreSQL compares old and \
             new rows by it); declare one over columns that identify a row: \
             `index(name = \"sales_summary_product\", on(product_id), unique)`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use syn::DeriveInput;

    use crate::ast::Model;
    use crate::ctxt::Ctxt;

    fn errors(input: &DeriveInput) -> Vec<String> {
        let cx = Ctxt::default();
        let model = Model::from_ast(&cx, input).unwrap();
        super::check(&cx, &model);
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn reads_an_index_declaration() {
        let input: DeriveInput = syn::parse_quote! {
            #[orm(table = users, index(name = "user_email_cover", on(email), include(id, last_login),
                  unique, method = btree, predicate = "active"))]
            struct User { #[orm(primary_key)] id: i64, email: String, last_login: i64 }
        };
        let cx = Ctxt::default();
        let model = Model::from_ast(&cx, &input).unwrap();
        cx.check().unwrap();
        let index = &model.attrs.indexes[0];
        assert_eq!(index.name.as_ref().unwrap().value(), "user_email_cover");
        assert_eq!(index.on.len(), 1);
        assert_eq!(index.include.len(), 2);
        assert!(index.unique.is_some());
        assert_eq!(index.predicate.as_ref().unwrap().value(), "active");
        assert!(errors(&input).is_empty());
    }

    #[test]
    fn a_view_needs_no_key_but_a_query_and_a_unique_index_to_refresh_concurrently() {
        let fine: DeriveInput = syn::parse_quote! {
            #[orm(materialized_view = "totals", query = "SELECT 1 AS n",
                  index(name = "totals_n", on(n), unique), refresh_concurrently)]
            struct Totals { n: i64 }
        };
        assert!(errors(&fine).is_empty());
        let no_unique: DeriveInput = syn::parse_quote! {
            #[orm(materialized_view = "totals", query = "SELECT 1 AS n", refresh_concurrently)]
            struct Totals { n: i64 }
        };
        let found = errors(&no_unique);
        assert!(found[0].contains("needs a unique index"), "{found:?}");
        let stray: DeriveInput = syn::parse_quote! {
            #[orm(table = totals, query = "SELECT 1 AS n")]
            struct Totals { #[orm(primary_key)] n: i64 }
        };
        assert!(errors(&stray)[0].contains("materialized_view"));
    }
}
