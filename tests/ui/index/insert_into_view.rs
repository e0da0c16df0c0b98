use orm::Model;
use orm::prelude::*;

#[derive(Model)]
#[orm(
    materialized_view = "sales_summary",
    query = "SELECT product_id, SUM(quantity) AS total_sold FROM orders GROUP BY product_id"
)]
pub struct SalesSummary {
    pub product_id: i64,
    pub total_sold: i64,
}

fn write(db: &orm::Database, row: &SalesSummary) -> orm::Result<()> {
    db.update::<SalesSummary>(row)?;
    Ok(())
}

fn main() {
    let _ = write;
}
