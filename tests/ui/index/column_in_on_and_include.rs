use orm::Model;

#[derive(Model)]
#[orm(table = users, index(name = "user_email_cover", on(email), include(id, email)))]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
}

fn main() {}
