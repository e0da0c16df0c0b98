//! `#[derive(Model)]` for the `orm` crate: parse → check → expand.
//!
//! Use it through the `orm` facade (`use orm::Model;`); generated code names only
//! `::orm::__private::…` for `orm`'s own items (or `path::__private::…` under
//! `#[orm(crate = path)]`), and `diesel::…` for Diesel's `table!`.
#![deny(missing_docs)]

mod ast;
mod attr;
mod check;
mod check_schema;
mod crate_path;
mod ctxt;
mod db_enum;
mod expand;
mod suggest;
mod types;

use proc_macro::TokenStream;

/// Derives a table-backed model: the Diesel `table!`, Queryable/Selectable/Identifiable/
/// AsChangeset, an insert struct `New<Model>` without generated keys, and the `orm::Model`
/// metadata impl. See the `orm` crate documentation for the attributes.
#[proc_macro_derive(Model, attributes(orm))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    with_crate_path(&input, expand::derive_model).into()
}

/// Derives a projection: a struct that loads some columns of a model, each field checked at
/// compile time to be a field of the model with the same type. Name the model with
/// `#[orm(model = User)]`; a field loads the model field of its own name, or the one named by
/// `#[orm(column = email)]`.
#[proc_macro_derive(Projection, attributes(orm))]
pub fn derive_projection(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    with_crate_path(&input, expand::derive_projection).into()
}

/// Derives `orm::sql_types::DbEnum` for a fieldless enum: stored as the PostgreSQL enum type
/// `#[orm(pg_type = "name")]` (default: the enum's name in snake_case), created before a table
/// that uses it, and as text with a `CHECK` of the labels on SQLite. Each variant is stored as
/// its name in snake_case, or `#[orm(rename = "label")]`. `#[orm(sql_type = path)]` also reads
/// and writes the enum as a Diesel SQL type of your own (the one `diesel print-schema` wrote).
#[proc_macro_derive(DbEnum, attributes(orm))]
pub fn derive_db_enum(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    with_crate_path(&input, db_enum::derive).into()
}

/// Run `derive` on `input`, then point its output at `#[orm(crate = path)]` if given.
fn with_crate_path(
    input: &syn::DeriveInput,
    derive: impl FnOnce(&syn::DeriveInput) -> proc_macro2::TokenStream,
) -> proc_macro2::TokenStream {
    match crate_path::find(&input.attrs) {
        Ok(None) => derive(input),
        Ok(Some(path)) => crate_path::apply(derive(input), &path),
        Err(error) => error.to_compile_error(),
    }
}
