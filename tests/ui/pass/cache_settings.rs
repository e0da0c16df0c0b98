use orm::Model;

#[derive(Model)]
#[orm(table = users, cache(ttl = 10min))]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub doc: Option<serde_json::Value>,
}

fn main() {
    let _ = User::cache_key(&1);
    assert_eq!(
        <User as orm::meta::ReadModel>::TABLE.cache_ttl,
        Some(std::time::Duration::from_secs(600))
    );
}
