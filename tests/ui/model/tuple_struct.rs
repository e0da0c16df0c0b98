use orm::Model;

#[derive(Model)]
pub struct Pair(i64, String);

fn main() {}
