//! SQL types that work the same on PostgreSQL and SQLite, and the column types used in DDL.
//!
//! Diesel's own `Timestamptz`, `Uuid` and `Jsonb` exist only for PostgreSQL. A model must run
//! unchanged on both backends, so `#[derive(Model)]` maps `DateTime<Utc>`, `uuid::Uuid` and
//! `serde_json::Value` to the types below: native `timestamptz`, `uuid` and `jsonb` on
//! PostgreSQL; ISO-8601 text, a 16-byte blob and JSON text on SQLite.
//!
//! Rust's coherence rules keep these foreign values from being Diesel expressions by
//! themselves, so compare a column of these types with a value wrapped in [`crate::bind`]:
//! `users::last_login.gt(orm::bind(cutoff))`.

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
/// Implemented for every SQL type `#[derive(Model)]` maps to. To use your own SQL type with
/// `#[orm(sql_type = path::to::MyType)]`, implement this trait for it.
pub trait DdlType {
    /// Type name on PostgreSQL, e.g. `BIGINT`.
    const POSTGRES: &'static str;
    /// Type name on SQLite, e.g. `BIGINT` (SQLite maps it to its storage class).
    const SQLITE: &'static str;
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
#[cfg(feature = "postgres")]
ddl_types! {
    diesel::sql_types::Timestamptz => "TIMESTAMPTZ", "TIMESTAMPTZ";
    diesel::sql_types::Jsonb => "JSONB", "TEXT";
    diesel::sql_types::Uuid => "UUID", "BLOB";
}

impl<T: DdlType> DdlType for diesel::sql_types::Nullable<T> {
    const POSTGRES: &'static str = T::POSTGRES;
    const SQLITE: &'static str = T::SQLITE;
}
