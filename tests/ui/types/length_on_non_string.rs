use orm::Model;

#[derive(Model)]
#[orm(table = products)]
pub struct Product {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(length = 10)]
    pub stock: i64,
}

fn main() {}
