//! `#[derive(DbEnum)]`: a fieldless Rust enum stored as a database enum. Parse → check →
//! expand, in one file: the input is one enum and a few attributes.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, LitStr};

use crate::ast::{snake_case, Backend};
use crate::ctxt::Ctxt;

/// The enum as read from its input.
struct DbEnum<'a> {
    ident: &'a Ident,
    /// The PostgreSQL type name.
    type_name: String,
    /// Where the type name was given (`pg_type = "…"`), else the enum's name.
    type_name_span: Span,
    /// More SQL types the enum reads and writes on PostgreSQL, such as the one `diesel
    /// print-schema` declares for the type in `schema.rs`.
    sql_types: Vec<syn::Type>,
    /// Each variant with its label, in declaration order.
    variants: Vec<(&'a Ident, LitStr)>,
}

/// `#[derive(DbEnum)]`.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::default();
    let parsed = parse(&cx, input);
    if let Some(parsed) = &parsed {
        check(&cx, parsed);
    }
    match (cx.check(), parsed) {
        (Ok(()), Some(parsed)) => expand(&parsed),
        (Err(errors), _) => errors.to_compile_error(),
        (Ok(()), None) => unreachable!("a failed parse records an error"),
    }
}

fn parse<'a>(cx: &Ctxt, input: &'a DeriveInput) -> Option<DbEnum<'a>> {
    let mut type_name: Option<LitStr> = None;
    let mut sql_types = Vec::new();
    for attr in orm_attrs(&input.attrs) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("pg_type") {
                let name: LitStr = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "give the PostgreSQL type name as a string: `pg_type = \"mood\"`",
                    )
                })?;
                if type_name.replace(name).is_some() {
                    return Err(meta.error("duplicate `#[orm(pg_type)]` attribute"));
                }
            } else if meta.path.is_ident("sql_type") {
                let value = meta.value()?;
                if value.peek(LitStr) {
                    let lit: LitStr = value.parse()?;
                    return Err(syn::Error::new(
                        lit.span(),
                        "give the SQL type as a type, not a string: \
                         `sql_type = crate::schema::sql_types::Mood`",
                    ));
                }
                sql_types.push(value.parse()?);
            } else if meta.path.is_ident("crate") {
                // Read by `crate_path::find`, which reports its mistakes.
                crate::crate_path::skip_value(&meta)?;
            } else {
                return Err(meta.error(
                    "unknown `orm` attribute on a `DbEnum`; expected `pg_type = \"name\"` or \
                     `sql_type = path::to::SqlType` (the type `diesel print-schema` wrote)",
                ));
            }
            Ok(())
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    let data = match &input.data {
        Data::Enum(data) => data,
        Data::Struct(s) => {
            cx.error_spanned_by(
                s.struct_token,
                "`#[derive(DbEnum)]` is for a fieldless enum (`enum Mood { Happy, Sad }`); \
                 a struct is stored with `#[derive(Model)]` or a custom `sql_type`",
            );
            return None;
        }
        Data::Union(u) => {
            cx.error_spanned_by(u.union_token, "`#[derive(DbEnum)]` is for a fieldless enum");
            return None;
        }
    };
    let mut variants = Vec::new();
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            cx.error_spanned_by(
                &variant.fields,
                format!(
                    "a database enum stores one label per variant, with no data; `{}` has fields: \
                     make it a unit variant, or store the value as JSON (`serde_json::Value`)",
                    variant.ident
                ),
            );
            continue;
        }
        let label = variant_label(cx, &variant.attrs).unwrap_or_else(|| {
            LitStr::new(
                &snake_case(&variant.ident.to_string()),
                variant.ident.span(),
            )
        });
        variants.push((&variant.ident, label));
    }
    let type_name_span = type_name.as_ref().map_or(input.ident.span(), |n| n.span());
    let type_name = type_name
        .map(|n| n.value())
        .unwrap_or_else(|| snake_case(&input.ident.to_string()));
    Some(DbEnum {
        ident: &input.ident,
        type_name,
        type_name_span,
        sql_types,
        variants,
    })
}

