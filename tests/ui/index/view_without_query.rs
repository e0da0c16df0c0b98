use orm::Model;

#[derive(Model)]
#[orm(materialized_view = "sales_summary")]
pub struct SalesSummary {
    pub product_id: i64,
    pub total_sold: i64,
}

fn main() {}
