//! The index and partial metadata of a model: `.with_indexes(&[…]).with_partials(&[…])`
//! on its `TableMeta`, each column named by its Diesel column's SQL name.

use proc_macro2::TokenStream;
use quote::quote;

use super::names::column_path;
use crate::ast::Model;
use crate::attr::{IndexAttr, IndexMethodAttr};

/// The builder calls appended to the model's `TableMeta::new(…)`.
pub fn table_meta_builders(model: &Model<'_>) -> TokenStream {
    let p = quote!(::orm::__private);
    let indexes = model.attrs.indexes.iter().map(|i| index_meta(model, i));
    let partials = model.attrs.partials.iter().map(|partial| {
        let name = partial.name.to_string();
        let columns = column_names(model, &partial.columns);
        quote!(#p::PartialMeta::new(#name, &[#(#columns),*]))
    });
    let view = super::view::view_meta(model);
    quote! {
        .with_indexes(&[#(#indexes),*])
        .with_partials(&[#(#partials),*])
        #view
    }
}

fn index_meta(model: &Model<'_>, index: &IndexAttr) -> TokenStream {
    let p = quote!(::orm::__private);
    let name = index.name.as_ref().map(|n| n.value()).unwrap_or_default();
    let on = column_names(model, &index.on);
    let include = column_names(model, &index.include);
    let unique = index.unique.map(|_| quote!(.with_unique()));
    let method = index.method.as_ref().map(|(_, m)| {
        let variant = match m {
            IndexMethodAttr::BTree => quote!(BTree),
            IndexMethodAttr::Hash => quote!(Hash),
            IndexMethodAttr::Gin => quote!(Gin),
            IndexMethodAttr::Brin => quote!(Brin),
        };
        quote!(.with_method(#p::IndexMethod::#variant))
    });
    let predicate = index
        .predicate
        .as_ref()
        .map(|w| quote!(.with_predicate(#w)));
    quote! {
        #p::IndexMeta::new(#name, &[#(#on),*])
            .with_include(&[#(#include),*])
            #unique #method #predicate
    }
}

/// The SQL name of each listed field's column (`<users::email as Column>::NAME`).
fn column_names(model: &Model<'_>, names: &[syn::Ident]) -> Vec<TokenStream> {
    names
        .iter()
        .filter_map(|n| model.field_named(n))
        .map(|f| {
            let path = column_path(model, &f.column);
            quote!(<#path as ::orm::__private::diesel::Column>::NAME)
        })
        .collect()
}