/// `#[orm(rename = "label")]` on a variant.
fn variant_label(cx: &Ctxt, attrs: &[Attribute]) -> Option<LitStr> {
    let mut label = None;
    for attr in orm_attrs(attrs) {
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                let lit: LitStr = meta.value()?.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "give the label as a string: `#[orm(rename = \"very_happy\")]`",
                    )
                })?;
                if label.replace(lit).is_some() {
                    return Err(meta.error("duplicate `#[orm(rename)]` attribute"));
                }
                Ok(())
            } else {
                Err(meta
                    .error("unknown `orm` attribute on a variant; expected `rename = \"label\"`"))
            }
        });
        if let Err(e) = result {
            cx.syn_error(e);
        }
    }
    label
}

fn orm_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("orm"))
}

/// Labels are unique and non-empty, there is at least one, and the type name is one
/// PostgreSQL takes unquoted (an optional schema, then a lowercase identifier).
fn check(cx: &Ctxt, e: &DbEnum<'_>) {
    if e.variants.is_empty() {
        cx.error_spanned_by(
            e.ident,
            "a database enum needs at least one variant: `enum Mood { Happy, Sad }`",
        );
    }
    for (i, (_, label)) in e.variants.iter().enumerate() {
        let text = label.value();
        if text.is_empty() || text.len() > 63 {
            cx.error_spanned_by(
                label,
                "an enum label has 1 to 63 bytes (PostgreSQL's limit)",
            );
        } else if let Some((first, _)) = e.variants[..i].iter().find(|(_, l)| l.value() == text) {
            cx.error_spanned_by(
                label,
                format!(
                    "label `{text}` is already the label of `{first}`; give one of them another \
                     with `#[orm(rename = \"…\")]`"
                ),
            );
        }
    }
    let plain = |part: &str| {
        !part.is_empty()
            && part.len() <= 63
            && part.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    let ok = match e.type_name.split_once('.') {
        Some((schema, name)) => plain(schema) && plain(name),
        None => plain(&e.type_name),
    };
    if !ok {
        cx.syn_error(syn::Error::new(
            e.type_name_span,
            format!(
                "`{}` is not a type name `orm` can write unquoted; use lowercase letters, digits \
                 and `_`, optionally after a schema: `pg_type = \"mood\"`, `pg_type = \"app.mood\"`",
                e.type_name
            ),
        ));
    }
}

fn expand(e: &DbEnum<'_>) -> TokenStream {
    // `Enum<Self>`, then the user's own SQL types (`sql_type = …`).
    let own = own_sql_type(e);
    let mut sql_types = vec![own.clone()];
    sql_types.extend(e.sql_types.iter().map(|t| quote!(#t)));

    let db_enum = db_enum_impl(e);
    let queryable = queryable_impl(e);
    let postgres = Backend::Postgres.is_enabled().then(|| {
        sql_types
            .iter()
            .map(|st| postgres_impls(e, st))
            .collect::<TokenStream>()
    });
    let sqlite = Backend::Sqlite.is_enabled().then(|| sqlite_impls(e, &own));
    let as_expression = sql_types.iter().map(|st| as_expression_impls(e, st));
    let ddl = e.sql_types.iter().map(|st| ddl_impl(e, st));
    crate::expand::lint_allowed(quote! {
        #db_enum
        #queryable
        #postgres
        #sqlite
        #(#as_expression)*
        #(#ddl)*
    })
}

/// `orm::sql_types::Enum<Self>`.
fn own_sql_type(e: &DbEnum<'_>) -> TokenStream {
    let ident = e.ident;
    quote!(::orm::__private::sql_types::Enum<#ident>)
}

/// `DbEnum`: the type's name and labels, and the variant ↔ label mapping.
fn db_enum_impl(e: &DbEnum<'_>) -> TokenStream {
    let (ident, type_name) = (e.ident, &e.type_name);
    let p = quote!(::orm::__private);
    let idents: Vec<_> = e.variants.iter().map(|(i, _)| *i).collect();
    let labels: Vec<_> = e.variants.iter().map(|(_, l)| l).collect();
    quote! {
        #[automatically_derived]
        impl #p::sql_types::DbEnum for #ident {
            const TYPE: &'static #p::EnumType =
                &#p::EnumType::new(#type_name, &[#(#labels),*]);

            fn label(&self) -> &'static str {
                match self {
                    #(Self::#idents => #labels,)*
                }
            }

            fn from_label(label: &str) -> ::std::option::Option<Self> {
                match label {
                    #(#labels => ::std::option::Option::Some(Self::#idents),)*
                    _ => ::std::option::Option::None,
                }
            }
        }
    }
}

/// Diesel's `Queryable` from any single-value SQL type the enum reads (what Diesel's
/// `#[derive(FromSqlRow)]` writes).
fn queryable_impl(e: &DbEnum<'_>) -> TokenStream {
    let ident = e.ident;
    let d = quote!(::orm::__private::diesel);
    quote! {
        #[automatically_derived]
        impl<__DB, __ST> #d::deserialize::Queryable<__ST, __DB> for #ident
        where
            __DB: #d::backend::Backend,
            __ST: #d::sql_types::SingleValue,
            Self: #d::deserialize::FromSql<__ST, __DB>,
        {
            type Row = Self;
            fn build(row: Self) -> #d::deserialize::Result<Self> {
                ::std::result::Result::Ok(row)
            }
        }
    }
}

/// `ToSql`/`FromSql` for PostgreSQL: an enum value's binary form is its label's bytes.
fn postgres_impls(e: &DbEnum<'_>, st: &TokenStream) -> TokenStream {
    let ident = e.ident;
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    quote! {
        #[automatically_derived]
        impl #d::serialize::ToSql<#st, #p::Pg> for #ident {
            fn to_sql<'__b>(
                &'__b self,
                out: &mut #d::serialize::Output<'__b, '_, #p::Pg>,
            ) -> #d::serialize::Result {
                ::std::io::Write::write_all(out, #p::sql_types::DbEnum::label(self).as_bytes())?;
                ::std::result::Result::Ok(#d::serialize::IsNull::No)
            }
        }

        #[automatically_derived]
        impl #d::deserialize::FromSql<#st, #p::Pg> for #ident {
            fn from_sql(value: #d::pg::PgValue<'_>) -> #d::deserialize::Result<Self> {
                #p::sql_types::enum_from_bytes(value.as_bytes())
            }
        }
    }
}

