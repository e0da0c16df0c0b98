use orm::Model;

#[derive(Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(check = votes >= 0)]
    pub votes: i32,
}

fn main() {}
