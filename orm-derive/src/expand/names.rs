//! Names the generated code shares between capabilities: a column's path in the model's
//! table module and the key a field is known by to `#[derive(Projection)]`.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::Model;

/// The key under which `ModelField` is implemented for the field `name` (a raw identifier
/// counts without its `r#`).
pub fn field_hash(name: &str) -> u64 {
    let name = name.strip_prefix("r#").unwrap_or(name);
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// Path of column `column` in the model's table module: `users::email`.
pub fn column_path(model: &Model<'_>, column: &syn::Ident) -> TokenStream {
    let module = model.table_module();
    quote!(#module::#column)
}
