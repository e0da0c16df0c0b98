//! Quoting SQL identifiers: the one rule every statement the runtime writes follows.

/// Quote an SQL identifier (`"name"`, inner quotes doubled).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