/// `ToSql`/`FromSql` for SQLite, for `Enum<Self>` only: the label as text.
fn sqlite_impls(e: &DbEnum<'_>, own: &TokenStream) -> TokenStream {
    let ident = e.ident;
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    quote! {
        #[automatically_derived]
        impl #d::serialize::ToSql<#own, #p::Sqlite> for #ident {
            fn to_sql<'__b>(
                &'__b self,
                out: &mut #d::serialize::Output<'__b, '_, #p::Sqlite>,
            ) -> #d::serialize::Result {
                out.set_value(#p::sql_types::DbEnum::label(self));
                ::std::result::Result::Ok(#d::serialize::IsNull::No)
            }
        }

        #[automatically_derived]
        impl #d::deserialize::FromSql<#own, #p::Sqlite> for #ident {
            fn from_sql(
                value: #d::sqlite::SqliteValue<'_, '_, '_>,
            ) -> #d::deserialize::Result<Self> {
                let text = <::std::string::String as #d::deserialize::FromSql<
                    #d::sql_types::Text,
                    #p::Sqlite,
                >>::from_sql(value)?;
                #p::sql_types::enum_from_bytes(text.as_bytes())
            }
        }
    }
}

/// `AsExpression` for the enum and a reference to it, nullable or not, so the Diesel DSL
/// compares a column with a variant: `tickets::state.eq(TicketState::Open)`.
fn as_expression_impls(e: &DbEnum<'_>, st: &TokenStream) -> TokenStream {
    let ident = e.ident;
    let p = quote!(::orm::__private);
    let d = quote!(#p::diesel);
    let nullable = quote!(#d::sql_types::Nullable<#st>);
    let impls = [st, &nullable].into_iter().map(|st| {
        quote! {
            #[automatically_derived]
            impl #d::expression::AsExpression<#st> for #ident {
                type Expression = #p::Bound<#st, Self>;
                fn as_expression(self) -> Self::Expression {
                    #p::Bound::new(self)
                }
            }
            #[automatically_derived]
            impl<'__e> #d::expression::AsExpression<#st> for &'__e #ident {
                type Expression = #p::Bound<#st, Self>;
                fn as_expression(self) -> Self::Expression {
                    #p::Bound::new(self)
                }
            }
        }
    });
    quote! {
        #(#impls)*

        #[automatically_derived]
        impl<__DB> #d::serialize::ToSql<#nullable, __DB> for #ident
        where
            __DB: #d::backend::Backend,
            Self: #d::serialize::ToSql<#st, __DB>,
        {
            fn to_sql<'__b>(
                &'__b self,
                out: &mut #d::serialize::Output<'__b, '_, __DB>,
            ) -> #d::serialize::Result {
                #d::serialize::ToSql::<#st, __DB>::to_sql(self, out)
            }
        }
    }
}

