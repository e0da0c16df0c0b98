//! `#[derive(Model)]` for the `orm` crate: parse → check → expand.
//!
//! Use it through the `orm` facade (`use orm::Model;`); generated code names only
//! `::orm::__private::…` for `orm`'s own items, and `diesel::…` for Diesel's `table!`.
#![deny(missing_docs)]

mod ast;
mod attr;
mod check;
mod check_schema;
mod ctxt;
mod expand;
mod types;

use proc_macro::TokenStream;

/// Derives a table-backed model: the Diesel `table!`, Queryable/Selectable/Identifiable/
/// AsChangeset, an insert struct `New<Model>` without generated keys, and the `orm::Model`
/// metadata impl. See the `orm` crate documentation for the attributes.
#[proc_macro_derive(Model, attributes(orm))]
pub fn derive_model(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive_model(&input).into()
}

/// Derives a projection: a struct that loads some columns of a model, each field checked at
/// compile time to be a field of the model with the same type. Name the model with
/// `#[orm(model = User)]`; a field loads the model field of its own name, or the one named by
/// `#[orm(column = email)]`.
#[proc_macro_derive(Projection, attributes(orm))]
pub fn derive_projection(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::derive_projection(&input).into()
}
