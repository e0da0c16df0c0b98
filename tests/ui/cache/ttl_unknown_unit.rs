use orm::Model;

#[derive(Model)]
#[orm(table = users, cache(ttl = 2days))]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
}

fn main() {}
