//! SQL types that work the same on PostgreSQL and SQLite, and the column types used in DDL.
//!
//! Besides the scalars below: [`Array`] (a PostgreSQL array, JSON text on SQLite), [`Enum`]
//! (a `#[derive(DbEnum)]` enum: a PostgreSQL enum type, checked text on SQLite) and, with the
//! `numeric` feature, `Numeric` (exact on both).
//!
//! Diesel's own `Timestamptz`, `Uuid` and `Jsonb` exist only for PostgreSQL. A model must run
//! unchanged on both backends, so `#[derive(Model)]` maps `DateTime<Utc>`, `uuid::Uuid` and
//! `serde_json::Value` to the types below: native `timestamptz`, `uuid` and `jsonb` on
//! PostgreSQL; ISO-8601 text, a 16-byte blob and JSON text on SQLite.
//!
//! Rust's coherence rules keep these foreign values from being Diesel expressions by
//! themselves, so compare a column of these types with a value wrapped in [`crate::bind`]:
//! `users::last_login.gt(orm::sql_types::bind(cutoff))`.

mod array;
mod enums;
#[cfg(feature = "numeric")]
mod numeric;

#[cfg(feature = "numeric")]
pub use numeric::Numeric;

pub use array::Array;
#[doc(hidden)]
pub use enums::enum_from_bytes;
pub use enums::{DbEnum, Enum, UnknownEnumLabel};

use std::marker::PhantomData;

use crate::meta::EnumType;
use diesel::deserialize::{self, FromSql};
#[cfg(feature = "postgres")]
use diesel::pg::{Pg, PgValue};
use diesel::query_builder::QueryId;
#[cfg(feature = "sqlite")]
use diesel::serialize::IsNull;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::SqlType;
#[cfg(feature = "sqlite")]
use diesel::sqlite::{Sqlite, SqliteValue};

/// A point in time with time zone: `timestamptz` on PostgreSQL, UTC text on SQLite.
/// Rust type: `chrono::DateTime<Utc>` (microsecond precision on PostgreSQL).
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 1184, array_oid = 1185))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Timestamptz;

/// A UUID: `uuid` on PostgreSQL, a 16-byte blob on SQLite. Rust type: `uuid::Uuid`.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 2950, array_oid = 2951))]
#[diesel(sqlite_type(name = "Binary"))]
pub struct Uuid;

/// A JSON document: `jsonb` on PostgreSQL, JSON text on SQLite. Rust type: `serde_json::Value`.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 3802, array_oid = 3807))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Json;

type Utc = chrono::DateTime<chrono::Utc>;

// `table!` gives date/time columns `+` and `-` with an interval, as for Diesel's own type.
impl diesel::sql_types::ops::Add for Timestamptz {
    type Rhs = diesel::sql_types::Interval;
    type Output = Timestamptz;
}
impl diesel::sql_types::ops::Sub for Timestamptz {
    type Rhs = diesel::sql_types::Interval;
    type Output = Timestamptz;
}

#[cfg(feature = "postgres")]
impl FromSql<Timestamptz, Pg> for Utc {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <Utc as FromSql<diesel::sql_types::Timestamptz, Pg>>::from_sql(bytes)
    }
}
#[cfg(feature = "postgres")]
impl ToSql<Timestamptz, Pg> for Utc {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <Utc as ToSql<diesel::sql_types::Timestamptz, Pg>>::to_sql(self, out)
    }
}
#[cfg(feature = "sqlite")]
impl FromSql<Timestamptz, Sqlite> for Utc {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        <Utc as FromSql<diesel::sql_types::TimestamptzSqlite, Sqlite>>::from_sql(bytes)
    }
}
#[cfg(feature = "sqlite")]
impl ToSql<Timestamptz, Sqlite> for Utc {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(sqlite_timestamp_text(self));
        Ok(IsNull::No)
    }
}

