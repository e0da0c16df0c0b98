//! `CheckValues` for the model, its insert struct and its patch struct: the fields whose values some backend
//! would not store exactly, checked before every write.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::insert::{insert_fields, insert_ident};
use super::names::column_path;
use super::patch::{patch_fields, patch_ident};
use crate::ast::{Field, Model};

/// The impls for the model (checked by `update`) and the insert struct (by `insert` and bulk
/// insert).
pub fn expand(model: &Model<'_>) -> TokenStream {
    // `update` never writes a read-only field, so its value is not checked.
    let for_model = check_values(
        model,
        model.ident(),
        model.fields.iter().filter(|f| !f.is_read_only()),
    );
    let for_insert = check_values(model, &insert_ident(model), insert_fields(model));
    let for_patch = check_values(model, &patch_ident(model), patch_fields(model));
    quote!(#for_model #for_insert #for_patch)
}

fn check_values<'m, 'a: 'm>(
    model: &Model<'_>,
    ident: &Ident,
    fields: impl Iterator<Item = &'m Field<'a>>,
) -> TokenStream {
    let p = quote!(::orm::__private);
    let checks: Vec<_> = fields
        .filter(|f| f.value_checked || f.attrs.length.get().is_some())
        .map(|f| {
            let column = column_path(model, &f.column);
            let name = quote!(<#column as #p::diesel::Column>::NAME);
            let field = f.ident;
            let value = f
                .value_checked
                .then(|| quote!(#p::check_value(&self.#field, backend, #name)?;));
            let length = f
                .attrs
                .length
                .get()
                .map(|n| quote!(#p::check_length(&self.#field, #n, #name)?;));
            quote!(#value #length)
        })
        .collect();
    // A row with nothing to check ignores the backend; the impl compiles to nothing.
    let unused = checks.is_empty().then(|| quote!(let _ = backend;));
    quote! {
        #[automatically_derived]
        impl #p::CheckValues for #ident {
            fn check_values(
                &self,
                backend: #p::Backend,
            ) -> ::std::result::Result<(), #p::RejectedValue> {
                #unused
                #(#checks)*
                ::std::result::Result::Ok(())
            }
        }
    }
}
