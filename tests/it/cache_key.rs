//! Cache keys are stable: the same model and query give the same key in every build, and a
//! change of the model's stored shape or of the query gives another.

use orm::cache::CacheKey;
use orm::Model;

#[derive(Model)]
#[orm(table = users)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub name: String,
}

mod renamed_type {
    #[derive(orm::Model)]
    #[orm(table = users)]
    pub struct User {
        #[orm(primary_key, generated)]
        pub id: i64,
        pub name: Option<String>,
    }
}

#[test]
fn keys_are_stable_and_shape_aware() {
    let key = CacheKey::for_query::<User>(b"SELECT 1");
    // xxh3 is specified and stable across platforms and Rust releases: this value never changes
    // unless the model's columns or types do. 75148b6cf87d2aa1 is xxh3_64(b"SELECT 1") as the
    // reference C implementation computes it.
    assert_eq!(
        key.as_str(),
        format!(
            "orm:users:{:016x}:75148b6cf87d2aa1",
            User::TABLE.fingerprint
        )
    );
    assert_eq!(key, CacheKey::for_query::<User>(b"SELECT 1"));
    assert_ne!(key, CacheKey::for_query::<User>(b"SELECT 2"));
    assert_ne!(key, CacheKey::for_query::<renamed_type::User>(b"SELECT 1"));
}
