#![cfg(feature = "postgres")]
#[path = "adoption/schema.rs"]
#[rustfmt::skip]
mod schema;
use chrono::{DateTime, Utc};
use orm::Model;

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = schema::versions)]
pub struct Version {
    #[orm(primary_key, generated)]
    pub id: i32,
    pub crate_id: i32,
    pub num: String,
    #[orm(server_filled, default = "now()")]
    pub updated_at: DateTime<Utc>,
    #[orm(server_filled, default = "now()")]
    pub created_at: DateTime<Utc>,
    #[orm(server_filled, default = 0)]
    pub downloads: i32,
    pub features: serde_json::Value,
    pub yanked: bool,
    pub license: Option<String>,
    pub crate_size: Option<i32>,
    pub published_by: Option<i32>,
    pub bin_names: Vec<String>,
}
#[test]
fn t() {}
