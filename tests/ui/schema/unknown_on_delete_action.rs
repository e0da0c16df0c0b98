use orm::Model;

#[derive(Model)]
#[orm(table = posts)]
pub struct Post {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(references = users(id), on_delete = cascde)]
    pub author_id: i64,
}

fn main() {}
