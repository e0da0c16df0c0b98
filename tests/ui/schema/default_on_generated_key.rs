use orm::Model;

#[derive(Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, generated, default = "nextval('posts_seq')")]
    pub id: i64,
    pub title: String,
}

fn main() {}
