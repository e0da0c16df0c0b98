use chrono::{DateTime, Utc};
use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub last_login: DateTime<Utc>,
}

fn main() {
    use diesel::prelude::*;
    let cutoff = Utc::now();
    let _ = users::last_login.gt(cutoff);
}
