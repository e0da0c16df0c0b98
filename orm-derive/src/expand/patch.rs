//! The patch struct (`UserPatch` for `User`): an `Option` of every non-key field, and its
//! Diesel `AsChangeset`, so `db.patch` writes exactly the fields that are `Some`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::names::column_path;
use crate::ast::{Field, Model};

/// `{Model}Patch`.
pub fn patch_ident(model: &Model<'_>) -> Ident {
    format_ident!("{}Patch", model.ident())
}

/// The patch struct's fields: every non-key field but read-only ones, server-filled ones
/// included.
pub fn patch_fields<'m, 'a>(model: &'m Model<'a>) -> impl Iterator<Item = &'m Field<'a>> {
    model.value_fields().filter(|f| !f.is_read_only())
}

pub fn expand_struct(model: &Model<'_>) -> TokenStream {
    let vis = model.vis();
    let name = patch_ident(model);
    let doc = format!(
        "Some fields of a [`{model}`] row to write, by primary key: `db.patch::<{model}>(key, \
         &{name} {{ field: Some(value), ..Default::default() }})` runs one `UPDATE … SET` of the \
         fields that are `Some`, leaving every other column as the database has it.",
        model = model.ident()
    );
    let fields = patch_fields(model).map(|f| {
        let (fvis, ident, ty) = (&f.original.vis, f.ident, f.ty());
        quote! {
            #[doc = "`Some(value)` writes the column; `None` leaves it as it is."]
            #fvis #ident: ::std::option::Option<#ty>,
        }
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone, Default)]
        #vis struct #name {
            #(#fields)*
        }
    }
}

pub fn expand_impls(model: &Model<'_>) -> TokenStream {
    let name = patch_ident(model);
    let module = model.table_module();
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    let fields: Vec<_> = patch_fields(model).collect();
    let idents: Vec<_> = fields.iter().map(|f| f.ident).collect();
    let changeset = if fields.is_empty() {
        TokenStream::new()
    } else {
        let types = fields.iter().map(|f| {
            let column = column_path(model, &f.column);
            let ty = f.ty();
            quote!(::std::option::Option<#d::dsl::Eq<#column, #p::Bound<<#column as #d::Expression>::SqlType, &'__orm #ty>>>)
        });
        let values = fields.iter().map(|f| {
            let column = column_path(model, &f.column);
            let field = f.ident;
            quote! {
                ::std::option::Option::map(::std::option::Option::as_ref(&self.#field), |v| {
                    #d::ExpressionMethods::eq(#column, #p::Bound::new(v))
                })
            }
        });
        quote! {
            #[automatically_derived]
            impl<'__orm> #d::AsChangeset for &'__orm #name {
                type Target = #module::table;
                type Changeset = <(#(#types,)*) as #d::AsChangeset>::Changeset;
                fn as_changeset(self) -> Self::Changeset {
                    #d::AsChangeset::as_changeset((#(#values,)*))
                }
            }
        }
    };
    quote! {
        #[automatically_derived]
        impl #p::PatchValues for #name {
            fn is_empty(&self) -> bool {
                true #(&& ::std::option::Option::is_none(&self.#idents))*
            }
        }

        #changeset
    }
}
