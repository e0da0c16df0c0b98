use orm::{Model, Projection};
use orm::prelude::*;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
}

#[derive(Projection)]
#[orm(model = User)]
pub struct Card {
    pub id: i32,
    pub name: String,
}

fn main() {
    let db = orm::Database::connect("sqlite::memory:").unwrap();
    let _ = db.load_all::<Card>();
}
