//! What is emitted when the input has errors: the errors, each spanned on the offending token,
//! and nothing that could add errors of its own.

use proc_macro2::TokenStream;

use crate::ast::Model;

/// The combined errors. Nothing else is generated from an invalid model: every generated item
/// depends on the checked columns, and an item built from a half-valid model would report
/// errors of its own on top of the one that matters.
pub fn expand(_model: Option<&Model<'_>>, errors: syn::Error) -> TokenStream {
    errors.to_compile_error()
}
