use orm::Model;

#[derive(Model)]
#[orm(table = users, index(name = "users_email", on(email), uniqe))]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
}

fn main() {}
