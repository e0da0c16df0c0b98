use orm::Model;

#[derive(Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, read_only)]
    pub id: i64,
    pub title: String,
}

fn main() {}
