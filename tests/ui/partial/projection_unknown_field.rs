use orm::{Model, Projection};

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
    pub id: i64,
    pub nick: String,
}

fn main() {}
