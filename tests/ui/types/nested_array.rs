use orm::Model;

#[derive(Model)]
#[orm(table = grids)]
pub struct Grid {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub cells: Vec<Vec<i32>>,
}

fn main() {}