/// The text Diesel writes for a `TimestamptzSqlite` (`%F %T%.f%:z`: `2024-06-01 12:00:00.5+00:00`),
/// truncated to microseconds as PostgreSQL stores them, so both backends keep the same value.
/// Built without chrono's format-string interpreter, which costs more than the insert itself
/// in a bulk load. Years outside 0..=9999 and leap seconds take chrono's path.
#[cfg(feature = "sqlite")]
fn sqlite_timestamp_text(t: &Utc) -> String {
    use chrono::{Datelike, Timelike};
    use std::fmt::Write;
    let (year, nanos) = (t.year(), t.nanosecond() / 1_000 * 1_000);
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        let micros = chrono::Duration::nanoseconds(i64::from(t.nanosecond() % 1_000));
        return (*t - micros).format("%F %T%.f%:z").to_string();
    }
    let mut text = String::with_capacity(35);
    let _ = write!(
        text,
        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    // `%.f`: no fraction when zero, else 3, 6 or 9 digits, as few as hold the value.
    let _ = match nanos {
        0 => Ok(()),
        n if n % 1_000_000 == 0 => write!(text, ".{:03}", n / 1_000_000),
        n if n % 1_000 == 0 => write!(text, ".{:06}", n / 1_000),
        n => write!(text, ".{n:09}"),
    };
    text.push_str("+00:00");
    text
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use chrono::{TimeZone, Utc};

    #[test]
    fn sqlite_timestamp_text_matches_diesels_format() {
        let base = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 58).unwrap();
        for nanos in [0, 5_000_000, 123_000_000, 123_456_000, 1_000] {
            let t = base + chrono::Duration::nanoseconds(nanos);
            assert_eq!(
                super::sqlite_timestamp_text(&t),
                t.format("%F %T%.f%:z").to_string()
            );
        }
        // Nanoseconds are truncated to microseconds, as PostgreSQL stores them.
        let t = base + chrono::Duration::nanoseconds(123_456_789);
        assert_eq!(
            super::sqlite_timestamp_text(&t),
            "2024-02-29 23:59:58.123456+00:00"
        );
        let t = base + chrono::Duration::nanoseconds(999);
        assert_eq!(
            super::sqlite_timestamp_text(&t),
            "2024-02-29 23:59:58+00:00"
        );
        for t in [
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(-44, 3, 15, 12, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(12345, 1, 1, 0, 0, 0).unwrap(),
        ] {
            assert_eq!(
                super::sqlite_timestamp_text(&t),
                t.format("%F %T%.f%:z").to_string()
            );
        }
    }
}

#[cfg(feature = "postgres")]
impl FromSql<Uuid, Pg> for uuid::Uuid {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <uuid::Uuid as FromSql<diesel::sql_types::Uuid, Pg>>::from_sql(bytes)
    }
}
#[cfg(feature = "postgres")]
impl ToSql<Uuid, Pg> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <uuid::Uuid as ToSql<diesel::sql_types::Uuid, Pg>>::to_sql(self, out)
    }
}
#[cfg(feature = "sqlite")]
impl FromSql<Uuid, Sqlite> for uuid::Uuid {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let bytes = <Vec<u8> as FromSql<diesel::sql_types::Binary, Sqlite>>::from_sql(bytes)?;
        Ok(uuid::Uuid::from_slice(&bytes)?)
    }
}
#[cfg(feature = "sqlite")]
impl ToSql<Uuid, Sqlite> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(&self.as_bytes()[..]);
        Ok(IsNull::No)
    }
}

#[cfg(feature = "postgres")]
impl FromSql<Json, Pg> for serde_json::Value {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<diesel::sql_types::Jsonb, Pg>>::from_sql(bytes)
    }
}
#[cfg(feature = "postgres")]
impl ToSql<Json, Pg> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<diesel::sql_types::Jsonb, Pg>>::to_sql(self, out)
    }
}
#[cfg(feature = "sqlite")]
impl FromSql<Json, Sqlite> for serde_json::Value {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(serde_json::from_str(&text)?)
    }
}
#[cfg(feature = "sqlite")]
impl ToSql<Json, Sqlite> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(serde_json::to_string(self)?);
        Ok(IsNull::No)
    }
}

