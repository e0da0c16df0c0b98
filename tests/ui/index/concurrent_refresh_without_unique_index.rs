use orm::Model;

#[derive(Model)]
#[orm(
    materialized_view = "sales_summary",
    query = "SELECT product_id, SUM(quantity) AS total_sold FROM orders GROUP BY product_id",
    index(name = "sales_summary_product", on(product_id)),
    refresh_concurrently,
)]
pub struct SalesSummary {
    pub product_id: i64,
    pub total_sold: i64,
}

fn main() {}
