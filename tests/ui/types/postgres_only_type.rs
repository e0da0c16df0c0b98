use orm::Model;

#[derive(Model)]
#[orm(table = jobs)]
pub struct Job {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub timeout: diesel::pg::data_types::PgInterval,
}

fn main() {}
