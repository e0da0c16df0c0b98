//! `#[derive(Projection)]`: a hand-written struct loading some of a model's columns, each field
//! checked at compile time against the model's field of the same name and type.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident};

use super::diesel_impls::{queryable_selectable, LoadedField};
use super::field_hash;
use super::partial::projection_impl;
use crate::ctxt::Ctxt;

/// Expand `#[derive(Projection)]`.
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
    // Every use of a field's `ModelField` impl is spanned on the field's name, so a field the
    // model lacks is one error there, not one per use.
    let model_field = |source: &Ident| {
        let hash = field_hash(&source.to_string());
        respan(
            quote!(<#model as ::orm::__private::ModelField<#hash>>),
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
    // Each field's type must be the model field's type: checked where the field is written.
    let type_checks = fields.iter().map(|(f, source)| {
        let field = model_field(source);
        let ty = &f.ty;
        quote_spanned!(ty.span()=> #ty: ::orm::__private::SameTypeAs<#field::Type>,)
    });
    let diesel = queryable_selectable(name, &loaded);
    let projection = projection_impl(name, &quote!(#model), &loaded);
    quote! {
        const _: () = {
            #[allow(dead_code)]
            fn projection_fields_match_the_model() where #(#type_checks)* {}
            #diesel
            #projection
        };
    }
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
            } else {
                Err(meta
                    .error("unknown `orm` attribute on a projection; expected `model = ModelName`"))
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
