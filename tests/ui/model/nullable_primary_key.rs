use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key)]
    pub id: Option<i64>,
    pub name: String,
}

fn main() {}
