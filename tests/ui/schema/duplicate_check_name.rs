use orm::Model;

#[derive(Model)]
#[orm(
    table = posts,
    check(posts_votes = "votes >= 0"),
    check(posts_votes = "votes < 1000000")
)]
pub struct Post {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub votes: i32,
}

fn main() {}
