use orm::Model;

#[derive(Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, generated, server_filled)]
    pub id: i64,
    pub title: String,
}

fn main() {}
