//! Rust enums stored as database enums: a PostgreSQL `CREATE TYPE … AS ENUM`, text with a
//! `CHECK` on SQLite.

use std::fmt;
use std::marker::PhantomData;

#[cfg(feature = "postgres")]
use diesel::pg::{Pg, PgTypeMetadata};
use diesel::query_builder::QueryId;
use diesel::sql_types::{HasSqlType, SingleValue, SqlType};
#[cfg(feature = "sqlite")]
use diesel::sqlite::{Sqlite, SqliteType};

use crate::meta::EnumType;

/// A fieldless Rust enum stored as a database enum. Implemented by `#[derive(orm::DbEnum)]`,
/// which also writes the enum's Diesel `ToSql`/`FromSql` impls for [`Enum<Self>`].
/// A model field of such a type is marked `#[orm(db_enum)]`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a database enum",
    label = "marked `#[orm(db_enum)]`",
    note = "derive it: `#[derive(orm::DbEnum)]` on a fieldless enum"
)]
pub trait DbEnum: Sized + 'static {
    /// The type's PostgreSQL name and its labels, in declaration order.
    const TYPE: &'static EnumType;

    /// The label this variant is stored as.
    fn label(&self) -> &'static str;

    /// The variant stored as `label`, if there is one.
    fn from_label(label: &str) -> Option<Self>;

    /// The variant stored as `label`, or the typed error a read of an unknown label returns.
    fn parse_label(label: &str) -> Result<Self, UnknownEnumLabel> {
        Self::from_label(label).ok_or_else(|| UnknownEnumLabel {
            type_name: Self::TYPE.name,
            label: label.to_owned(),
        })
    }
}

/// The SQL type of a `#[derive(DbEnum)]` enum `E`: the PostgreSQL enum type `E::TYPE.name`
/// (its OID looked up by name, once per connection), text on SQLite.
pub struct Enum<E>(PhantomData<E>);

impl<E> fmt::Debug for Enum<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Enum")
    }
}
impl<E> Clone for Enum<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Enum<E> {}
impl<E> Default for Enum<E> {
    fn default() -> Self {
        Self(PhantomData)
    }
}
impl<E: 'static> QueryId for Enum<E> {
    type QueryId = Self;
    const HAS_STATIC_QUERY_ID: bool = true;
}
impl<E: 'static> SqlType for Enum<E> {
    type IsNull = diesel::sql_types::is_nullable::NotNull;
}
impl<E: 'static> SingleValue for Enum<E> {}

#[cfg(feature = "postgres")]
impl<E: DbEnum> HasSqlType<Enum<E>> for Pg {
    fn metadata(lookup: &mut Self::MetadataLookup) -> PgTypeMetadata {
        match E::TYPE.name.split_once('.') {
            Some((schema, name)) => lookup.lookup_type(name, Some(schema)),
            None => lookup.lookup_type(E::TYPE.name, None),
        }
    }
}

#[cfg(feature = "sqlite")]
impl<E: DbEnum> HasSqlType<Enum<E>> for Sqlite {
    fn metadata(_: &mut ()) -> SqliteType {
        SqliteType::Text
    }
}

/// A label read from the database that no variant of the enum is stored as (the type was
/// given a value the Rust enum does not know). Reads fail with
/// [`Error::Query`](crate::Error::Query) holding Diesel's `DeserializationError`, whose error
/// (or its source, when Diesel names the field) is this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEnumLabel {
    /// The enum type's name.
    pub type_name: &'static str,
    /// The label that was read.
    pub label: String,
}

impl fmt::Display for UnknownEnumLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a label of enum type `{}`",
            self.label, self.type_name
        )
    }
}

impl std::error::Error for UnknownEnumLabel {}

/// Reads an enum from its stored label: what generated `FromSql` impls call.
#[doc(hidden)]
pub fn enum_from_bytes<E: DbEnum>(bytes: &[u8]) -> diesel::deserialize::Result<E> {
    let label = std::str::from_utf8(bytes)?;
    Ok(E::parse_label(label)?)
}
