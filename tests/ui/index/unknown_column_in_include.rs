use orm::Model;

#[derive(Model)]
#[orm(table = users, index(name = "user_email_cover", on(email), include(id, last_logn)))]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
    pub last_login: Option<i64>,
}

fn main() {}
