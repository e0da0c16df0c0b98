use orm::Model;

#[derive(Model)]
#[orm(table = users, cache(ttl = "10m"))]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
}

fn main() {}
