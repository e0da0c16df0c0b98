//! The insert struct (`NewUser` for `User`): every field but database-generated keys, and its
//! Diesel `Insertable` impls (owned and borrowed).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::Ident;

use super::names::column_path;
use crate::ast::{Backend, Field, Model};

/// `New{Model}`.
pub fn insert_ident(model: &Model<'_>) -> Ident {
    format_ident!("New{}", model.ident())
}

/// The insert struct's fields, in declaration order.
pub fn insert_fields<'m, 'a>(model: &'m Model<'a>) -> impl Iterator<Item = &'m Field<'a>> {
    model.fields.iter().filter(|f| !f.is_filled_by_database())
}

pub fn expand_struct(model: &Model<'_>) -> TokenStream {
    let vis = model.vis();
    let name = insert_ident(model);
    let generated: Vec<String> = model
        .fields
        .iter()
        .filter(|f| f.is_filled_by_database())
        .map(|f| format!("`{}`", f.ident))
        .collect();
    let doc = if generated.is_empty() {
        format!("A new [`{}`] row to insert.", model.ident())
    } else {
        format!(
            "A new [`{}`] row to insert: every field but {}, which the database fills \
             (`insert` returns the row with them).",
            model.ident(),
            generated.join(", ")
        )
    };
    let fields = insert_fields(model).map(|f| {
        let (fvis, ident, ty) = (&f.original.vis, f.ident, f.ty());
        let docs = f.original.attrs.iter().filter(|a| a.path().is_ident("doc"));
        quote!(#(#docs)* #fvis #ident: #ty,)
    });
    quote! {
        #[doc = #doc]
        #[derive(Debug, Clone)]
        #vis struct #name {
            #(#fields)*
        }
    }
}

pub fn expand_impls(model: &Model<'_>) -> TokenStream {
    let name = insert_ident(model);
    let module = model.table_module();
    let d = quote!(::orm::__private::diesel);
    let fields: Vec<_> = insert_fields(model).collect();
    let expr_type = |f: &Field<'_>, reference: TokenStream| {
        let column = column_path(model, &f.column);
        let ty = f.ty();
        quote!(#d::dsl::Eq<#column, ::orm::__private::Bound<<#column as #d::Expression>::SqlType, #reference #ty>>)
    };
    let owned_types = fields.iter().map(|f| expr_type(f, quote!()));
    let borrowed_types = fields.iter().map(|f| expr_type(f, quote!(&'__orm)));
    let values = |reference: TokenStream| {
        fields
            .iter()
            .map(|f| {
                let column = column_path(model, &f.column);
                let field = f.ident;
                quote!(#d::ExpressionMethods::eq(#column, ::orm::__private::Bound::new(#reference self.#field)))
            })
            .collect::<Vec<_>>()
    };
    let bind_row = bind_row(model, &fields);
    let copy_row = if model.supports(Backend::Postgres) {
        copy_row(model, &fields)
    } else {
        TokenStream::new()
    };
    let owned_values = values(quote!());
    let borrowed_values = values(quote!(&));
    quote! {
        #[automatically_derived]
        impl #d::Insertable<#module::table> for #name {
            type Values = <(#(#owned_types,)*) as #d::Insertable<#module::table>>::Values;
            fn values(self) -> Self::Values {
                #d::Insertable::<#module::table>::values((#(#owned_values,)*))
            }
        }

        #[automatically_derived]
        impl<'__orm> #d::Insertable<#module::table> for &'__orm #name {
            type Values = <(#(#borrowed_types,)*) as #d::Insertable<#module::table>>::Values;
            fn values(self) -> Self::Values {
                #d::Insertable::<#module::table>::values((#(#borrowed_values,)*))
            }
        }

        #[automatically_derived]
        impl #d::internal::derives::insertable::UndecoratedInsertRecord<#module::table> for #name {}

        #bind_row
        #copy_row
    }
}

/// `BindRow`: the row's values as bind parameters, for multi-row INSERTs of bulk inserts.
fn bind_row(model: &Model<'_>, fields: &[&Field<'_>]) -> TokenStream {
    let name = insert_ident(model);
    let d = quote!(::orm::__private::diesel);
    let sql_types: Vec<_> = fields
        .iter()
        .map(|f| {
            let column = column_path(model, &f.column);
            quote!(<#column as #d::Expression>::SqlType)
        })
        .collect();
    let types = fields.iter().map(|f| f.ty());
    let binds = fields
        .iter()
        .zip(&sql_types)
        .enumerate()
        .map(|(i, (f, st))| {
            let field = f.ident;
            let ty = f.ty();
            let comma = (i > 0).then(|| quote!(out.push_sql(", ");));
            quote! {
                #comma
                out.push_bind_param::<#st, #ty>(&self.#field)?;
            }
        });
    quote! {
        #[automatically_derived]
        impl<__DB> ::orm::__private::BindRow<__DB> for #name
        where
            __DB: #d::backend::Backend #(+ #d::sql_types::HasSqlType<#sql_types>)*,
            #(#types: #d::serialize::ToSql<#sql_types, __DB>,)*
        {
            fn walk_values<'__b>(
                &'__b self,
                mut out: #d::query_builder::AstPass<'_, '__b, __DB>,
            ) -> #d::QueryResult<()> {
                #(#binds)*
                ::std::result::Result::Ok(())
            }
        }
    }
}

/// `CopyRow`: the row's fields as binary COPY bytes, for bulk inserts on PostgreSQL.
fn copy_row(model: &Model<'_>, fields: &[&Field<'_>]) -> TokenStream {
    let name = insert_ident(model);
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    let pushes = fields.iter().map(|f| {
        let column = column_path(model, &f.column);
        let (field, ty) = (f.ident, f.ty());
        quote! {
            <#p::RawBytesBindCollector<#p::Pg> as #d::query_builder::BindCollector<'_, #p::Pg>>::push_bound_value::<
                <#column as #d::Expression>::SqlType,
                #ty,
            >(out, &self.#field, lookup)?;
        }
    });
    quote! {
        #[automatically_derived]
        impl #p::CopyRow for #name {
            fn push_copy_fields(
                &self,
                out: &mut #p::RawBytesBindCollector<#p::Pg>,
                lookup: &mut (dyn #p::PgMetadataLookup + 'static),
            ) -> #d::QueryResult<()> {
                #(#pushes)*
                ::std::result::Result::Ok(())
            }
        }
    }
}
