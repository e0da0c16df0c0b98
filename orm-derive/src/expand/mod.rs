//! Code generation: one module per generated capability over the checked model IR.

mod cache_key;
mod diesel_impls;
mod index;
mod insert;
mod model_impl;
mod names;
mod partial;
mod patch;
mod projection;
mod table;
mod values;
mod view;

pub use projection::derive_projection;

use proc_macro2::TokenStream;
use quote::quote;
use syn::DeriveInput;

use crate::ast::Model;
use crate::check;
use crate::ctxt::Ctxt;

/// `#[derive(Model)]`: parse, check, then expand.
///
/// A mistake inside one attribute (an unknown or repeated key, say) leaves a model that can
/// still be generated: the error is reported and the code generated anyway, so the user's own
/// uses of `User`, `NewUser` and `users::…` do not add errors of their own. A model that fails
/// a check (no primary key, an unknown type, …) cannot be generated: only its errors are
/// emitted, since anything built from it would add errors on top of the one that matters.
pub fn derive_model(input: &DeriveInput) -> TokenStream {
    let attribute_errors = Ctxt::default();
    let model = Model::from_ast(&attribute_errors, input);
    let check_errors = Ctxt::default();
    if let Some(model) = &model {
        check::check(&check_errors, model);
    }
    let attribute_errors = attribute_errors.check();
    match (model, check_errors.check()) {
        (Some(model), Ok(())) => {
            let code = expand(&model);
            match attribute_errors {
                Ok(()) => code,
                Err(errors) => {
                    let errors = errors.to_compile_error();
                    quote!(#errors #code)
                }
            }
        }
        (_, Err(mut errors)) => {
            if let Err(first) = attribute_errors {
                let mut all = first;
                all.combine(errors);
                errors = all;
            }
            errors.to_compile_error()
        }
        (None, Ok(())) => attribute_errors
            .expect_err("a model that failed to parse recorded an error")
            .to_compile_error(),
    }
}

/// Everything generated for a table-backed model.
fn expand(model: &Model<'_>) -> TokenStream {
    if model.is_view() {
        return expand_view(model);
    }
    let table = table::expand(model);
    let insert_struct = insert::expand_struct(model);
    let patch_struct = patch::expand_struct(model);
    let patch_impls = patch::expand_impls(model);
    let diesel_impls = diesel_impls::expand(model);
    let insert_impls = insert::expand_impls(model);
    let model_impl = model_impl::expand(model);
    let (partial_structs, partial_impls) = partial::expand(model);
    let value_checks = values::expand(model);
    let cache_rows = cache_key::expand_model(model);
    let partial_cache_rows = model
        .attrs
        .partials
        .iter()
        .map(|partial| cache_key::expand_partial(model, partial));
    let impls = lint_allowed(quote! {
        #diesel_impls
        #insert_impls
        #patch_impls
        #model_impl
        #partial_impls
        #value_checks
        #cache_rows
        #(#partial_cache_rows)*
    });
    quote! {
        #table
        #insert_struct
        #patch_struct
        #partial_structs
        #impls
    }
}

/// Everything generated for a materialized view: its `table!`, Diesel's Queryable and
/// Selectable, its partials and `orm::ReadModel` (with the view's marker impls); no insert
/// struct, no `Model`, so no write API exists for it.
fn expand_view(model: &Model<'_>) -> TokenStream {
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
    let impls = lint_allowed(quote! {
        #diesel_impls
        #read_model
        #partial_impls
        #cache_rows
        #(#partial_cache_rows)*
    });
    quote! {
        #table
        #partial_structs
        #impls
    }
}

/// `items` inside serde's `const _: () = { … };` block: nameless, so nothing it declares leaks
/// into the user's module, and with the lints generated code may trip (in the user's crate, under
/// the user's lint levels) allowed.
pub fn lint_allowed(items: TokenStream) -> TokenStream {
    quote! {
        #[doc(hidden)]
        #[allow(
            non_upper_case_globals,
            non_camel_case_types,
            unused_attributes,
            unused_qualifications,
            clippy::all,
            clippy::pedantic
        )]
        const _: () = {
            #items
        };
    }
}
