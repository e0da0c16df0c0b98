use orm::Model;

#[derive(Model)]
#[orm(
    materialized_view = "sales_summary",
    query = "SELECT product_id, SUM(quantity) AS total_sold FROM orders GROUP BY product_id"
)]
pub struct SalesSummary {
    pub product_id: i64,
    #[orm(read_only)]
    pub total_sold: i64,
}

fn main() {}
