use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(nullable)]
    pub name: String,
}

fn main() {}
