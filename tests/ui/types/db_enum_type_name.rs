use orm::DbEnum;

#[derive(Debug, DbEnum)]
#[orm(pg_type = "Mood Type")]
pub enum Mood {
    Happy,
    Sad,
}

fn main() {}
