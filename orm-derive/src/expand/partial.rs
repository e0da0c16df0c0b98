//! Partial structs: `#[orm(partial(UserCard = [id, name]))]` generates `UserCard` with exactly
//! those fields, selecting exactly those columns.

use proc_macro2::TokenStream;
use quote::quote;

use super::diesel_impls::{queryable_selectable, LoadedField};
use crate::ast::Model;
use crate::attr::PartialAttr;

pub fn expand(model: &Model<'_>) -> (TokenStream, TokenStream) {
    let mut structs = TokenStream::new();
    let mut impls = TokenStream::new();
    for partial in &model.attrs.partials {
        structs.extend(expand_struct(model, partial));
        impls.extend(expand_impls(model, partial));
    }
    (structs, impls)
}

fn expand_struct(model: &Model<'_>, partial: &PartialAttr) -> TokenStream {
    let vis = model.vis();
    let name = &partial.name;
    let fields = partial
        .columns
        .iter()
        .filter_map(|c| model.field_named(c))
        .map(|f| {
            let (fvis, ident, ty) = (&f.original.vis, f.ident, f.ty());
            let docs = f.original.attrs.iter().filter(|a| a.path().is_ident("doc"));
            quote!(#(#docs)* #fvis #ident: #ty,)
        });
    let listed: Vec<String> = partial.columns.iter().map(|c| format!("`{c}`")).collect();
    let doc = format!(
        "Part of a [`{}`] row: {} only, loaded by selecting just those columns.",
        model.ident(),
        listed.join(", ")
    );
    let extra = &partial.derives;
    quote! {
        #[doc = #doc]
        #[derive(
            Debug,
            Clone,
            PartialEq,
            ::orm::__private::serde::Serialize,
            ::orm::__private::serde::Deserialize,
            #(#extra),*
        )]
        #[serde(crate = "::orm::__private::serde")]
        #vis struct #name {
            #(#fields)*
        }
    }
}

fn expand_impls(model: &Model<'_>, partial: &PartialAttr) -> TokenStream {
    let name = &partial.name;
    let ident = model.ident();
    let fields: Vec<_> = partial
        .columns
        .iter()
        .filter_map(|c| model.field_named(c))
        .collect();
    let loaded: Vec<_> = fields.iter().map(|f| LoadedField::of(model, f)).collect();
    let diesel = queryable_selectable(name, &loaded);
    let projection = projection_impl(name, &quote!(#ident), &loaded);
    quote! {
        #diesel
        #projection
    }
}

/// `orm::Projection` for a partial or a `#[derive(Projection)]` struct.
pub fn projection_impl(
    name: &syn::Ident,
    model: &TokenStream,
    fields: &[LoadedField<'_>],
) -> TokenStream {
    let columns: Vec<_> = fields.iter().map(|f| &f.column).collect();
    let d = quote!(::orm::__private::diesel);
    quote! {
        #[automatically_derived]
        impl ::orm::__private::Projection for #name {
            type Model = #model;
            type Columns = (#(#columns,)*);
            const COLUMNS: &'static [&'static str] = &[#(<#columns as #d::Column>::NAME),*];
            fn columns() -> Self::Columns {
                (#(<#columns as ::std::default::Default>::default(),)*)
            }
        }

        #[automatically_derived]
        impl #name {
            /// The select expression of exactly this struct's columns, for the Diesel DSL:
            /// `.select(Self::columns())`.
            pub fn columns() -> <Self as ::orm::__private::Projection>::Columns {
                <Self as ::orm::__private::Projection>::columns()
            }
        }
    }
}
