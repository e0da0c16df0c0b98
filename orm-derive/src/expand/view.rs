//! A materialized view: a read-only model. It gets its `table!`, Diesel's Queryable and
//! Selectable, its partials, `orm::ReadModel` with the view's metadata, and
//! `orm::MaterializedView` (plus `ConcurrentRefresh` when declared); no insert struct, no
//! `Model`, so no write API exists for it.

use proc_macro2::TokenStream;
use quote::quote;

use super::{cache_key, diesel_impls, model_impl, partial, table};
use crate::ast::Model;

/// Everything generated for a view.
pub fn expand_read_only(model: &Model<'_>) -> TokenStream {
    let table = table::expand(model);
    let diesel_impls = diesel_impls::expand(model);
    let read_model = model_impl::expand(model);
    let (partial_structs, partial_impls) = partial::expand(model);
    let cache_rows = cache_key::expand_rows(model);
    let partial_cache_rows = model
        .attrs
        .partials
        .iter()
        .map(|partial| cache_key::expand_partial(model, partial));
    quote! {
        #table
        #partial_structs
        const _: () = {
            #diesel_impls
            #read_model
            #partial_impls
            #cache_rows
            #(#partial_cache_rows)*
        };
    }
}

/// `.with_view(ViewMeta::new(query, concurrent))` for a view; nothing for a table.
pub fn view_meta(model: &Model<'_>) -> TokenStream {
    let Some(query) = model.attrs.query.get() else {
        return TokenStream::new();
    };
    if !model.is_view() {
        return TokenStream::new();
    }
    let concurrent = model.attrs.refresh_concurrently.get().is_some();
    quote!(.with_view(::orm::__private::ViewMeta::new(#query, #concurrent)))
}

/// The view's marker impls.
pub fn expand(model: &Model<'_>) -> TokenStream {
    let ident = model.ident();
    let p = quote!(::orm::__private);
    let concurrent = model.attrs.refresh_concurrently.get().map(|()| {
        quote! {
            #[automatically_derived]
            impl #p::ConcurrentRefresh for #ident {}
        }
    });
    quote! {
        #[automatically_derived]
        impl #p::MaterializedView for #ident {}
        #concurrent
    }
}
