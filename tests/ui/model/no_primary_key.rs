use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    pub id: i64,
    pub name: String,
}

fn main() {}
