use orm::Model;

#[derive(Debug, Clone, PartialEq)]
pub enum Mood {
    Happy,
    Sad,
}

#[derive(Model)]
#[orm(table = diary)]
pub struct Entry {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub mood: Mood,
}

fn main() {}
