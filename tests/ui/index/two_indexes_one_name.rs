use orm::Model;

#[derive(Model)]
#[orm(
    table = users,
    index(name = "users_lookup", on(email)),
    index(name = "users_lookup", on(name)),
)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
    pub name: String,
}

fn main() {}
