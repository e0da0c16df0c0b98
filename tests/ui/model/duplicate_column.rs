use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
    #[orm(column = name)]
    pub display_name: String,
}

fn main() {}
