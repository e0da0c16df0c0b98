use orm::Model;

#[derive(Model)]
#[orm(table = items)]
pub struct Item {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub r#type: String,
}

fn main() {}
