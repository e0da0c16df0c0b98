//! Which SQL type a field's Rust type maps to.

use proc_macro2::TokenStream;
use quote::quote;
use syn::{GenericArgument, PathArguments, Type};

/// The types a model field may have without `#[orm(sql_type = …)]`, for error messages.
pub const SUPPORTED: &str = "i16, i32, i64, f32, f64, bool, String, Vec<u8>, \
chrono::DateTime<Utc>, chrono::NaiveDateTime, chrono::NaiveDate, uuid::Uuid, serde_json::Value, \
or Option<T> of any of them";

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
pub fn sql_type_for(ty: &Type) -> Option<TokenStream> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let segs: Vec<String> = p
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let last = p.path.segments.last()?;
    let name = segs.last()?.as_str();
    let prefix = &segs[..segs.len() - 1];
    let under = |allowed: &[&str]| {
        prefix.is_empty() || prefix.iter().all(|s| allowed.contains(&s.as_str()))
    };
    let plain = |args: &PathArguments| matches!(args, PathArguments::None);
    let diesel = |t: TokenStream| quote!(::orm::__private::diesel::sql_types::#t);
    let ours = |t: TokenStream| quote!(::orm::__private::sql_types::#t);
    Some(match name {
        "i16" if segs.len() == 1 => diesel(quote!(SmallInt)),
        "i32" if segs.len() == 1 => diesel(quote!(Integer)),
        "i64" if segs.len() == 1 => diesel(quote!(BigInt)),
        "f32" if segs.len() == 1 => diesel(quote!(Float)),
        "f64" if segs.len() == 1 => diesel(quote!(Double)),
        "bool" if segs.len() == 1 => diesel(quote!(Bool)),
        "String" if under(&["std", "string", "alloc"]) && plain(&last.arguments) => {
            diesel(quote!(Text))
        }
        "Vec" if under(&["std", "vec", "alloc"]) => {
            let inner = single_generic(&last.arguments)?;
            match inner {
                Type::Path(i) if i.qself.is_none() && i.path.is_ident("u8") => {
                    diesel(quote!(Binary))
                }
                _ => return None,
            }
        }
        "NaiveDateTime" if under(&["chrono", "naive"]) => diesel(quote!(Timestamp)),
        "NaiveDate" if under(&["chrono", "naive"]) => diesel(quote!(Date)),
        "DateTime" if under(&["chrono"]) => {
            let tz = single_generic(&last.arguments)?;
            match tz {
                Type::Path(t) if t.path.segments.last().is_some_and(|s| s.ident == "Utc") => {
                    ours(quote!(Timestamptz))
                }
                _ => return None,
            }
        }
        "Uuid" if under(&["uuid"]) => ours(quote!(Uuid)),
        "Value" if prefix.len() == 1 && prefix[0] == "serde_json" => ours(quote!(Json)),
        "JsonValue" if segs.len() == 1 => ours(quote!(Json)),
        _ => return None,
    })
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
            "Vec<String>",
            "DateTime<Local>",
            "Value",
            "HashMap<String, i32>",
            "my::String",
        ] {
            assert!(map(t).is_none(), "{t}");
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
