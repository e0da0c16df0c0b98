//! The `orm::Model` impl (table metadata) and the per-backend row operations.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::insert::insert_ident;
use super::names::{column_path, field_hash};
use crate::ast::{Backend, Model};

pub fn expand(model: &Model<'_>) -> TokenStream {
    let ident = model.ident();
    let module = model.table_module();
    let p = quote!(::orm::__private);
    let new = insert_ident(model);
    let patch = super::patch::patch_ident(model);
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
        let column = column_path(model, &f.column);
        let name = quote!(<#column as ::orm::__private::diesel::Column>::NAME);
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
        let default = f.attrs.default.get().map(|d| {
            let some = |text: &Option<String>| match text {
                Some(text) => quote!(::std::option::Option::Some(#text)),
                None => quote!(::std::option::Option::None),
            };
            let (postgres, sqlite) = (some(&d.postgres), some(&d.sqlite));
            quote!(.with_default(#postgres, #sqlite))
        });
        let server_filled = f.is_server_filled().then(|| quote!(.with_server_filled()));
        let read_only = f.is_read_only().then(|| quote!(.with_read_only()));
        let length = f.attrs.length.get().map(|n| quote!(.with_max_length(#n)));
        if model.generates_table() {
            // The derive chose the SQL type, so it must have DDL: a missing `DdlType` is a
            // compile error on the field.
            let ddl = quote_spanned!(span=> <#sql as ::orm::__private::DdlType>);
            quote! {
                #p::ColumnMeta::new(
                    #name,
                    #field,
                    #ddl::POSTGRES,
                    #ddl::SQLITE,
                    #nullable,
                    #generated,
                )
                .with_enum_type(#ddl::ENUM)
                #length #default #server_filled #read_only
            }
        } else {
            // A `table!`'s SQL type may have no `DdlType`: the model still works, and
            // `create_table` says the table's DDL is the user's.
            let ddl = quote!(#p::sql_types::DdlOf::<#sql>);
            quote! {
                #p::ColumnMeta::new(
                    #name,
                    #field,
                    { use #p::sql_types::NoDdlType as _; #ddl::POSTGRES },
                    { use #p::sql_types::NoDdlType as _; #ddl::SQLITE },
                    #nullable,
                    #generated,
                )
                .with_ddl_known({ use #p::sql_types::NoDdlType as _; #ddl::KNOWN })
                .with_enum_type({ use #p::sql_types::NoDdlType as _; #ddl::ENUM })
                #length #default #server_filled #read_only
            }
        }
    });
    let constraints = constraints(model);
    let primary_key = key_fields.iter().map(|k| sql_name(model, &k.column));
    let unique = unique_lists(model)
        .into_iter()
        .map(|cols| quote!(&[#(#cols),*]));
    let fingerprint = fingerprint(model);
    let cache_ttl = super::cache_key::table_meta_ttl(model);

    let (key_filter_type, key_filter) = key_filter(model);
    let model_fields = model_fields(model);

    let crud = Backend::ALL
        .into_iter()
        .filter(|backend| backend.is_enabled())
        .map(|backend| {
            if !model.supports(backend) {
                unsupported_crud(model, backend)
            } else if backend == Backend::Sqlite && model.sqlite_decided_by_table() {
                sqlite_crud_if_supported(model)
            } else {
                crud(model, backend)
            }
        });
    let backends = match model.attrs.backend.get() {
        // The `table!`'s SQL types decide: both backends, or PostgreSQL alone.
        None if model.sqlite_decided_by_table() => quote! {
            .with_backends({
                use #p::NoSqliteSupport as _;
                #p::SqliteSupport::<#ident>::BACKENDS
            })
        },
        None => quote!(),
        Some(_) => {
            let declared =
                Backend::ALL
                    .into_iter()
                    .filter(|b| model.supports(*b))
                    .map(|b| match b {
                        Backend::Postgres => quote!(#p::Backend::Postgres),
                        Backend::Sqlite => quote!(#p::Backend::Sqlite),
                    });
            quote!(.with_backends(&[#(#declared),*]))
        }
    };

    let schema = super::index::table_meta_builders(model);
    let read_model = quote! {
        #[automatically_derived]
        impl #p::ReadModel for #ident {
            type Table = #module::table;
            const TABLE: &'static #p::TableMeta = &#p::TableMeta::new(
                #model_name,
                #table_name,
                &[#(#columns),*],
                &[#(#primary_key),*],
                &[#(#unique),*],
                #fingerprint,
            ) #backends #cache_ttl #schema #constraints;
        }

        #[automatically_derived]
        impl #ident {
            /// The table metadata (`ReadModel::TABLE`), readable without importing the trait.
            pub const TABLE: &'static #p::TableMeta = <Self as #p::ReadModel>::TABLE;
        }
    };
    if model.is_view() {
        let view = super::view::expand(model);
        return quote!(#read_model #model_fields #view);
    }

    quote! {
        #read_model

        #[automatically_derived]
        impl #p::Model for #ident {
            type PrimaryKey = #key_type;
            type New = #new;
            type Patch = #patch;
            type KeyFilter = #key_filter_type;
            fn primary_key(&self) -> Self::PrimaryKey {
                #key_value
            }
            fn key_filter(key: Self::PrimaryKey) -> Self::KeyFilter {
                #key_filter
            }
        }

        #model_fields

        #(#crud)*

        #[automatically_derived]
        impl #ident {
            /// Insert every row of `rows` (an iterator of owned or borrowed insert structs) in
            /// batches: binary COPY on PostgreSQL, multi-row INSERT elsewhere. See
            /// `orm::bulk::BulkOptions` for batch size, commit mode, conflicts,
            /// keys and progress.
            pub fn bulk_insert<__I>(
                db: &#p::Database,
                rows: __I,
                options: #p::BulkOptions<'_>,
            ) -> #p::Result<#p::BulkReport<<Self as #p::Model>::PrimaryKey>>
            where
                __I: ::std::iter::IntoIterator,
                __I::Item: ::std::borrow::Borrow<<Self as #p::Model>::New>,
            {
                db.bulk_insert::<Self, __I>(rows, options)
            }
        }
    }
}

/// `.with_checks(…)` and `.with_foreign_keys(…)` for the constraints the model declares.
fn constraints(model: &Model<'_>) -> TokenStream {
    let p = quote!(::orm::__private);
    let table = model.table_name().to_string();
    let field_checks = model.fields.iter().filter_map(|f| {
        let sql = f.attrs.check.get()?;
        let name = format!("{table}_{}_check", f.column);
        Some(quote!(#p::CheckConstraint::new(#name, #sql)))
    });
    let model_checks = model.attrs.checks.iter().map(|(name, sql)| {
        let name = name.to_string();
        quote!(#p::CheckConstraint::new(#name, #sql))
    });
    let checks: Vec<_> = field_checks.chain(model_checks).collect();
    let foreign_keys: Vec<_> = model
        .fields
        .iter()
        .filter_map(|f| {
            let target = f.attrs.references.get()?;
            let name = f.attrs.fk_name.get().map_or_else(
                || format!("{table}_{}_fkey", f.column),
                |n| n.to_string(),
            );
            let column = sql_name(model, &f.column);
            let (ref_table, ref_column) = (target.table.to_string(), target.column.to_string());
            let action = syn::Ident::new(
                f.attrs
                    .on_delete
                    .get()
                    .copied()
                    .unwrap_or(crate::attr::OnDeleteAttr::NoAction)
                    .variant(),
                proc_macro2::Span::call_site(),
            );
            Some(quote! {
                #p::ForeignKey::new(#name, #column, #ref_table, #ref_column, #p::ReferentialAction::#action)
            })
        })
        .collect();
    let checks = (!checks.is_empty()).then(|| quote!(.with_checks(&[#(#checks),*])));
    let foreign_keys =
        (!foreign_keys.is_empty()).then(|| quote!(.with_foreign_keys(&[#(#foreign_keys),*])));
    quote!(#checks #foreign_keys)
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
        let eq_value =
            quote!(#d::ExpressionMethods::eq(#column, ::orm::__private::Bound::new(#value)));
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
        let hash = field_hash(&f.ident.to_string());
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

/// A column's SQL name as Diesel knows it (a `#[sql_name]` in a schema.rs table included).
fn sql_name(model: &Model<'_>, column: &syn::Ident) -> TokenStream {
    let path = column_path(model, column);
    quote!(<#path as ::orm::__private::diesel::Column>::NAME)
}

/// Column-name lists of every UNIQUE constraint: field-level `unique`, then `unique(a, b)`.
fn unique_lists(model: &Model<'_>) -> Vec<Vec<TokenStream>> {
    let single = model
        .fields
        .iter()
        .filter(|f| f.attrs.unique.get().is_some())
        .map(|f| vec![sql_name(model, &f.column)]);
    let multi = model
        .attrs
        .unique
        .iter()
        .filter(|l| !l.is_empty())
        .map(|list| {
            list.iter()
                .filter_map(|name| model.field_named(name))
                .map(|f| sql_name(model, &f.column))
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
        if !model.generates_table() {
            // A bound table's SQL type is named by its column's path, which stays the same when
            // schema.rs changes the type; the field's Rust type follows such a change.
            let rust = f.ty();
            let rust: String = quote!(#rust).to_string().split_whitespace().collect();
            text.push_str(&format!(":{rust}"));
        }
    }
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// `Crud<Conn>`: insert, find, update and delete by key on one backend's connection.
fn crud(model: &Model<'_>, backend: Backend) -> TokenStream {
    let ident = model.ident();
    let p = quote!(::orm::__private);
    let conn = connection(backend);
    let (methods, copy_rows) = crud_methods(model, backend);
    quote! {
        #[automatically_derived]
        impl #p::Crud<#conn> for #ident {
            #methods
            #copy_rows
        }
    }
}

/// The connection type of `backend`.
fn connection(backend: Backend) -> TokenStream {
    match backend {
        Backend::Postgres => quote!(::orm::__private::PgConnection),
        Backend::Sqlite => quote!(::orm::__private::SqliteConnection),
    }
}

/// The row operations of `Crud<Conn>` on `backend`, but `copy_rows` (returned apart).
fn crud_methods(model: &Model<'_>, backend: Backend) -> (TokenStream, TokenStream) {
    let module = model.table_module();
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    // The backend is named, never inferred: inference would take the one backend some column
    // type has, where `sqlite_crud_if_supported`'s where-clauses speak of SQLite.
    let (conn, db, bind_limit) = match backend {
        Backend::Postgres => (
            quote!(#p::PgConnection),
            quote!(#p::Pg),
            quote!(#p::POSTGRES_BIND_LIMIT),
        ),
        Backend::Sqlite => (
            quote!(#p::SqliteConnection),
            quote!(#p::Sqlite),
            quote!(#p::SQLITE_BIND_LIMIT),
        ),
    };
    let insert_columns = model
        .fields
        .iter()
        .filter(|f| !f.is_filled_by_database())
        .count();
    let key_columns: Vec<_> = model
        .key_fields()
        .map(|k| column_path(model, &k.column))
        .collect();
    // `RETURNING` the primary key, as `Model::PrimaryKey`.
    let key_target = if let [single] = key_columns.as_slice() {
        quote!(#single)
    } else {
        quote!((#(#key_columns,)*))
    };
    let insert_columns_paths: Vec<_> = model
        .fields
        .iter()
        .filter(|f| !f.is_filled_by_database())
        .map(|f| column_path(model, &f.column))
        .collect();
    let copy = match backend {
        Backend::Postgres => quote! {
            #p::copy_rows::<Self, _, _>(conn, (#(#insert_columns_paths,)*), rows)
        },
        Backend::Sqlite => quote! {
            let _ = (conn, rows);
            ::std::result::Result::Err(#d::result::Error::QueryBuilderError(
                "binary COPY is a PostgreSQL feature".into(),
            ))
        },
    };
    let key_names: Vec<_> = model
        .key_fields()
        .map(|k| sql_name(model, &k.column))
        .collect();
    let insert_names: Vec<_> = model
        .fields
        .iter()
        .filter(|f| !f.is_filled_by_database())
        .map(|f| sql_name(model, &f.column))
        .collect();
    // Multi-row INSERTs sized to the bind limit (orm-core's `insert_batch`).
    let rows_per_statement = quote!({ #p::rows_per_statement(#bind_limit, #insert_columns) });
    let key_sql_type = quote!(<#key_target as #d::Expression>::SqlType);

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
    let patch = if super::patch::patch_fields(model).next().is_some() {
        quote! {
            #d::update(#module::table #(#key_filters)*)
                .set(patch)
                .returning(<Self as #d::SelectableHelper<#db>>::as_returning())
                .get_result(conn)
        }
    } else {
        // The patch struct has no field, so it is always empty and never sent.
        quote! {
            let _ = (conn, key, patch);
            ::std::result::Result::Err(#d::result::Error::QueryBuilderError(
                "a model without columns besides its key has nothing to patch".into(),
            ))
        }
    };
    let update = if model.updated_fields().next().is_some() {
        quote! {
            ::std::option::Option::Some(
                #d::update(#module::table #(#row_filters)*)
                    .set(row)
                    .returning(<Self as #d::SelectableHelper<#db>>::as_returning())
                    .get_result(conn),
            )
        }
    } else {
        quote!(::std::option::Option::None)
    };

    // A table the derive generates has exactly the model's columns, in field order: Diesel's
    // default select clause reads the row as it is, with less work per call than naming them.
    let find_select = (!model.generates_table())
        .then(|| quote!(.select(<Self as #d::SelectableHelper<#db>>::as_select())));
    let methods = quote! {
            fn insert_returning(
                conn: &mut #conn,
                row: &<Self as #p::Model>::New,
            ) -> #d::QueryResult<Self> {
                use #d::prelude::*;
                #d::insert_into(#module::table)
                    .values(row)
                    .returning(<Self as #d::SelectableHelper<#db>>::as_returning())
                    .get_result(conn)
            }

            fn find_by_key(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
            ) -> #d::QueryResult<Self> {
                use #d::prelude::*;
                #module::table #(#key_filters)* #find_select
                    .first(conn)
            }

            fn update_returning(
                conn: &mut #conn,
                row: &Self,
            ) -> ::std::option::Option<#d::QueryResult<Self>> {
                use #d::prelude::*;
                #update
            }

            fn patch_returning(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
                patch: &<Self as #p::Model>::Patch,
            ) -> #d::QueryResult<Self> {
                use #d::prelude::*;
                #patch
            }

            fn insert_batch(
                conn: &mut #conn,
                rows: &[&<Self as #p::Model>::New],
                conflict: &#p::ConflictClause,
                recurring: bool,
            ) -> #d::QueryResult<usize> {
                #p::insert_batch::<Self, #db, _, #rows_per_statement>(
                    conn,
                    &[#(#insert_names),*],
                    rows,
                    conflict,
                    recurring,
                )
            }

            fn insert_batch_returning_keys(
                conn: &mut #conn,
                rows: &[&<Self as #p::Model>::New],
                conflict: &#p::ConflictClause,
                recurring: bool,
            ) -> #d::QueryResult<::std::vec::Vec<<Self as #p::Model>::PrimaryKey>> {
                #p::insert_batch_returning_keys::<Self, #db, _, #key_sql_type, #rows_per_statement>(
                    conn,
                    &[#(#insert_names),*],
                    &[#(#key_names),*],
                    rows,
                    conflict,
                    recurring,
                )
            }

            fn delete_by_key(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
            ) -> #d::QueryResult<usize> {
                use #d::prelude::*;
                #d::delete(#module::table #(#key_filters)*).execute(conn)
            }
    };
    let copy_rows = quote! {
            fn copy_rows<__R>(conn: &mut #conn, rows: __R) -> #d::QueryResult<usize>
            where
                __R: ::std::iter::Iterator,
                __R::Item: ::std::borrow::Borrow<<Self as #p::Model>::New>,
            {
                #copy
            }
    };
    (methods, copy_rows)
}

/// `Crud<Conn>` for a backend the model is not declared for: every operation is an error. The
/// runtime checks `TableMeta::backends` first and never calls these; they exist so that `Model`
/// holds on every compiled-in backend.
fn unsupported_crud(model: &Model<'_>, backend: Backend) -> TokenStream {
    let ident = model.ident();
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    let conn = match backend {
        Backend::Postgres => quote!(#p::PgConnection),
        Backend::Sqlite => quote!(#p::SqliteConnection),
    };
    let message = format!(
        "model `{}` is not declared for {}",
        ident,
        match backend {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        }
    );
    let error =
        quote!(::std::result::Result::Err(#d::result::Error::QueryBuilderError(#message.into())));
    quote! {
        #[automatically_derived]
        impl #p::Crud<#conn> for #ident {
            fn insert_returning(_: &mut #conn, _: &<Self as #p::Model>::New) -> #d::QueryResult<Self> {
                #error
            }
            fn find_by_key(_: &mut #conn, _: &<Self as #p::Model>::PrimaryKey) -> #d::QueryResult<Self> {
                #error
            }
            fn update_returning(_: &mut #conn, _: &Self) -> ::std::option::Option<#d::QueryResult<Self>> {
                ::std::option::Option::Some(#error)
            }
            fn patch_returning(
                _: &mut #conn,
                _: &<Self as #p::Model>::PrimaryKey,
                _: &<Self as #p::Model>::Patch,
            ) -> #d::QueryResult<Self> {
                #error
            }
            fn insert_batch(
                _: &mut #conn,
                _: &[&<Self as #p::Model>::New],
                _: &#p::ConflictClause,
                _: bool,
            ) -> #d::QueryResult<usize> {
                #error
            }
            fn insert_batch_returning_keys(
                _: &mut #conn,
                _: &[&<Self as #p::Model>::New],
                _: &#p::ConflictClause,
                _: bool,
            ) -> #d::QueryResult<::std::vec::Vec<<Self as #p::Model>::PrimaryKey>> {
                #error
            }
            fn copy_rows<__R>(_: &mut #conn, _: __R) -> #d::QueryResult<usize>
            where
                __R: ::std::iter::Iterator,
                __R::Item: ::std::borrow::Borrow<<Self as #p::Model>::New>,
            {
                #error
            }
            fn delete_by_key(_: &mut #conn, _: &<Self as #p::Model>::PrimaryKey) -> #d::QueryResult<usize> {
                #error
            }
        }
    }
}

/// `Crud<SqliteConnection>` for a model whose `table!` decides whether SQLite can serve it.
///
/// The derive cannot see the `table!`'s SQL types, and a `diesel print-schema` table of a
/// PostgreSQL database has types SQLite lacks (`Timestamptz`, `Jsonb`, `Array<…>`, custom
/// types). So the SQLite row operations are generated as an impl of `SqliteCrud` whose
/// where-clauses say what they need: SQLite has each column's SQL type, reads the row as the
/// fields' types, and writes each written field. Each clause is written `for<'__orm_sqlite> …`:
/// Rust refuses a where-clause that names no generic parameter and does not hold, but accepts
/// a higher-ranked one, and the impl then simply does not apply. `Crud<SqliteConnection>` calls
/// the operations through `SqliteSupport::<Model>::OPS`, which is `None` where the clauses do
/// not hold: the table is PostgreSQL-only, `TableMeta::backends` says so, and the runtime
/// answers `Error::WrongBackend` on SQLite without calling these.
fn sqlite_crud_if_supported(model: &Model<'_>) -> TokenStream {
    let ident = model.ident();
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    let conn = connection(Backend::Sqlite);
    let (methods, _) = crud_methods(model, Backend::Sqlite);
    let sql_type = |f: &crate::ast::Field<'_>| {
        let column = column_path(model, &f.column);
        quote!(<#column as #d::Expression>::SqlType)
    };
    let has_types = model.fields.iter().map(|f| {
        let st = sql_type(f);
        quote!(for<'__orm_sqlite> #p::Sqlite: #d::sql_types::HasSqlType<#st>)
    });
    let row_types = model.fields.iter().map(|f| f.ty());
    let row_sql_types = model.fields.iter().map(sql_type);
    let reads = quote! {
        for<'__orm_sqlite> (#(#row_types,)*):
            #d::deserialize::FromStaticSqlRow<(#(#row_sql_types,)*), #p::Sqlite>
    };
    // Written by insert, update or patch, or compared in a key filter.
    let writes = model
        .fields
        .iter()
        .filter(|f| f.is_key() || !f.is_read_only())
        .map(|f| {
            let (ty, st) = (f.ty(), sql_type(f));
            quote!(for<'__orm_sqlite> #ty: #d::serialize::ToSql<#st, #p::Sqlite>)
        });
    let message = format!(
        "model `{ident}` cannot be used on SQLite: its `table!` has a column whose SQL type \
         SQLite does not have"
    );
    let error =
        quote!(::std::result::Result::Err(#d::result::Error::QueryBuilderError(#message.into())));
    let call = |op: TokenStream, args: TokenStream, none: TokenStream| {
        quote! {{
            use #p::NoSqliteSupport as _;
            match #p::SqliteSupport::<Self>::OPS {
                ::std::option::Option::Some(ops) => (ops.#op)(#args),
                ::std::option::Option::None => #none,
            }
        }}
    };
    let insert_returning = call(quote!(insert_returning), quote!(conn, row), error.clone());
    let find_by_key = call(quote!(find_by_key), quote!(conn, key), error.clone());
    let update_returning = call(
        quote!(update_returning),
        quote!(conn, row),
        quote!(::std::option::Option::Some(#error)),
    );
    let patch_returning = call(
        quote!(patch_returning),
        quote!(conn, key, patch),
        error.clone(),
    );
    let insert_batch = call(
        quote!(insert_batch),
        quote!(conn, rows, conflict, recurring),
        error.clone(),
    );
    let insert_batch_returning_keys = call(
        quote!(insert_batch_returning_keys),
        quote!(conn, rows, conflict, recurring),
        error.clone(),
    );
    let delete_by_key = call(quote!(delete_by_key), quote!(conn, key), error);
    quote! {
        #[automatically_derived]
        impl #p::SqliteCrud for #ident
        where
            #(#has_types,)*
            #reads,
            #(#writes,)*
        {
            #methods
        }

        #[automatically_derived]
        impl #p::Crud<#conn> for #ident {
            fn insert_returning(
                conn: &mut #conn,
                row: &<Self as #p::Model>::New,
            ) -> #d::QueryResult<Self> #insert_returning
            fn find_by_key(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
            ) -> #d::QueryResult<Self> #find_by_key
            fn update_returning(
                conn: &mut #conn,
                row: &Self,
            ) -> ::std::option::Option<#d::QueryResult<Self>> #update_returning
            fn patch_returning(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
                patch: &<Self as #p::Model>::Patch,
            ) -> #d::QueryResult<Self> #patch_returning
            fn insert_batch(
                conn: &mut #conn,
                rows: &[&<Self as #p::Model>::New],
                conflict: &#p::ConflictClause,
                recurring: bool,
            ) -> #d::QueryResult<usize> #insert_batch
            fn insert_batch_returning_keys(
                conn: &mut #conn,
                rows: &[&<Self as #p::Model>::New],
                conflict: &#p::ConflictClause,
                recurring: bool,
            ) -> #d::QueryResult<::std::vec::Vec<<Self as #p::Model>::PrimaryKey>>
                #insert_batch_returning_keys
            fn copy_rows<__R>(conn: &mut #conn, rows: __R) -> #d::QueryResult<usize>
            where
                __R: ::std::iter::Iterator,
                __R::Item: ::std::borrow::Borrow<<Self as #p::Model>::New>,
            {
                let _ = (conn, rows);
                ::std::result::Result::Err(#d::result::Error::QueryBuilderError(
                    "binary COPY is a PostgreSQL feature".into(),
                ))
            }
            fn delete_by_key(
                conn: &mut #conn,
                key: &<Self as #p::Model>::PrimaryKey,
            ) -> #d::QueryResult<usize> #delete_by_key
        }
    }
}
