use orm::Model;

#[derive(Model)]
#[orm(table = counters)]
pub struct Counter {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(server_filled, default = 0)]
    pub hits: i64,
}

fn main() {}
