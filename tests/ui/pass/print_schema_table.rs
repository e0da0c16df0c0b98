//! A model bound to a table that `diesel print-schema` wrote for a PostgreSQL database
//! compiles as a Diesel user writes it, with no backend attribute, in a build with both
//! backends: its SQL types make it PostgreSQL's. A column Diesel reads but cannot write (a
//! custom type with `FromSql` alone) is `read_only`: in no insert or patch struct.
use chrono::{DateTime, Utc};
use orm::Model;
use orm::prelude::*;

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "tsvector"))]
    pub struct Tsvector;
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Tsvector;

    crates (id) {
        id -> Int4,
        name -> Varchar,
        keywords -> Array<Text>,
        metadata -> Jsonb,
        updated_at -> Timestamptz,
        search -> Tsvector,
    }
}

/// A `tsvector`'s raw bytes: read, never written.
#[derive(Debug, Clone, PartialEq, diesel::deserialize::FromSqlRow)]
pub struct SearchVector(pub Vec<u8>);

impl diesel::deserialize::FromSql<sql_types::Tsvector, diesel::pg::Pg> for SearchVector {
    fn from_sql(value: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
        Ok(Self(value.as_bytes().to_vec()))
    }
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = crates)]
pub struct Crate {
    #[orm(primary_key, generated)]
    pub id: i32,
    pub name: String,
    pub keywords: Vec<String>,
    pub metadata: serde_json::Value,
    #[orm(server_filled)]
    pub updated_at: DateTime<Utc>,
    #[orm(read_only)]
    pub search: SearchVector,
}

fn main() {
    assert_eq!(Crate::TABLE.backends, [orm::Backend::Postgres]);
    // Every field of the insert and patch structs, and none for `search`.
    let _ = NewCrate {
        name: "serde".into(),
        keywords: vec![],
        metadata: serde_json::json!({}),
    };
    let _ = CratePatch {
        name: None,
        keywords: None,
        metadata: None,
        updated_at: None,
    };
    let db = orm::Database::connect("sqlite::memory:").unwrap();
    let found = db.find::<Crate>(1);
    assert!(
        matches!(found, Err(orm::Error::WrongBackend { .. })),
        "{found:?}"
    );
}
