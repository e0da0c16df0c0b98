//! The `orm::Model` impl (table metadata) and the per-backend row operations.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::column_path;
use super::insert::insert_ident;
use crate::ast::Model;

pub fn expand(model: &Model<'_>) -> TokenStream {
    let ident = model.ident();
    let module = model.table_module();
    let p = quote!(::orm::__private);
    let new = insert_ident(model);
    let model_name = ident.to_string();
    let table_name = model.table_name().to_string();

    let key_fields: Vec<_> = model.key_fields().collect();
    let (key_type, key_value) = if let [key] = key_fields.as_slice() {
        let (ty, f) = (key.ty(), key.ident);
        (quote!(#ty), quote!(::std::clone::Clone::clone(&self.#f)))
    } else {
        let tys = key_fields.iter().map(|k| k.ty());
        let fs = key_fields.iter().map(|k| k.ident);
        (
            quote!((#(#tys,)*)),
            quote!((#(::std::clone::Clone::clone(&self.#fs),)*)),
        )
    };

    let columns = model.fields.iter().map(|f| {
        let name = f.column.to_string();
        let field = f.ident.to_string();
        let nullable = f.nullable;
        let generated = f.is_generated();
        let sql = f.sql_type();
        // Spanned on the field's type, so a custom `sql_type` without `DdlType` is reported there.
        let span = f
            .attrs
            .sql_type
            .get()
            .map_or_else(|| f.ty().span(), |t| t.span());
        let ddl = quote_spanned!(span=> <#sql as ::orm::__private::DdlType>);
        quote! {
            #p::ColumnMeta {
                name: #name,
                field: #field,
                postgres_type: #ddl::POSTGRES,
                sqlite_type: #ddl::SQLITE,
                nullable: #nullable,
                generated: #generated,
            }
        }
    });
    let primary_key = key_fields.iter().map(|k| k.column.to_string());
    let unique = unique_lists(model)
        .into_iter()
        .map(|cols| quote!(&[#(#cols),*]));
    let fingerprint = fingerprint(model);

    let (key_filter_type, key_filter) = key_filter(model);
    let model_fields = model_fields(model);

    let crud = [quote!(#p::PgConnection), quote!(#p::SqliteConnection)]
        .into_iter()
        .map(|conn| crud(model, &conn));

    quote! {
        #[automatically_derived]
        impl #p::Model for #ident {
            type Table = #module::table;
            type PrimaryKey = #key_type;
            type New = #new;
            type KeyFilter = #key_filter_type;
            const TABLE: &'static #p::TableMeta = &#p::TableMeta {
                model: #model_name,
                name: #table_name,
                columns: &[#(#columns),*],
                primary_key: &[#(#primary_key),*],
                unique: &[#(#unique),*],
                fingerprint: #fingerprint,
            };
            fn primary_key(&self) -> Self::PrimaryKey {
                #key_value
            }
            fn key_filter(key: Self::PrimaryKey) -> Self::KeyFilter {
                #key_filter
            }
        }

        #model_fields

        #(#crud)*
    }
}

/// The `WHERE` type and expression for one primary key: `id = $1`, or `a = $1 AND b = $2`.
fn key_filter(model: &Model<'_>) -> (TokenStream, TokenStream) {
    let d = quote!(::orm::__private::diesel);
    let keys: Vec<_> = model.key_fields().collect();
    let mut filter: Option<(TokenStream, TokenStream)> = None;
    for (i, k) in keys.iter().enumerate() {
        let column = column_path(model, &k.column);
        let ty = k.ty();
        let value = if keys.len() == 1 {
            quote!(key)
        } else {
            let i = syn::Index::from(i);
            quote!(key.#i)
        };
        let eq_type = quote!(#d::dsl::Eq<#column, ::orm::__private::Bound<<#column as #d::Expression>::SqlType, #ty>>);
        let eq_value = quote!(#d::ExpressionMethods::eq(#column, ::orm::__private::Bound::new(#value)));
        filter = Some(match filter {
            None => (eq_type, eq_value),
            Some((t, v)) => (
                quote!(#d::dsl::And<#t, #eq_type>),
                quote!(#d::BoolExpressionMethods::and(#v, #eq_value)),
            ),
        });
    }
    filter.unwrap_or_else(|| (quote!(()), quote!(())))
}

/// `ModelField<hash of the field name>` for every field, read by `#[derive(Projection)]`.
fn model_fields(model: &Model<'_>) -> TokenStream {
    let ident = model.ident();
    let impls = model.fields.iter().map(|f| {
        let hash = crate::expand::field_hash(&f.ident.to_string());
        let column = column_path(model, &f.column);
        let ty = f.ty();
        quote! {
            #[automatically_derived]
            impl ::orm::__private::ModelField<#hash> for #ident {
                type Column = #column;
                type Type = #ty;
            }
        }
    });
    quote!(#(#impls)*)
}

/// Column-name lists of every UNIQUE constraint: field-level `unique`, then `unique(a, b)`.
fn unique_lists(model: &Model<'_>) -> Vec<Vec<String>> {
    let single = model
        .fields
        .iter()
        .filter(|f| f.attrs.unique.get().is_some())
        .map(|f| vec![f.column.to_string()]);
    let multi = model
        .attrs
        .unique
        .iter()
        .filter(|l| !l.is_empty())
        .map(|list| {
            list.iter()
                .filter_map(|name| model.field_named(name))
                .map(|f| f.column.to_string())
                .collect()
        });
    single.chain(multi).collect()
}

/// xxh3 of the table name and each column's name, SQL type and nullability.
fn fingerprint(model: &Model<'_>) -> u64 {
    let mut text = model.table_name().to_string();
    for f in &model.fields {
        let ty: String = f.sql_type().to_string().split_whitespace().collect();
        text.push_str(&format!("|{}:{}:{}", f.column, ty, f.nullable));
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// `Crud<Conn>`: insert, find, update and delete by key on one backend's connection.
fn crud(model: &Model<'_>, conn: &TokenStream) -> TokenStream {
    let ident = model.ident();
    let module = model.table_module();
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);

    let key_fields: Vec<_> = model.key_fields().collect();
    let single = key_fields.len() == 1;
    let key_filters: Vec<_> = key_fields
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let column = column_path(model, &k.column);
            let value = if single {
                quote!(key)
            } else {
                let i = syn::Index::from(i);
                quote!(&key.#i)
            };
            quote!(.filter(#d::ExpressionMethods::eq(#column, #p::Bound::new(#value))))
        })
        .collect();
    let row_filters: Vec<_> = key_fields
        .iter()
        .map(|k| {
            let column = column_path(model, &k.column);
            let f = k.ident;
            quote!(.filter(#d::ExpressionMethods::eq(#column, #p::Bound::new(&row.#f))))
        })
        .collect();
    let update = if model.value_fields().next().is_some() {
        quote! {
            ::std::option::Option::Some(
                #d::update(#module::table #(#row_filters)*)
                    .set(row)
                    .returning(<Self as #d::SelectableHelper<_>>::as_returning())
                    .get_result(conn),
            )
        }
    } else {
        quote!(::std::option::Option::None)
    };

    quote! {
        #[automatically_derived]
        impl #p::Crud<#conn> for #ident {
            fn insert_returning(
                conn: &mut #conn,
                row: &<Self as #p::Model>::New,
            ) -> #d::QueryResult<Self> {
                use #d::prelude::*;
                #d::insert_into(#module::table)
                    .values(row)
                    .returning(<Self as #d::SelectableHelper<_>>::as_returning())
                    .get_result(conn)
            }

            fn find_by_key(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
            ) -> #d::QueryResult<Self> {
                use #d::prelude::*;
                #module::table #(#key_filters)*
                    .select(<Self as #d::SelectableHelper<_>>::as_select())
                    .first(conn)
            }

            fn update_returning(
                conn: &mut #conn,
                row: &Self,
            ) -> ::std::option::Option<#d::QueryResult<Self>> {
                use #d::prelude::*;
                #update
            }

            fn delete_by_key(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
            ) -> #d::QueryResult<usize> {
                use #d::prelude::*;
                #d::delete(#module::table #(#key_filters)*).execute(conn)
            }
        }
    }
}