/// The column type to write in `CREATE TABLE` for a Diesel SQL type, per backend.
///
/// Implemented for every SQL type `#[derive(Model)]` maps to, for Diesel's PostgreSQL types
/// that `diesel print-schema` writes (`Citext`, `Interval`, `Inet`, `Cidr`, `Numeric`,
/// `Array<…>`, …), and by `#[derive(DbEnum)]`. To use your own SQL type with
/// `#[orm(sql_type = path::to::MyType)]`, implement this trait for it. A model bound to a
/// `table!` (`diesel_table = …`) needs no impl: without one, the model still reads and writes
/// the column, and `create_table` refuses the table with
/// [`Error::DdlUnknown`](crate::Error::DdlUnknown): its DDL is the user's.
pub trait DdlType {
    /// Type name on PostgreSQL, e.g. `BIGINT`.
    const POSTGRES: &'static str;
    /// Type name on SQLite, e.g. `BIGINT` (SQLite maps it to its storage class).
    const SQLITE: &'static str;
    /// The enum type behind the column, for `CREATE TYPE` and a SQLite `CHECK`; `None` for
    /// anything but a `#[derive(DbEnum)]` type.
    const ENUM: Option<&'static EnumType> = None;
}

macro_rules! ddl_types {
    ($($ty:ty => $pg:literal, $sqlite:literal;)*) => {
        $(impl DdlType for $ty {
            const POSTGRES: &'static str = $pg;
            const SQLITE: &'static str = $sqlite;
        })*
    };
}

ddl_types! {
    diesel::sql_types::SmallInt => "SMALLINT", "SMALLINT";
    diesel::sql_types::Integer => "INTEGER", "INTEGER";
    diesel::sql_types::BigInt => "BIGINT", "BIGINT";
    diesel::sql_types::Float => "REAL", "REAL";
    diesel::sql_types::Double => "DOUBLE PRECISION", "DOUBLE";
    diesel::sql_types::Bool => "BOOLEAN", "BOOLEAN";
    diesel::sql_types::Text => "TEXT", "TEXT";
    diesel::sql_types::Binary => "BYTEA", "BLOB";
    diesel::sql_types::Timestamp => "TIMESTAMP", "TIMESTAMP";
    diesel::sql_types::Date => "DATE", "DATE";
    diesel::sql_types::Time => "TIME", "TIME";
    Timestamptz => "TIMESTAMPTZ", "TEXT";
    Uuid => "UUID", "BLOB";
    Json => "JSONB", "TEXT";
}

// Diesel's own PostgreSQL types, for models bound to a `table!` written by `diesel print-schema`.
// Their SQLite names only matter to DDL printed for SQLite: Diesel reads and writes them on
// PostgreSQL only.
ddl_types! {
    diesel::sql_types::Timestamptz => "TIMESTAMPTZ", "TIMESTAMPTZ";
    diesel::sql_types::Jsonb => "JSONB", "TEXT";
    diesel::sql_types::Json => "JSON", "TEXT";
    diesel::sql_types::Uuid => "UUID", "BLOB";
    diesel::sql_types::Interval => "INTERVAL", "TEXT";
    diesel::sql_types::Numeric => "NUMERIC", "TEXT";
    diesel::sql_types::Citext => "CITEXT", "TEXT";
    diesel::sql_types::Inet => "INET", "TEXT";
    diesel::sql_types::Cidr => "CIDR", "TEXT";
    diesel::sql_types::MacAddr => "MACADDR", "TEXT";
    diesel::sql_types::Money => "MONEY", "BIGINT";
    diesel::sql_types::Oid => "OID", "BIGINT";
}

impl<T: DdlType> DdlType for diesel::sql_types::Nullable<T> {
    const POSTGRES: &'static str = T::POSTGRES;
    const SQLITE: &'static str = T::SQLITE;
    const ENUM: Option<&'static EnumType> = T::ENUM;
}

/// `T[]` on PostgreSQL; JSON text on SQLite.
impl<T: DdlType> DdlType for Array<T> {
    const POSTGRES: &'static str = ArrayName::<T>::POSTGRES;
    const SQLITE: &'static str = "TEXT";
    const ENUM: Option<&'static EnumType> = T::ENUM;
}

/// Diesel's own array type, which `diesel print-schema` writes for `T[]` columns (and which
/// Rust's orphan rule keeps users from implementing `DdlType` for).
impl<T: DdlType> DdlType for diesel::sql_types::Array<T> {
    const POSTGRES: &'static str = ArrayName::<T>::POSTGRES;
    const SQLITE: &'static str = "TEXT";
    const ENUM: Option<&'static EnumType> = T::ENUM;
}

