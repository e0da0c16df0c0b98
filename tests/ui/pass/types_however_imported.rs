//! Field types are recognised however they were imported, and `orm::sql_types::bind` works on both a
//! NOT NULL and a nullable column of `orm`'s own SQL types.
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::Model;
use orm::prelude::*;
use serde_json::Value;
use uuid::Uuid;

#[derive(Debug, Model)]
#[orm(table = documents)]
pub struct Document {
    #[orm(primary_key)]
    pub id: Uuid,
    pub body: Value,
    pub tags: Option<::serde_json::Value>,
    pub created_at: DateTime<Utc>,
    pub seen_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn main() {
    let db = orm::Database::connect("sqlite::memory:").unwrap();
    db.create_table::<Document>().unwrap();
    let now = Utc::now();
    db.insert::<Document>(&NewDocument {
        id: Uuid::new_v4(),
        body: serde_json::json!({ "title": "a" }),
        tags: None,
        created_at: now,
        seen_at: Some(now),
    })
    .unwrap();
    let cutoff = now - chrono::Duration::hours(1);
    let recent: Vec<Document> = db
        .load(documents::table.filter(documents::created_at.gt(orm::sql_types::bind(cutoff))))
        .unwrap();
    let seen: Vec<Document> = db
        .load(documents::table.filter(documents::seen_at.gt(orm::sql_types::bind(Some(cutoff)))))
        .unwrap();
    assert_eq!((recent.len(), seen.len()), (1, 1));
}
