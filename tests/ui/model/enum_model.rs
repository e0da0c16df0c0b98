use orm::Model;

#[derive(Model)]
pub enum Status {
    Active,
    Banned,
}

fn main() {}