/// The enum type `E::TYPE.name` on PostgreSQL (created before the table); text with a
/// `CHECK` of its labels on SQLite.
impl<E: DbEnum> DdlType for Enum<E> {
    const POSTGRES: &'static str = E::TYPE.name;
    const SQLITE: &'static str = "TEXT";
    const ENUM: Option<&'static EnumType> = Some(E::TYPE);
}

/// The longest type name an array type's name is built from.
const MAX_TYPE_NAME: usize = 120;

/// `{T::POSTGRES}[]`, built at compile time.
struct ArrayName<T>(PhantomData<T>);

impl<T: DdlType> ArrayName<T> {
    const BYTES: ([u8; MAX_TYPE_NAME], usize) = with_suffix(T::POSTGRES, "[]");
    const POSTGRES: &'static str = text_of(&Self::BYTES);
}

const fn with_suffix(name: &str, suffix: &str) -> ([u8; MAX_TYPE_NAME], usize) {
    let (name, suffix) = (name.as_bytes(), suffix.as_bytes());
    assert!(
        name.len() + suffix.len() <= MAX_TYPE_NAME,
        "type name too long for an array type"
    );
    let mut out = [0u8; MAX_TYPE_NAME];
    let mut i = 0;
    while i < name.len() {
        out[i] = name[i];
        i += 1;
    }
    let mut j = 0;
    while j < suffix.len() {
        out[i + j] = suffix[j];
        j += 1;
    }
    (out, i + j)
}

const fn text_of(bytes: &'static ([u8; MAX_TYPE_NAME], usize)) -> &'static str {
    match std::str::from_utf8(bytes.0.split_at(bytes.1).0) {
        Ok(text) => text,
        Err(_) => panic!("a type name is UTF-8"),
    }
}

/// The DDL of a column's SQL type `ST`, whether or not `ST` implements [`DdlType`]: generated
/// code for a model bound to a `table!` reads `DdlOf::<ST>::POSTGRES` with [`NoDdlType`] in
/// scope. When `ST: DdlType`, these inherent constants win; otherwise the trait's do.
#[doc(hidden)]
pub struct DdlOf<ST>(PhantomData<ST>);

impl<ST: DdlType> DdlOf<ST> {
    /// `ST::POSTGRES`.
    pub const POSTGRES: &'static str = ST::POSTGRES;
    /// `ST::SQLITE`.
    pub const SQLITE: &'static str = ST::SQLITE;
    /// `ST::ENUM`.
    pub const ENUM: Option<&'static EnumType> = ST::ENUM;
    /// `orm` knows this type's DDL.
    pub const KNOWN: bool = true;
}

/// The fallback of [`DdlOf`] for an SQL type without a [`DdlType`] impl.
#[doc(hidden)]
pub trait NoDdlType {
    /// What DDL printed for the table shows in place of the type.
    const POSTGRES: &'static str = "/* no orm DdlType: this column's type is yours */";
    /// As `POSTGRES`.
    const SQLITE: &'static str = "/* no orm DdlType: this column's type is yours */";
    /// None.
    const ENUM: Option<&'static EnumType> = None;
    /// `orm` does not know this type's DDL.
    const KNOWN: bool = false;
}

impl<ST> NoDdlType for DdlOf<ST> {}

#[cfg(test)]
mod ddl_tests {
    use super::*;
    use diesel::sql_types::{Nullable, Text};

    #[test]
    fn array_types_name_their_element() {
        assert_eq!(<Array<Text> as DdlType>::POSTGRES, "TEXT[]");
        assert_eq!(<Array<Nullable<Uuid>> as DdlType>::POSTGRES, "UUID[]");
        assert_eq!(
            <diesel::sql_types::Array<diesel::sql_types::BigInt> as DdlType>::POSTGRES,
            "BIGINT[]"
        );
        assert_eq!(<Array<Text> as DdlType>::SQLITE, "TEXT");
    }

    struct NoImpl;

    #[test]
    fn ddl_of_falls_back_without_an_impl() {
        use super::NoDdlType as _;
        const KNOWN: (bool, bool, &str) = (
            DdlOf::<Text>::KNOWN,
            DdlOf::<NoImpl>::KNOWN,
            DdlOf::<Array<diesel::sql_types::Integer>>::POSTGRES,
        );
        assert_eq!(KNOWN, (true, false, "INTEGER[]"));
    }
}
