//! Partial loading: structs that select only some columns of a model's table.

use crate::model::ReadModel;

/// A struct that loads a subset of a model's columns: a generated partial
/// (`#[orm(partial(UserCard = [id, name]))]`) or a `#[derive(Projection)]` struct.
///
/// Its fields are exactly the loaded columns, so code cannot touch a column that was not
/// loaded; a column name that does not exist, or a field whose type differs from the column's,
/// is a compile error.
pub trait Projection: Sized + 'static {
    /// The model whose table is read.
    type Model: ReadModel;
    /// The Diesel select expression: a tuple of the table's column types.
    type Columns: Copy + diesel::Expression;
    /// The SQL names of the selected columns, in field order.
    const COLUMNS: &'static [&'static str];
    /// The select expression, for `.select(UserCard::columns())` in the Diesel DSL.
    fn columns() -> Self::Columns;
}

/// Implemented by `#[derive(Model)]` once per field, keyed by a hash of the field name, so that
/// `#[derive(Projection)]` can check its fields against the model at compile time.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no field of this name",
    label = "not a field of `{Self}`",
    note = "a projection's fields must be fields of its model; to load a field under another name write `#[orm(column = model_field)]`"
)]
pub trait ModelField<const NAME_HASH: u64>: ReadModel {
    /// The Diesel column.
    type Column: Default + Copy;
    /// The field's Rust type.
    type Type;
}

/// Holds when a projection field has the model field's exact type; the projection's row is
/// loaded as the model's types and handed over through `from_model`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "this field has type `{Self}`, but the model's field has type `{T}`",
    label = "expected `{T}`",
    note = "a projection loads the column as the model declares it; use the model field's type"
)]
pub trait SameTypeAs<T> {
    /// The model field's value, as the projection field.
    fn from_model(value: T) -> Self;
}

impl<T> SameTypeAs<T> for T {
    fn from_model(value: T) -> T {
        value
    }
}

/// A message composed during constant evaluation, for a compile error of `orm`'s own wording.
#[doc(hidden)]
pub struct ConstMessage {
    bytes: [u8; ConstMessage::CAPACITY],
    len: usize,
}

impl ConstMessage {
    const CAPACITY: usize = 1024;

    const fn new() -> Self {
        Self {
            bytes: [0; Self::CAPACITY],
            len: 0,
        }
    }

    /// Append `text`, or `…` and nothing more once the message is full.
    const fn push(&mut self, text: &str) {
        const ELLIPSIS: &[u8] = "…".as_bytes();
        let text = text.as_bytes();
        if self.len + text.len() + ELLIPSIS.len() > Self::CAPACITY {
            if self.len + ELLIPSIS.len() <= Self::CAPACITY && !self.ends_with(ELLIPSIS) {
                self.push_bytes(ELLIPSIS);
            }
            return;
        }
        self.push_bytes(text);
    }

    const fn push_bytes(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            self.bytes[self.len] = bytes[i];
            self.len += 1;
            i += 1;
        }
    }

    const fn ends_with(&self, suffix: &[u8]) -> bool {
        if self.len < suffix.len() {
            return false;
        }
        let start = self.len - suffix.len();
        let mut i = 0;
        while i < suffix.len() {
            if self.bytes[start + i] != suffix[i] {
                return false;
            }
            i += 1;
        }
        true
    }

    /// The message text.
    pub const fn as_str(&self) -> &str {
        let (text, _) = self.bytes.split_at(self.len);
        match core::str::from_utf8(text) {
            Ok(text) => text,
            Err(_) => "invalid message",
        }
    }
}

