use orm::Model;

#[derive(Model)]
#[orm(table = users, partial(UserCard = [id, nmae]))]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
    pub email: String,
}

fn main() {}
