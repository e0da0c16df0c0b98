//! What only a materialized view gets: the view's metadata on its `TableMeta`, and
//! `orm::MaterializedView` (plus `ConcurrentRefresh` when declared). The rest of a view's code
//! is a read-only model's (`expand::expand_view`).

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Model;

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
