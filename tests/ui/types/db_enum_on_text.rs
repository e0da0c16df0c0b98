use orm::Model;

#[derive(Model)]
#[orm(table = diary)]
pub struct Entry {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(db_enum)]
    pub mood: String,
}

fn main() {}
