use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(sql_type = "Text")]
    pub name: String,
}

fn main() {}
