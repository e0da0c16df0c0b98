//! Exact decimals: `NUMERIC` on PostgreSQL, decimal text on SQLite.

use bigdecimal::BigDecimal;
use diesel::deserialize::{self, FromSql};
#[cfg(feature = "postgres")]
use diesel::pg::{Pg, PgValue};
use diesel::query_builder::QueryId;
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::SqlType;
#[cfg(feature = "sqlite")]
use diesel::sqlite::{Sqlite, SqliteValue};

/// An exact decimal: `NUMERIC` on PostgreSQL; on SQLite, which has no exact decimal type
/// (its `NUMERIC` affinity turns values into 64-bit floats), the decimal's text in a `TEXT`
/// column, read back exactly. Rust type: `bigdecimal::BigDecimal` (feature `numeric`).
/// On SQLite, comparisons and ordering in SQL are those of text, not of numbers.
#[derive(Debug, Clone, Copy, Default, QueryId, SqlType)]
#[diesel(postgres_type(oid = 1700, array_oid = 1231))]
#[diesel(sqlite_type(name = "Text"))]
pub struct Numeric;

#[cfg(feature = "postgres")]
impl FromSql<Numeric, Pg> for BigDecimal {
    fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<Self> {
        <BigDecimal as FromSql<diesel::sql_types::Numeric, Pg>>::from_sql(bytes)
    }
}
#[cfg(feature = "postgres")]
impl ToSql<Numeric, Pg> for BigDecimal {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <BigDecimal as ToSql<diesel::sql_types::Numeric, Pg>>::to_sql(self, out)
    }
}
#[cfg(feature = "sqlite")]
impl FromSql<Numeric, Sqlite> for BigDecimal {
    fn from_sql(bytes: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = <String as FromSql<diesel::sql_types::Text, Sqlite>>::from_sql(bytes)?;
        Ok(text.parse()?)
    }
}
#[cfg(feature = "sqlite")]
impl ToSql<Numeric, Sqlite> for BigDecimal {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        // Plain notation, never scientific, so the text is a decimal SQLite and people read alike.
        out.set_value(self.to_plain_string());
        Ok(serialize::IsNull::No)
    }
}

impl super::DdlType for Numeric {
    const POSTGRES: &'static str = "NUMERIC";
    const SQLITE: &'static str = "TEXT";
}

// `table!` gives numeric columns arithmetic, as for Diesel's own type (on SQLite, where the
// value is text, SQL arithmetic converts it to a float: compute in Rust there).
macro_rules! numeric_ops {
    ($($op:ident),*) => {
        $(impl diesel::sql_types::ops::$op for Numeric {
            type Rhs = Numeric;
            type Output = Numeric;
        })*
    };
}
numeric_ops!(Add, Sub, Mul, Div);
