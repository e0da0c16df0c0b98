use orm::DbEnum;

#[derive(Debug, DbEnum)]
pub enum Mood {
    Happy,
    Other(String),
}

fn main() {}
