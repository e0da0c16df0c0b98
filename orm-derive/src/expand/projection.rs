//! `#[derive(Projection)]`: a hand-written struct loading some of a model's columns, each field
//! checked at compile time against the model's field of the same name and type.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident};

use super::diesel_impls::LoadedField;
use super::names::field_hash;
use super::partial::projection_impl;
use crate::ctxt::Ctxt;

/// Expand `#[derive(Projection)]`.
///
/// The projection cannot see its model's fields (they belong to another derive), so each field
/// is looked up through a constant evaluated against the model's `TABLE`: a field the model
/// lacks fails that evaluation with an error naming the closest field, spanned on the field's
/// name. Every other use of the field goes through that constant, so the compiler reports
/// nothing else about it. The row is loaded as the model's types and handed to each field
/// through `SameTypeAs`, so a field of another type is one error on that type and the
/// projection still loads (no follow-up errors where it is used).
pub fn derive_projection(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let model = model_path(&cx, input);
    let fields = fields(&cx, input);
    if let Err(errors) = cx.check() {
        return errors.to_compile_error();
    }
    let (Some(model), Some(fields)) = (model, fields) else {
        unreachable!("a projection that failed to parse recorded an error");
    };
    let name = &input.ident;
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    // One constant per field: the key of its `ModelField` impl, or the compile error.
    let keys = format_ident!("{}_fields", name);
    let key_consts = fields.iter().map(|(f, source)| {
        let key = field_hash(&source.to_string());
        let text = source.to_string();
        // A field loading a model field of its own name may have meant another name.
        let suggest_column = f.ident.as_ref() == Some(source);
        respan(
            quote! {
                const #source: u64 = match #p::unknown_field::<#model>(#text, #suggest_column) {
                    ::core::option::Option::None => #key,
                    ::core::option::Option::Some(message) => ::core::panic!("{}", message.as_str()),
                };
            },
            source.span(),
        )
    });
    let model_field = |source: &Ident| {
        respan(
            quote!(<#model as #p::ModelField<{ #keys::#source }>>),
            source.span(),
        )
    };
    let loaded: Vec<_> = fields
        .iter()
        .map(|(f, source)| {
            let field = model_field(source);
            LoadedField {
                ident: f.ident.as_ref().expect("named field"),
                ty: &f.ty,
                column: respan(quote!(#field::Column), source.span()),
            }
        })
        .collect();
    let model_types: Vec<_> = fields
        .iter()
        .map(|(_, source)| {
            let field = model_field(source);
            respan(quote!(#field::Type), source.span())
        })
        .collect();
    let idents = loaded.iter().map(|f| f.ident);
    // Each field's type must be the model field's type: checked where the field is written.
    let values = fields
        .iter()
        .zip(&model_types)
        .enumerate()
        .map(|(i, ((f, _), model_ty))| {
            let ty = &f.ty;
            let i = syn::Index::from(i);
            quote_spanned!(ty.span()=> <#ty as #p::SameTypeAs<#model_ty>>::from_model(row.#i))
        });
    let columns: Vec<_> = loaded.iter().map(|f| &f.column).collect();
    let projection = projection_impl(name, &quote!(#model), &loaded);
    super::lint_allowed(quote! {
            #[doc(hidden)]
            #[allow(non_camel_case_types)]
            enum #keys {}

            #[allow(non_upper_case_globals)]
            impl #keys {
                #(#key_consts)*
            }

            #[automatically_derived]
            impl<__DB, __ST> #d::deserialize::Queryable<__ST, __DB> for #name
            where
                __DB: #d::backend::Backend,
                (#(#model_types,)*): #d::deserialize::FromStaticSqlRow<__ST, __DB>,
            {
                type Row = (#(#model_types,)*);
                fn build(row: Self::Row) -> #d::deserialize::Result<Self> {
                    ::std::result::Result::Ok(Self {
                        #(#idents: #values,)*
                    })
                }
            }

            #[automatically_derived]
            impl<__DB: #d::backend::Backend> #d::Selectable<__DB> for #name {
                type SelectExpression = (#(#columns,)*);
                fn construct_selection() -> Self::SelectExpression {
                    (#(<#columns as ::std::default::Default>::default(),)*)
                }
            }

            #projection
    })
}

/// `tokens` with every span set to `span`.
fn respan(tokens: TokenStream, span: proc_macro2::Span) -> TokenStream {
    use proc_macro2::{Group, TokenTree};
    tokens
        .into_iter()
        .map(|mut tree| {
            if let TokenTree::Group(g) = &tree {
                let mut group = Group::new(g.delimiter(), respan(g.stream(), span));
                group.set_span(span);
                tree = TokenTree::Group(group);
            } else {
                tree.set_span(span);
            }
            tree
        })
        .collect()
}

/// `#[orm(model = User)]`, required.
fn model_path(cx: &Ctxt, input: &DeriveInput) -> Option<syn::Path> {
    let mut model = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("orm")) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("model") {
                if model.is_some() {
                    return Err(meta.error("duplicate `#[orm(model)]` attribute"));
                }
                model = Some(meta.value()?.parse::<syn::Path>()?);
                Ok(())
            } else if meta.path.is_ident("crate") {
                // Read by `crate_path::find`, which reports its mistakes.
                crate::crate_path::skip_value(&meta)
            } else {
                Err(meta
                    .error("unknown `orm` attribute on a projection; expected `model = ModelName` or `crate = path`"))
            }
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    if model.is_none() {
        cx.error_spanned_by(
            &input.ident,
            format!(
                "a projection needs its model: add `#[orm(model = User)]` above `struct {}`",
                input.ident
            ),
        );
    }
    model
}

/// The named fields, each with the model field it loads (`#[orm(column = …)]` or its own name).
fn fields<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Option<Vec<(&'a syn::Field, Ident)>> {
    let Data::Struct(data) = &input.data else {
        cx.error_spanned_by(
            &input.ident,
            "`#[derive(Projection)]` works on structs with named fields only",
        );
        return None;
    };
    let Fields::Named(named) = &data.fields else {
        cx.error_spanned_by(
            &input.ident,
            "`#[derive(Projection)]` needs named fields, one per loaded column",
        );
        return None;
    };
    let mut out = Vec::new();
    for field in &named.named {
        let ident = field.ident.clone().expect("named field");
        let mut source: Option<Ident> = None;
        for attr in field.attrs.iter().filter(|a| a.path().is_ident("orm")) {
            let result = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("column") {
                    if source.is_some() {
                        return Err(meta.error("duplicate `#[orm(column)]` attribute"));
                    }
                    source = Some(meta.value()?.parse()?);
                    Ok(())
                } else {
                    Err(meta.error("unknown `orm` attribute on a projection field; expected `column = model_field`"))
                }
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }
        let source = source.unwrap_or(ident);
        if out.iter().any(|(_, s)| *s == source) {
            cx.error_spanned_by(&source, format!("column `{source}` is loaded twice"));
        }
        out.push((field, source));
    }
    if out.is_empty() {
        cx.error_spanned_by(&input.ident, "a projection needs at least one field");
    }
    Some(out)
}
