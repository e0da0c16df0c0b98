use orm::DbEnum;

#[derive(Debug, DbEnum)]
pub enum Mood {
    Happy,
    #[orm(rename = "happy")]
    Glad,
}

fn main() {}
