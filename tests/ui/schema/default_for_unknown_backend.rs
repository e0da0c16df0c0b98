use orm::Model;

#[derive(Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub title: String,
    #[orm(server_filled, default(postgres = "now()", mysql = "NOW()"))]
    pub created_at: chrono::DateTime<chrono::Utc>,
}

fn main() {}
