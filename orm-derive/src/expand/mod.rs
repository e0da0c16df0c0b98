//! Code generation: one module per generated capability over the checked model IR.

mod diesel_impls;
mod fallback;
mod insert;
mod model_impl;
mod partial;
mod projection;
mod table;

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::ast::Model;
use crate::check;
use crate::ctxt::Ctxt;

/// `#[derive(Model)]`: parse, check, then expand; on any error, the errors and stubs only.
pub fn derive_model(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let model = Model::from_ast(&cx, input);
    if let Some(model) = &model {
        check::check(&cx, model);
    }
    match (cx.check(), model) {
        (Ok(()), Some(model)) => expand(&model),
        (Err(errors), model) => fallback::expand(model.as_ref(), errors),
        (Ok(()), None) => unreachable!("a model that failed to parse recorded an error"),
    }
}

fn expand(model: &Model<'_>) -> TokenStream {
    let table = table::expand(model);
    let insert_struct = insert::expand_struct(model);
    let diesel_impls = diesel_impls::expand(model);
    let insert_impls = insert::expand_impls(model);
    let model_impl = model_impl::expand(model);
    let (partial_structs, partial_impls) = partial::expand(model);
    quote! {
        #table
        #insert_struct
        #partial_structs
        const _: () = {
            #diesel_impls
            #insert_impls
            #model_impl
            #partial_impls
        };
    }
}

pub use projection::derive_projection;

/// The key under which `ModelField` is implemented for the field `name` (a raw identifier
/// counts without its `r#`).
pub fn field_hash(name: &str) -> u64 {
    let name = name.strip_prefix("r#").unwrap_or(name);
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// Path of column `column` in the model's table module: `users::email`.
fn column_path(model: &Model<'_>, column: &syn::Ident) -> TokenStream {
    let module = model.table_module();
    quote!(#module::#column)
}
