//! Quoting SQL identifiers and literals: the rules every statement the runtime writes follows.

/// Quote an SQL identifier (`"name"`, inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Identifiers quoted and joined by commas: `"a", "b"`.
pub(crate) fn ident_list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| quote_ident(n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An SQL string literal (`'it''s'`).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// String literals joined by commas: `'a', 'b'`.
pub(crate) fn literal_list<S: AsRef<str>>(texts: &[S]) -> String {
    texts
        .iter()
        .map(|t| quote_literal(t.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}