/// `DdlType` for a user's own SQL type (from `schema.rs`): it is local to the user's crate, so
/// this impl is theirs to have, and gives the table's DDL the enum type.
fn ddl_impl(e: &DbEnum<'_>, st: &syn::Type) -> TokenStream {
    let (ident, type_name) = (e.ident, &e.type_name);
    let p = quote!(::orm::__private);
    quote! {
        #[automatically_derived]
        impl #p::sql_types::DdlType for #st {
            const POSTGRES: &'static str = #type_name;
            const SQLITE: &'static str = "TEXT";
            const ENUM: ::std::option::Option<&'static #p::EnumType> =
                ::std::option::Option::Some(<#ident as #p::sql_types::DbEnum>::TYPE);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: DeriveInput) -> Result<(String, Vec<String>), String> {
        let cx = Ctxt::default();
        let parsed = parse(&cx, &input);
        if let Some(p) = &parsed {
            check(&cx, p);
        }
        cx.check().map_err(|e| e.to_string())?;
        let p = parsed.unwrap();
        Ok((
            p.type_name,
            p.variants.iter().map(|(_, l)| l.value()).collect(),
        ))
    }

    #[test]
    fn names_the_type_and_labels_in_snake_case() {
        let got = read(syn::parse_quote! {
            enum TicketState { Open, InReview, #[orm(rename = "done!")] Closed }
        });
        assert_eq!(
            got.unwrap(),
            (
                "ticket_state".to_owned(),
                vec!["open".into(), "in_review".into(), "done!".into()]
            )
        );
        let got = read(syn::parse_quote! {
            #[orm(pg_type = "app.state")]
            enum State { A }
        });
        assert_eq!(got.unwrap().0, "app.state");
    }

    #[test]
    fn refuses_what_cannot_be_an_enum_type() {
        let err = |input: DeriveInput| read(input).unwrap_err();
        assert!(err(syn::parse_quote!(
            struct S;
        ))
        .contains("fieldless enum"));
        assert!(err(syn::parse_quote!(
            enum E {
                A(i32),
            }
        ))
        .contains("no data"));
        assert!(err(syn::parse_quote!(
            enum E {}
        ))
        .contains("at least one variant"));
        assert!(err(syn::parse_quote!(
            enum E {
                A,
                #[orm(rename = "a")]
                B,
            }
        ))
        .contains("already"));
        assert!(err(syn::parse_quote!(
            #[orm(pg_type = "Mood")]
            enum E {
                A,
            }
        ))
        .contains("lowercase"));
    }
}
