use orm::Model;

diesel::table! {
    accounts (id) {
        id -> Int8,
        balance -> Int4,
    }
}

#[derive(Model)]
#[orm(diesel_table = accounts)]
pub struct Account {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(sql_type = diesel::sql_types::Text)]
    pub balance: i32,
}

fn main() {}
