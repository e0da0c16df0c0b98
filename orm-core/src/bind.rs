//! Bound SQL parameters for values whose SQL type is one of `orm`'s own.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::expression::{
    is_aggregate, AppearsOnTable, Expression, SelectableExpression, TypedExpressionType,
    ValidGrouping,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, SqlType};
use diesel::QueryResult;

/// Wrap a value as a bound SQL parameter of the type the other side of the comparison expects
/// (`orm::sql_types::bind` in the `orm` crate).
///
/// Needed for `DateTime<Utc>`, `uuid::Uuid` and `serde_json::Value`, which map to `orm`'s own
/// cross-backend SQL types ([`crate::sql_types`]); harmless for any other value. For a
/// nullable column (an `Option<…>` field), bind an `Option`: `orm::sql_types::bind(Some(cutoff))`.
///
/// ```
/// # diesel::table! {
/// #     users (id) {
/// #         id -> BigInt,
/// #         created_at -> orm_core::sql_types::Timestamptz,
/// #         last_login -> Nullable<orm_core::sql_types::Timestamptz>,
/// #         visits -> Nullable<BigInt>,
/// #     }
/// # }
/// use chrono::{Duration, Utc};
/// use diesel::prelude::*;
///
/// # fn main() {
/// let cutoff = Utc::now() - Duration::days(30);
/// // `created_at: DateTime<Utc>`: bind the value.
/// let new = users::table.filter(users::created_at.gt(orm_core::bind(cutoff)));
/// // `last_login: Option<DateTime<Utc>>`: bind an `Option`.
/// let active = users::table.filter(users::last_login.gt(orm_core::bind(Some(cutoff))));
/// // Diesel's own types need no `bind`, nullable column or not.
/// let regulars = users::table.filter(users::visits.gt(10_i64));
/// # for sql in [
/// #     diesel::debug_query::<diesel::sqlite::Sqlite, _>(&new).to_string(),
/// #     diesel::debug_query::<diesel::pg::Pg, _>(&active).to_string(),
/// #     diesel::debug_query::<diesel::sqlite::Sqlite, _>(&active).to_string(),
/// #     diesel::debug_query::<diesel::sqlite::Sqlite, _>(&regulars).to_string(),
/// # ] {
/// #     assert!(sql.contains("WHERE"), "{sql}");
/// # }
/// # }
/// ```
pub fn bind<ST, T>(value: T) -> Bind<ST, T> {
    Bind::new(value)
}

/// A value bound as an SQL parameter of SQL type `ST`: what [`bind`] returns. It is a Diesel
/// expression on every backend that can serialize `T` as `ST`.
#[derive(Debug, Clone, Copy)]
pub struct Bind<ST, T> {
    value: T,
    sql_type: PhantomData<ST>,
}

impl<ST, T> Bind<ST, T> {
    /// Bind `value` as SQL type `ST`.
    pub fn new(value: T) -> Self {
        Self {
            value,
            sql_type: PhantomData,
        }
    }

    /// The bound value.
    pub fn into_inner(self) -> T {
        self.value
    }
}

impl<ST, T> Expression for Bind<ST, T>
where
    ST: SqlType + TypedExpressionType,
{
    type SqlType = ST;
}

impl<ST, T, DB> QueryFragment<DB> for Bind<ST, T>
where
    DB: Backend + HasSqlType<ST>,
    T: ToSql<ST, DB>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        pass.push_bind_param(&self.value)
    }
}

impl<ST: QueryId, T> QueryId for Bind<ST, T> {
    type QueryId = Bind<ST::QueryId, ()>;
    const HAS_STATIC_QUERY_ID: bool = ST::HAS_STATIC_QUERY_ID;
}

impl<ST, T, QS> SelectableExpression<QS> for Bind<ST, T> where Bind<ST, T>: AppearsOnTable<QS> {}

impl<ST, T, QS> AppearsOnTable<QS> for Bind<ST, T> where Bind<ST, T>: Expression {}

impl<ST, T, GB> ValidGrouping<GB> for Bind<ST, T> {
    type IsAggregate = is_aggregate::Never;
}