/// `None` when model `M` has a field named `name`; otherwise the compile error to raise, with
/// the closest field name when one is a likely typo, else the list of fields (and, with
/// `suggest_column`, how to load one under another name). `#[derive(Projection)]` evaluates it
/// once per field, so a misspelt field is one error on the misspelt name.
#[doc(hidden)]
pub const fn unknown_field<M: ReadModel>(name: &str, suggest_column: bool) -> Option<ConstMessage> {
    let name = without_raw_prefix(name);
    let columns = M::TABLE.columns;
    let mut i = 0;
    while i < columns.len() {
        if str_eq(without_raw_prefix(columns[i].field), name) {
            return None;
        }
        i += 1;
    }
    let mut message = ConstMessage::new();
    message.push("`");
    message.push(M::TABLE.model);
    message.push("` has no field `");
    message.push(name);
    message.push("`");
    let mut best: Option<(usize, &str)> = None;
    let mut i = 0;
    while i < columns.len() {
        let field = without_raw_prefix(columns[i].field);
        let distance = edit_distance(name.as_bytes(), field.as_bytes());
        let longest = if name.len() > field.len() {
            name.len()
        } else {
            field.len()
        };
        let allowed = if longest / 3 > 1 { longest / 3 } else { 1 };
        let closer = match best {
            Some((d, _)) => distance < d,
            None => true,
        };
        if distance <= allowed && closer {
            best = Some((distance, field));
        }
        i += 1;
    }
    if let Some((_, field)) = best {
        message.push("; did you mean `");
        message.push(field);
        message.push("`?");
        return Some(message);
    }
    message.push("; its fields are ");
    let mut i = 0;
    while i < columns.len() {
        if i > 0 {
            message.push(", ");
        }
        message.push("`");
        message.push(without_raw_prefix(columns[i].field));
        message.push("`");
        i += 1;
    }
    if suggest_column {
        message.push("; to load one of them under another name, write `#[orm(column = field)]`");
    }
    Some(message)
}

const fn without_raw_prefix(name: &str) -> &str {
    let bytes = name.as_bytes();
    if bytes.len() > 2 && bytes[0] == b'r' && bytes[1] == b'#' {
        let (_, rest) = name.split_at(2);
        rest
    } else {
        name
    }
}

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Edit distance counting a swap of two adjacent bytes as one edit (optimal string alignment);
/// `usize::MAX` for names too long to compare.
const fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    const MAX: usize = 64;
    if a.len() > MAX || b.len() > MAX {
        return usize::MAX;
    }
    // Rows i-2, i-1 and i of the distance table.
    let mut before = [0usize; MAX + 1];
    let mut previous = [0usize; MAX + 1];
    let mut current = [0usize; MAX + 1];
    let mut j = 0;
    while j <= b.len() {
        previous[j] = j;
        j += 1;
    }
    let mut i = 1;
    while i <= a.len() {
        current[0] = i;
        let mut j = 1;
        while j <= b.len() {
            let cost = if a[i - 1] == b[j - 1] { 0 } else { 1 };
            let mut best = previous[j] + 1;
            if current[j - 1] + 1 < best {
                best = current[j - 1] + 1;
            }
            if previous[j - 1] + cost < best {
                best = previous[j - 1] + cost;
            }
            if i > 1
                && j > 1
                && a[i - 1] == b[j - 2]
                && a[i - 2] == b[j - 1]
                && before[j - 2] + 1 < best
            {
                best = before[j - 2] + 1;
            }
            current[j] = best;
            j += 1;
        }
        before = previous;
        previous = current;
        i += 1;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_swaps_as_one() {
        assert_eq!(edit_distance(b"nmae", b"name"), 1);
        assert_eq!(edit_distance(b"emial", b"email"), 1);
        assert_eq!(edit_distance(b"", b"id"), 2);
        assert_eq!(edit_distance(b"avatar", b"avatar_url"), 4);
        assert_eq!(edit_distance(b"kitten", b"sitting"), 3);
    }

    #[test]
    fn message_keeps_within_capacity() {
        let mut message = ConstMessage::new();
        for _ in 0..2000 {
            message.push("ab");
        }
        assert!(message.as_str().ends_with('…'));
        assert!(message.as_str().len() <= ConstMessage::CAPACITY);
    }
}
