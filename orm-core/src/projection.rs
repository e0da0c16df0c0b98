//! Partial loading: structs that select only some columns of a model's table.

use crate::model::Model;

/// A struct that loads a subset of a model's columns: a generated partial
/// (`#[orm(partial(UserCard = [id, name]))]`) or a `#[derive(Projection)]` struct.
///
/// Its fields are exactly the loaded columns, so code cannot touch a column that was not
/// loaded; a column name that does not exist, or a field whose type differs from the column's,
/// is a compile error.
pub trait Projection: Sized + 'static {
    /// The model whose table is read.
    type Model: Model;
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
pub trait ModelField<const NAME_HASH: u64>: Model {
    /// The Diesel column.
    type Column: Default + Copy;
    /// The field's Rust type.
    type Type;
}

/// Holds when a projection field has the model field's exact type.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "this field has type `{Self}`, but the model's field has type `{T}`",
    label = "expected `{T}`",
    note = "a projection loads the column as the model declares it; use the model field's type"
)]
pub trait SameTypeAs<T> {}

impl<T> SameTypeAs<T> for T {}
