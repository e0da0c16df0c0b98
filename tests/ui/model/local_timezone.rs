use chrono::{DateTime, Local};
use orm::Model;

#[derive(Model)]
#[orm(table = events)]
pub struct Event {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub at: DateTime<Local>,
}

fn main() {}
