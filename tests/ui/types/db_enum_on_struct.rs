use orm::DbEnum;

#[derive(Debug, DbEnum)]
pub struct Mood {
    pub happy: bool,
}

fn main() {}
