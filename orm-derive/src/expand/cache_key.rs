//! Caching: `CacheRow` for the model and each partial (stored with the cache's compact codec
//! through private row structs, so the user's own serde derives, if any, are untouched), the
//! `cache_key` constructor, and the model's `cache(ttl = …)` in its metadata.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Field, Model};
use crate::attr::PartialAttr;

/// `impl CacheRow` for the model's rows (a table's or a materialized view's).
pub fn expand_rows(model: &Model<'_>) -> TokenStream {
    let fields: Vec<&Field<'_>> = model.fields.iter().collect();
    let shape = quote!(<Self as ::orm::__private::ReadModel>::TABLE.fingerprint);
    if cacheable(model, &fields) {
        cache_row(model.ident(), &fields, shape)
    } else {
        quote!()
    }
}

/// `impl CacheRow for Model` and `Model::cache_key`.
pub fn expand_model(model: &Model<'_>) -> TokenStream {
    let ident = model.ident();
    let row = expand_rows(model);
    quote! {
        #row

        #[automatically_derived]
        impl #ident {
            /// The cache key of the row with primary key `key`: the key a cached
            /// `find::<Self>(key)` stores under, `orm:{table}:{fingerprint}:{hash}`.
            pub fn cache_key(
                key: &<Self as ::orm::__private::Model>::PrimaryKey,
            ) -> ::orm::__private::CacheKey {
                ::orm::__private::CacheKey::for_row::<Self>(key)
            }
        }
    }
}

/// `impl CacheRow` for one partial struct.
pub fn expand_partial(model: &Model<'_>, partial: &PartialAttr) -> TokenStream {
    let fields: Vec<&Field<'_>> = partial
        .columns
        .iter()
        .filter_map(|c| model.field_named(c))
        .collect();
    if !cacheable(model, &fields) {
        return quote!();
    }
    let ident = model.ident();
    let names: Vec<String> = fields.iter().map(|f| f.ident.to_string()).collect();
    let salt =
        xxhash_rust::xxh3::xxh3_64(format!("{}:{}", partial.name, names.join(",")).as_bytes());
    let shape = quote!(::orm::__private::cache::mix_shape(
        <#ident as ::orm::__private::ReadModel>::TABLE.fingerprint,
        #salt,
    ));
    cache_row(&partial.name, &fields, shape)
}

/// Whether to store rows of `fields` in the cache: always when the model says `cache`, else
/// only when every field is of a type `orm` maps itself (all of which serde can store). A
/// field of the user's own type (`sql_type = …`) may not implement serde, and the derive must
/// not make a model that compiled stop compiling; such a model opts in with `#[orm(cache)]`.
fn cacheable(model: &Model<'_>, fields: &[&Field<'_>]) -> bool {
    model.attrs.cache.get().is_some() || fields.iter().all(|f| is_mapped_type(f))
}

/// The SQL types `orm` maps from Rust types it knows, whose Rust types all implement serde.
const SERDE_MAPPED: &[&str] = &[
    "SmallInt",
    "Integer",
    "BigInt",
    "Float",
    "Double",
    "Bool",
    "Text",
    "Binary",
    "Timestamptz",
    "Timestamp",
    "Date",
    "Uuid",
    "Json",
    "Jsonb",
];

fn is_mapped_type(field: &Field<'_>) -> bool {
    if field.attrs.sql_type.get().is_some() {
        return false;
    }
    let Some(sql_type) = &field.sql_type else {
        return false;
    };
    let text: String = sql_type
        .to_string()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    serde_covers(&text)
}

/// Whether values of SQL type `text` (a path, without spaces) are of a Rust type serde covers:
/// one of [`SERDE_MAPPED`], or `Nullable` / `Array` of one (an `Option`, a `Vec`).
fn serde_covers(text: &str) -> bool {
    for wrapper in ["Nullable", "Array"] {
        if let Some(inner) = generic_argument(text, wrapper) {
            return serde_covers(inner);
        }
    }
    SERDE_MAPPED.contains(&text.rsplit("::").next().unwrap_or(text))
}

/// `X` of `…::wrapper<X>`, if `text` is that type.
fn generic_argument<'t>(text: &'t str, wrapper: &str) -> Option<&'t str> {
    let body = text.strip_suffix('>')?;
    let (path, inner) = body.split_once('<')?;
    (path.rsplit("::").next() == Some(wrapper)).then_some(inner)
}

/// `.with_cache_ttl(…)` for the model's `TableMeta`, when `cache(ttl = …)` is given.
pub fn table_meta_ttl(model: &Model<'_>) -> TokenStream {
    match model.attrs.cache.get().and_then(|c| c.ttl_millis) {
        Some(millis) => {
            quote!(.with_cache_ttl(::std::time::Duration::from_millis(#millis)))
        }
        None => quote!(),
    }
}

/// `impl CacheRow for #name` with `fields`: each field encoded in turn by one call into the
/// cache's codec (the same bytes as encoding a struct of them), so no serde impl is generated
/// per model. JSON fields are stored as their JSON text, since the cache's codec is not
/// self-describing.
fn cache_row(name: &syn::Ident, fields: &[&Field<'_>], shape: TokenStream) -> TokenStream {
    let c = quote!(::orm::__private::cache);
    let (encode, decode): (Vec<_>, Vec<_>) = fields
        .iter()
        .map(|f| {
            let ident = f.ident;
            if is_json(f) {
                (
                    quote!(#c::encode_json_text(&self.#ident, out)?;),
                    quote!(#ident: #c::decode_json_text(input)?,),
                )
            } else {
                (
                    quote!(#c::encode_serde(&self.#ident, out)?;),
                    quote!(#ident: #c::decode_serde(input)?,),
                )
            }
        })
        .unzip();
    quote! {
        #[automatically_derived]
        impl ::orm::__private::CacheRow for #name {
            const SHAPE: u64 = #shape;

            fn encode(&self, out: &mut ::std::vec::Vec<u8>) -> #c::Result<()> {
                #(#encode)*
                ::std::result::Result::Ok(())
            }

            fn decode(input: &mut &[u8]) -> #c::Result<Self> {
                ::std::result::Result::Ok(Self { #(#decode)* })
            }
        }
    }
}

/// Whether the field's column is JSON (its value may need a self-describing format).
fn is_json(field: &Field<'_>) -> bool {
    field
        .sql_type
        .as_ref()
        .is_some_and(|t| t.to_string().contains("Json"))
}

#[cfg(test)]
mod tests {
    use super::serde_covers;

    #[test]
    fn serde_covers_mapped_types_options_and_arrays_of_them() {
        let d = "::orm::__private::diesel::sql_types::";
        assert!(serde_covers(&format!("{d}BigInt")));
        assert!(serde_covers(&format!("{d}Nullable<{d}Text>")));
        let array = format!("::orm::__private::sql_types::Array<{d}Nullable<{d}Integer>>");
        assert!(serde_covers(&array));
        assert!(!serde_covers(&format!("{d}Interval")));
        assert!(!serde_covers(
            "::orm::__private::sql_types::Array<crate::schema::sql_types::Mood>"
        ));
        assert!(!serde_covers(&format!(
            "{d}Nullable<::orm::__private::sql_types::Numeric>"
        )));
    }
}
