use orm::Model;

#[derive(Model)]
#[orm(table = docs, index(name = "docs_tags", on(tags), include(id), method = gin))]
pub struct Doc {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub tags: String,
}

fn main() {}
