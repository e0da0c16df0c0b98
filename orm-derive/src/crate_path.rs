//! `#[orm(crate = path)]`: the path by which generated code names `orm`, for a crate that
//! renames the dependency or reaches it through a re-export.
//!
//! Code is generated naming `::orm::__private::…` (the one path it uses for `orm`'s items);
//! with the attribute, every such path, and the same path inside string literals (serde's
//! `crate = "…"`), is rewritten to start with `path` instead, keeping each token's span.

use proc_macro2::{Delimiter, Group, Literal, Spacing, TokenStream, TokenTree};
use quote::ToTokens;
use syn::Attribute;

/// `#[orm(crate = path)]` among a container's attributes. Other keys are left to the derive's
/// own parser, which accepts `crate` without reading it.
pub fn find(attrs: &[Attribute]) -> syn::Result<Option<syn::Path>> {
    let mut found = None;
    let mut error = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("orm")) {
        // Errors in other keys are the derive's own parser's to report.
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                match meta.value().and_then(|value| value.parse::<syn::Path>()) {
                    Ok(path) => found = Some(path),
                    Err(e) => {
                        error = Some(syn::Error::new(
                            e.span(),
                            "give the crate as a path: `#[orm(crate = my_orm)]`",
                        ))
                    }
                }
            } else {
                skip_value(&meta)?;
            }
            Ok(())
        });
    }
    match error {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// Skip a key's `= value` or `(…)`, up to the next comma.
pub fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.input.parse::<syn::Token![=]>()?;
        while !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
            meta.input.parse::<TokenTree>()?;
        }
    } else if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
        meta.input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// `tokens`, with every path starting `::orm` made to start with `path`.
pub fn apply(tokens: TokenStream, path: &syn::Path) -> TokenStream {
    let text = path.to_token_stream().to_string().replace(' ', "");
    rewrite(tokens, path, &text)
}

fn rewrite(tokens: TokenStream, path: &syn::Path, text: &str) -> TokenStream {
    let trees: Vec<TokenTree> = tokens.into_iter().collect();
    let mut out = TokenStream::new();
    let mut i = 0;
    while i < trees.len() {
        if starts_orm_path(&trees, i) {
            out.extend(path.to_token_stream());
            i += 3;
            continue;
        }
        match &trees[i] {
            TokenTree::Group(group) => {
                let mut new = Group::new(group.delimiter(), rewrite(group.stream(), path, text));
                new.set_span(group.span());
                out.extend([TokenTree::Group(new)]);
            }
            TokenTree::Literal(literal) => out.extend([rewrite_literal(literal, text)]),
            other => out.extend([other.clone()]),
        }
        i += 1;
    }
    out
}

/// Keywords a path may follow: every strict keyword but `crate`, `self`, `Self` and `super`,
/// which begin paths themselves.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "dyn", "else", "enum", "extern", "fn",
    "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref",
    "return", "static", "struct", "trait", "type", "unsafe", "use", "where", "while",
];

/// Whether `trees[i..]` begins `::orm` at the start of a path (not after another segment).
fn starts_orm_path(trees: &[TokenTree], i: usize) -> bool {
    let colon = |t: Option<&TokenTree>, spacing: Spacing| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == spacing);
    // `a::orm` continues a path; `impl ::orm`, `-> ::orm`, `<::orm` start one.
    let after_segment = i > 0
        && matches!(&trees[i - 1], TokenTree::Ident(id) if !KEYWORDS.contains(&id.to_string().as_str()));
    !after_segment
        && colon(trees.get(i), Spacing::Joint)
        && colon(trees.get(i + 1), Spacing::Alone)
        && matches!(trees.get(i + 2), Some(TokenTree::Ident(id)) if id == "orm")
        && !matches!(trees.get(i + 3), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis)
}

/// A string literal naming `::orm::…` (serde's `crate = "…"`), rewritten the same way.
fn rewrite_literal(literal: &Literal, text: &str) -> TokenTree {
    let source = literal.to_string();
    match source.strip_prefix("\"::orm::") {
        Some(rest) => {
            let mut new = Literal::string(&format!("{text}::{}", rest.trim_end_matches('"')));
            new.set_span(literal.span());
            TokenTree::Literal(new)
        }
        None => TokenTree::Literal(literal.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn applied(tokens: TokenStream, path: &str) -> String {
        apply(tokens, &syn::parse_str(path).unwrap()).to_string()
    }

    #[test]
    fn paths_and_serde_strings_move_to_the_given_crate() {
        let code = quote! {
            impl ::orm::__private::Model for User {
                fn f() -> ::orm::__private::Result<()> { todo!() }
            }
            #[serde(crate = "::orm::__private::serde")]
            struct S;
        };
        let out = applied(code, "crate::reexported::orm");
        assert!(
            !out.replace("reexported :: orm", "").contains(":: orm ::"),
            "{out}"
        );
        assert!(
            out.contains("crate :: reexported :: orm :: __private :: Model"),
            "{out}"
        );
        assert!(
            out.contains("\"crate::reexported::orm::__private::serde\""),
            "{out}"
        );
    }

    #[test]
    fn only_paths_that_start_with_orm_change() {
        let code = quote!(other::orm::Thing; x::<::orm::__private::A>; "orm");
        let out = applied(code, "my_orm");
        assert!(out.contains("other :: orm :: Thing"), "{out}");
        assert!(out.contains("my_orm :: __private :: A"), "{out}");
        assert!(out.contains("\"orm\""), "{out}");
    }

    #[test]
    fn the_attribute_is_found_beside_other_keys() {
        let attrs: Vec<Attribute> = vec![
            syn::parse_quote!(#[orm(table = users, partial(Card = [id, name]))]),
            syn::parse_quote!(#[orm(crate = my_orm)]),
        ];
        let path = find(&attrs).unwrap().unwrap();
        assert_eq!(path.to_token_stream().to_string(), "my_orm");
        assert!(find(&attrs[..1]).unwrap().is_none());
    }
}
