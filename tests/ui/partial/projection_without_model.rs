use orm::Projection;

#[derive(Projection)]
pub struct Card {
    pub id: i64,
}

fn main() {}
