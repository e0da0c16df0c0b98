use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(column = full_name, column = display_name)]
    pub name: String,
}

fn main() {}
