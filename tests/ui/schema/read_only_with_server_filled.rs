use orm::Model;

#[derive(Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub title: String,
    #[orm(server_filled, read_only)]
    pub title_length: i32,
}

fn main() {}
