//! Which SQL type a field's Rust type maps to.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{GenericArgument, PathArguments, Type};

/// The types a model field may have without `#[orm(sql_type = …)]`, for error messages.
pub const SUPPORTED: &str = "i16, i32, i64, f32, f64, bool, String, Vec<u8>, \
chrono::DateTime<Utc>, chrono::NaiveDateTime, chrono::NaiveDate, uuid::Uuid, serde_json::Value, \
Vec<T> or Vec<Option<T>> of any of them (an array), or Option<T> of any of them";

/// If `ty` is `Option<T>`, returns `T`.
pub fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    let std_path = p.path.segments.len() == 1
        || p.path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect::<Vec<_>>()
            .join("::")
            .ends_with("option::Option");
    if last.ident != "Option" || !std_path {
        return None;
    }
    single_generic(&last.arguments)
}

fn single_generic(args: &PathArguments) -> Option<&Type> {
    let PathArguments::AngleBracketed(a) = args else {
        return None;
    };
    match (a.args.len(), a.args.first()) {
        (1, Some(GenericArgument::Type(t))) => Some(t),
        _ => None,
    }
}

/// The SQL type (a path) for a non-`Option` Rust type, if `orm` knows it.
///
/// A type is recognised by its last path segment, so `Uuid`, `uuid::Uuid` and `::uuid::Uuid`
/// (or `Value` after `use serde_json::Value;`) are the same to the derive, however they were
/// imported. Primitive integers, floats and `bool` must be written bare.
pub fn sql_type_for(ty: &Type) -> Option<TokenStream> {
    let (name, args, segments) = last_segment(ty)?;
    let plain = matches!(args, PathArguments::None);
    let diesel = |t: TokenStream| quote!(::orm::__private::diesel::sql_types::#t);
    let ours = |t: TokenStream| quote!(::orm::__private::sql_types::#t);
    Some(match name.as_str() {
        "i16" if segments == 1 => diesel(quote!(SmallInt)),
        "i32" if segments == 1 => diesel(quote!(Integer)),
        "i64" if segments == 1 => diesel(quote!(BigInt)),
        "f32" if segments == 1 => diesel(quote!(Float)),
        "f64" if segments == 1 => diesel(quote!(Double)),
        "bool" if segments == 1 => diesel(quote!(Bool)),
        "String" if plain => diesel(quote!(Text)),
        "Vec" => match single_generic(args)? {
            Type::Path(i) if i.qself.is_none() && i.path.is_ident("u8") => diesel(quote!(Binary)),
            element => array_of(element)?,
        },
        "NaiveDateTime" if plain => diesel(quote!(Timestamp)),
        "NaiveDate" if plain => diesel(quote!(Date)),
        "DateTime" if is_utc(single_generic(args)?) => ours(quote!(Timestamptz)),
        "Uuid" if plain => ours(quote!(Uuid)),
        "Value" | "JsonValue" if plain => ours(quote!(Json)),
        "PgInterval" if plain => diesel(quote!(Interval)),
        "BigDecimal" if plain && cfg!(feature = "numeric") => ours(quote!(Numeric)),
        "IpNetwork" if plain && cfg!(feature = "network-address") => diesel(quote!(Inet)),
        _ => return None,
    })
}

/// The SQL type of a `#[orm(db_enum)]` field's (non-`Option`) type: `Enum<T>` for an enum
/// `T`, `Array<Enum<T>>` for `Vec<T>` (`Array<Nullable<Enum<T>>>` for `Vec<Option<T>>`).
/// `None` when `ty` is not a plain path to a type of the user's.
pub fn db_enum_sql_type(ty: &Type) -> Option<TokenStream> {
    let enum_of = |t: &Type| -> Option<TokenStream> {
        let (name, _, _) = last_segment(t)?;
        (segments_are_plain(t) && !is_known_unsupported(&name) && sql_type_for(t).is_none())
            .then(|| quote!(::orm::__private::sql_types::Enum<#t>))
    };
    if let Some(st) = enum_of(ty) {
        return Some(st);
    }
    let (name, args, _) = last_segment(ty)?;
    if name != "Vec" {
        return None;
    }
    let element = single_generic(args)?;
    let st = match option_inner(element) {
        Some(inner) => {
            let st = enum_of(inner)?;
            quote!(::orm::__private::diesel::sql_types::Nullable<#st>)
        }
        None => enum_of(element)?,
    };
    Some(quote!(::orm::__private::sql_types::Array<#st>))
}

/// `Array<ST>` for a `Vec` of `element` (`Array<Nullable<ST>>` for `Vec<Option<T>>`), when the
/// element is a scalar `orm` maps: arrays are one-dimensional.
fn array_of(element: &Type) -> Option<TokenStream> {
    let (inner, nullable) = match option_inner(element) {
        Some(inner) => (inner, true),
        None => (element, false),
    };
    if is_array(inner) {
        return None;
    }
    let st = sql_type_for(inner)?;
    let st = if nullable {
        quote!(::orm::__private::diesel::sql_types::Nullable<#st>)
    } else {
        st
    };
    Some(quote!(::orm::__private::sql_types::Array<#st>))
}

/// Whether `ty` is a `Vec` other than `Vec<u8>`, which would be an array.
fn is_array(ty: &Type) -> bool {
    match last_segment(ty) {
        Some((name, args, _)) if name == "Vec" => !matches!(
            single_generic(args),
            Some(Type::Path(i)) if i.qself.is_none() && i.path.is_ident("u8")
        ),
        _ => false,
    }
}

/// Whether a PostgreSQL-only Rust type: a model with such a field is declared
/// `#[orm(backend = postgres)]`.
pub fn is_postgres_only(ty: &Type) -> bool {
    let ty = option_inner(ty).unwrap_or(ty);
    matches!(
        last_segment(ty),
        Some((name, PathArguments::None, _)) if name == "PgInterval" || name == "IpNetwork"
    )
}

/// Names of standard types a column cannot store as they are, which cannot be a `DbEnum`.
fn is_known_unsupported(name: &str) -> bool {
    matches!(
        name,
        "u8" | "i8"
            | "u16"
            | "u32"
            | "u64"
            | "usize"
            | "isize"
            | "u128"
            | "i128"
            | "char"
            | "str"
            | "DateTime"
            | "Utc"
            | "Local"
            | "Vec"
            | "Box"
            | "Cow"
            | "Rc"
            | "Arc"
            | "HashMap"
            | "BTreeMap"
            | "HashSet"
            | "BTreeSet"
            | "Option"
    )
}

/// A path with no generic arguments on any segment (`Mood`, `crate::types::Mood`).
fn segments_are_plain(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.iter().all(|s| matches!(s.arguments, PathArguments::None)))
}

/// Whether a value of the non-`Option` type `ty` may be one some backend does not store
/// exactly (NaN or `-0.0` on SQLite, a NUL character on PostgreSQL), so that writes check it:
/// `f32`, `f64`, `String` and `serde_json::Value`, recognised as [`sql_type_for`] does.
pub fn needs_value_check(ty: &Type) -> bool {
    let Some((name, args, segments)) = last_segment(ty) else {
        return false;
    };
    let plain = matches!(args, PathArguments::None);
    match name.as_str() {
        "f32" | "f64" => segments == 1,
        "String" | "Value" | "JsonValue" => plain,
        // An array's elements are checked one by one.
        "Vec" => match single_generic(args) {
            Some(element) => {
                let element = option_inner(element).unwrap_or(element);
                !is_array(element) && needs_value_check(element)
            }
            None => false,
        },
        _ => false,
    }
}

/// Whether `ty` (a non-`Option` type) is `String`, the one type `#[orm(length = n)]` limits.
pub fn is_string(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((name, PathArguments::None, _)) if name == "String")
}

/// The last segment of a plain type path: its name, its generic arguments and how many
/// segments the path has.
fn last_segment(ty: &Type) -> Option<(String, &PathArguments, usize)> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let last = p.path.segments.last()?;
    Some((
        last.ident.to_string(),
        &last.arguments,
        p.path.segments.len(),
    ))
}

/// `Utc`, `chrono::Utc`, …
fn is_utc(ty: &Type) -> bool {
    matches!(last_segment(ty), Some((name, PathArguments::None, _)) if name == "Utc")
}

/// For a type `orm` does not map, the advice that fits it: the supported type to use instead,
/// or how to name an SQL type for it.
pub fn unsupported_advice(ty: &Type) -> String {
    let custom = "to store another type, name its Diesel SQL type (one with `ToSql` and \
`FromSql` impls for PostgreSQL and SQLite): `#[orm(sql_type = path::to::SqlType)]`";
    let Some((name, _, _)) = last_segment(ty) else {
        return match ty {
            Type::Reference(_) => {
                "a model owns its values: use `String` for text, `Vec<u8>` for bytes".to_owned()
            }
            _ => format!("{custom}; supported without it: {SUPPORTED}"),
        };
    };
    let instead = match name.as_str() {
        "u8" | "i8" => Some("`i16`".to_owned()),
        "u16" => Some("`i32`".to_owned()),
        "u32" => Some("`i64`".to_owned()),
        "u64" | "usize" | "isize" | "u128" | "i128" => Some(
            "`i64` (SQL has no unsigned or 128-bit integer column on both backends)".to_owned(),
        ),
        "DateTime" => Some(
            "`DateTime<Utc>` (convert with `.with_timezone(&Utc)`; stored as `timestamptz` \
             on PostgreSQL)"
                .to_owned(),
        ),
        "Vec" => Some(
            "`Vec<T>` or `Vec<Option<T>>` of a supported scalar (a one-dimensional array), \
             `Vec<u8>` for bytes, or `serde_json::Value` for nested lists stored as JSON"
                .to_owned(),
        ),
        "str" | "Box" | "Cow" | "Rc" | "Arc" => {
            Some("`String` (or `Vec<u8>` for bytes)".to_owned())
        }
        "BigDecimal" => Some(
            "it with `orm`'s `numeric` feature on (`orm = { features = [\"numeric\"] }`)"
                .to_owned(),
        ),
        "IpNetwork" => Some(
            "it with `orm`'s `network-address` feature on \
             (`orm = { features = [\"network-address\"] }`)"
                .to_owned(),
        ),
        "HashMap" | "BTreeMap" | "HashSet" | "BTreeSet" => {
            Some("`serde_json::Value`, stored as JSON".to_owned())
        }
        _ => None,
    };
    match instead {
        Some(instead) => format!("use {instead}; {custom}"),
        None => format!(
            "for a `#[derive(orm::DbEnum)]` enum, mark the field `#[orm(db_enum)]`; \
             supported: {SUPPORTED}; {custom}"
        ),
    }
}

/// Whether `ty` is a Rust integer type a database can generate (identity / rowid).
pub fn is_integer(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if ["i16", "i32", "i64"].iter().any(|i| p.path.is_ident(i)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(src: &str) -> Option<String> {
        let ty: Type = syn::parse_str(src).unwrap();
        sql_type_for(&ty).map(|t| t.to_string().replace(' ', ""))
    }

    #[test]
    fn maps_supported_types() {
        assert_eq!(
            map("i64").unwrap(),
            "::orm::__private::diesel::sql_types::BigInt"
        );
        assert_eq!(
            map("Vec<u8>").unwrap(),
            "::orm::__private::diesel::sql_types::Binary"
        );
        assert_eq!(
            map("chrono::DateTime<chrono::Utc>").unwrap(),
            "::orm::__private::sql_types::Timestamptz"
        );
        assert_eq!(
            map("DateTime<Utc>").unwrap(),
            "::orm::__private::sql_types::Timestamptz"
        );
        assert_eq!(
            map("serde_json::Value").unwrap(),
            "::orm::__private::sql_types::Json"
        );
        assert_eq!(
            map("uuid::Uuid").unwrap(),
            "::orm::__private::sql_types::Uuid"
        );
    }

    #[test]
    fn rejects_unknown_types() {
        for t in [
            "u64",
            "Vec<Vec<String>>",
            "Vec<HashMap<String, i32>>",
            "DateTime<Local>",
            "Value<T>",
            "HashMap<String, i32>",
            "std::primitive::u8",
        ] {
            assert!(map(t).is_none(), "{t}");
        }
    }

    #[test]
    fn maps_arrays_of_scalars() {
        assert_eq!(
            map("Vec<String>").unwrap(),
            "::orm::__private::sql_types::Array<::orm::__private::diesel::sql_types::Text>"
        );
        assert_eq!(
            map("Vec<Option<i64>>").unwrap(),
            "::orm::__private::sql_types::Array<::orm::__private::diesel::sql_types::Nullable<::orm::__private::diesel::sql_types::BigInt>>"
        );
        assert_eq!(
            map("Vec<Vec<u8>>").unwrap(),
            "::orm::__private::sql_types::Array<::orm::__private::diesel::sql_types::Binary>"
        );
        assert!(map("Vec<Vec<i32>>").is_none());
    }

    #[test]
    fn db_enum_fields_map_to_enum_types() {
        let map = |src: &str| {
            db_enum_sql_type(&syn::parse_str(src).unwrap()).map(|t| t.to_string().replace(' ', ""))
        };
        assert_eq!(
            map("crate::Mood").unwrap(),
            "::orm::__private::sql_types::Enum<crate::Mood>"
        );
        assert_eq!(
            map("Vec<Option<Mood>>").unwrap(),
            "::orm::__private::sql_types::Array<::orm::__private::diesel::sql_types::Nullable<::orm::__private::sql_types::Enum<Mood>>>"
        );
        for not_an_enum in [
            "Wrapper<T>",
            "String",
            "Vec<String>",
            "u64",
            "Vec<Vec<Mood>>",
        ] {
            assert!(map(not_an_enum).is_none(), "{not_an_enum}");
        }
        // Without the attribute, such a type is unknown.
        assert!(sql_type_for(&syn::parse_str("Mood").unwrap()).is_none());
    }

    #[test]
    fn recognises_types_however_imported() {
        for (a, b) in [
            ("Value", "serde_json::Value"),
            ("::serde_json::Value", "serde_json::Value"),
            ("Uuid", "::uuid::Uuid"),
            ("DateTime<Utc>", "::chrono::DateTime<::chrono::Utc>"),
            ("NaiveDateTime", "chrono::naive::NaiveDateTime"),
            ("NaiveDate", "::chrono::NaiveDate"),
            ("String", "std::string::String"),
            ("Vec<u8>", "::std::vec::Vec<u8>"),
        ] {
            assert_eq!(map(a), map(b), "{a} / {b}");
            assert!(map(a).is_some(), "{a}");
        }
    }

    #[test]
    fn advice_fits_the_type() {
        let advice = |src: &str| unsupported_advice(&syn::parse_str(src).unwrap());
        assert!(advice("u64").starts_with("use `i64`"));
        assert!(advice("DateTime<Local>").starts_with("use `DateTime<Utc>`"));
        assert!(advice("Vec<Vec<String>>").contains("serde_json::Value"));
        assert!(advice("MyType").contains("sql_type = path::to::SqlType"));
        assert!(!advice("MyType").contains("Text"));
    }

    #[test]
    fn value_checks_only_where_a_value_can_be_refused() {
        let checked = |src: &str| needs_value_check(&syn::parse_str(src).unwrap());
        for t in [
            "f32",
            "f64",
            "String",
            "std::string::String",
            "serde_json::Value",
            "Value",
        ] {
            assert!(checked(t), "{t}");
            assert!(map(t).is_some(), "{t}");
        }
        for t in ["Vec<f64>", "Vec<Option<String>>", "Vec<serde_json::Value>"] {
            assert!(checked(t), "{t}");
        }
        for t in [
            "i64",
            "bool",
            "Vec<i64>",
            "Vec<u8>",
            "uuid::Uuid",
            "DateTime<Utc>",
            "MyType",
        ] {
            assert!(!checked(t), "{t}");
        }
    }

    #[test]
    fn unwraps_option() {
        let ty: Type = syn::parse_str("Option<String>").unwrap();
        assert!(option_inner(&ty).is_some());
        let ty: Type = syn::parse_str("std::option::Option<String>").unwrap();
        assert!(option_inner(&ty).is_some());
        let ty: Type = syn::parse_str("my::Option<String>").unwrap();
        assert!(option_inner(&ty).is_none());
    }
}
