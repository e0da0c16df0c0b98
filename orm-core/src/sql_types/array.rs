//! Arrays: PostgreSQL `T[]`, JSON text on SQLite.

use diesel::deserialize::{self, FromSql};
#[cfg(feature = "postgres")]
use diesel::pg::{Pg, PgTypeMetadata, PgValue};
use diesel::query_builder::QueryId;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::{HasSqlType, SqlType};
#[cfg(feature = "sqlite")]
use diesel::sqlite::{Sqlite, SqliteType, SqliteValue};

/// An array of `ST`: a PostgreSQL array (`text[]`, `bigint[]`, …) whose elements may be NULL
/// when `ST` is `Nullable<…>`; JSON text on SQLite (`["a","b"]`, `[1,null,3]`), which has no
/// array type. Rust type: `Vec<T>` (or `Vec<Option<T>>`) for any `T` the element type maps.
///
/// On SQLite, elements are written as serde writes them (`DateTime<Utc>` as RFC 3339 text,
/// `uuid::Uuid` as its hyphenated text, `Vec<u8>` as a list of numbers), and a float NaN
/// (which JSON cannot hold) is refused before it is sent, as in a scalar column.
/// Only one-dimensional arrays are read.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
pub struct Array<ST: 'static>(ST);

#[cfg(feature = "postgres")]
impl<ST> HasSqlType<Array<ST>> for Pg
where
    Pg: HasSqlType<ST>,
{
    fn metadata(lookup: &mut Self::MetadataLookup) -> PgTypeMetadata {
        <Pg as HasSqlType<diesel::sql_types::Array<ST>>>::metadata(lookup)
    }
}

#[cfg(feature = "postgres")]
impl<ST, T> ToSql<Array<ST>, Pg> for Vec<T>
where
    [T]: ToSql<diesel::sql_types::Array<ST>, Pg>,
    T: std::fmt::Debug,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <[T] as ToSql<diesel::sql_types::Array<ST>, Pg>>::to_sql(self.as_slice(), out)
    }
}

#[cfg(feature = "postgres")]
impl<ST, T> FromSql<Array<ST>, Pg> for Vec<T>
where
    Vec<T>: FromSql<diesel::sql_types::Array<ST>, Pg>,
{
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <Vec<T> as FromSql<diesel::sql_types::Array<ST>, Pg>>::from_sql(value)
    }
}

#[cfg(feature = "sqlite")]
impl<ST> HasSqlType<Array<ST>> for Sqlite {
    fn metadata(_: &mut ()) -> SqliteType {
        SqliteType::Text
    }
}

#[cfg(feature = "sqlite")]
impl<ST, T> ToSql<Array<ST>, Sqlite> for Vec<T>
where
    T: serde::Serialize + std::fmt::Debug,
{
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(self)?);
        Ok(serialize::IsNull::No)
    }
}

#[cfg(feature = "sqlite")]
impl<ST, T> FromSql<Array<ST>, Sqlite> for Vec<T>
where
    T: serde::de::DeserializeOwned,
{
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(value)?;
        Ok(serde_json::from_str(&text)?)
    }
}
