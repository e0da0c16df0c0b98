//! Diesel's HasTable, Queryable, Selectable, Identifiable and AsChangeset for the model.

use proc_macro2::TokenStream;
use quote::quote;

use super::names::column_path;
use crate::ast::{Field, Model};

pub fn expand(model: &Model<'_>) -> TokenStream {
    let ident = model.ident();
    let module = model.table_module();
    let d = quote!(::orm::__private::diesel);

    let loaded: Vec<_> = model
        .fields
        .iter()
        .map(|f| LoadedField::of(model, f))
        .collect();
    let queryable_selectable = queryable_selectable(ident, &loaded);
    if model.is_view() {
        // Read-only: no key to identify a row by, no changeset to write one.
        return quote! {
            #[automatically_derived]
            impl #d::associations::HasTable for #ident {
                type Table = #module::table;
                fn table() -> Self::Table {
                    #module::table
                }
            }

            #queryable_selectable
        };
    }

    let key_fields: Vec<_> = model.key_fields().collect();
    let (id_type, id_value) = if let [key] = key_fields.as_slice() {
        let (ty, f) = (key.ty(), key.ident);
        (quote!(&'__orm #ty), quote!(&self.#f))
    } else {
        let tys = key_fields.iter().map(|k| k.ty());
        let fs = key_fields.iter().map(|k| k.ident);
        (quote!((#(&'__orm #tys,)*)), quote!((#(&self.#fs,)*)))
    };

    let changeset = changeset(model);

    quote! {
        #[automatically_derived]
        impl #d::associations::HasTable for #ident {
            type Table = #module::table;
            fn table() -> Self::Table {
                #module::table
            }
        }

        #queryable_selectable

        #[automatically_derived]
        impl<'__orm> #d::Identifiable for &'__orm #ident {
            type Id = #id_type;
            fn id(self) -> Self::Id {
                #id_value
            }
        }

        #changeset
    }
}

/// A field loaded from a column: of the model, a partial or a projection.
pub struct LoadedField<'a> {
    /// Field name.
    pub ident: &'a syn::Ident,
    /// Field type.
    pub ty: &'a syn::Type,
    /// The column's path (or type) in the table module.
    pub column: TokenStream,
}

impl<'a> LoadedField<'a> {
    /// A model field, loaded from its own column.
    pub fn of(model: &Model<'_>, field: &'a Field<'_>) -> Self {
        Self {
            ident: field.ident,
            ty: field.ty(),
            column: column_path(model, &field.column),
        }
    }
}

/// Diesel's `Queryable` (from a tuple row, in field order) and `Selectable` (exactly these
/// columns) for `ident`.
pub fn queryable_selectable(ident: &syn::Ident, fields: &[LoadedField<'_>]) -> TokenStream {
    let d = quote!(::orm::__private::diesel);
    let field_idents = fields.iter().map(|f| f.ident);
    let field_types: Vec<_> = fields.iter().map(|f| f.ty).collect();
    let indexes = (0..fields.len()).map(syn::Index::from);
    let columns: Vec<_> = fields.iter().map(|f| &f.column).collect();
    quote! {
        #[automatically_derived]
        impl<__DB, __ST> #d::deserialize::Queryable<__ST, __DB> for #ident
        where
            __DB: #d::backend::Backend,
            (#(#field_types,)*): #d::deserialize::FromStaticSqlRow<__ST, __DB>,
        {
            type Row = (#(#field_types,)*);
            fn build(row: Self::Row) -> #d::deserialize::Result<Self> {
                ::std::result::Result::Ok(Self {
                    #(#field_idents: row.#indexes,)*
                })
            }
        }

        #[automatically_derived]
        impl<__DB: #d::backend::Backend> #d::Selectable<__DB> for #ident {
            type SelectExpression = (#(#columns,)*);
            fn construct_selection() -> Self::SelectExpression {
                (#(<#columns as ::std::default::Default>::default(),)*)
            }
        }
    }
}

/// `AsChangeset` for `&Model`: every non-key column the database does not fill, `None` written
/// as NULL.
fn changeset(model: &Model<'_>) -> TokenStream {
    let fields: Vec<_> = model.updated_fields().collect();
    if fields.is_empty() {
        return TokenStream::new();
    }
    let ident = model.ident();
    let module = model.table_module();
    let d = quote!(::orm::__private::diesel);
    let types = fields.iter().map(|f| {
        let column = column_path(model, &f.column);
        let ty = f.ty();
        quote!(#d::dsl::Eq<#column, ::orm::__private::Bound<<#column as #d::Expression>::SqlType, &'__orm #ty>>)
    });
    let values = fields.iter().map(|f| {
        let column = column_path(model, &f.column);
        let field = f.ident;
        quote!(#d::ExpressionMethods::eq(#column, ::orm::__private::Bound::new(&self.#field)))
    });
    quote! {
        #[automatically_derived]
        impl<'__orm> #d::AsChangeset for &'__orm #ident {
            type Target = #module::table;
            type Changeset = <(#(#types,)*) as #d::AsChangeset>::Changeset;
            fn as_changeset(self) -> Self::Changeset {
                #d::AsChangeset::as_changeset((#(#values,)*))
            }
        }
    }
}
