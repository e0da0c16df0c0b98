use orm::Model;

// A mistake inside an attribute is reported once; the model is still generated, so the code
// below that uses it adds no errors of its own.
#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(uniqe)]
    pub email: String,
}

fn main() {
    let _new = NewUser { email: "a@b".into() };
    let _table = users::table;
    let _meta = <User as orm::meta::ReadModel>::TABLE;
}
