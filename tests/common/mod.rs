//! Shared by the integration tests: the databases each test runs its body against.
//!
//! SQLite (in memory) always. PostgreSQL when `ORM_TEST_PG_URL` is set, each test in its own
//! schema so tests never share a table. Under `scripts/test` (`ORM_TEST_REQUIRE_SERVERS=1`) a
//! missing server URL is a failure; under plain `cargo test` it is reported and skipped.
#![allow(dead_code)]

use orm::Database;

/// Whether missing servers fail the run (set by `scripts/test`).
pub fn servers_required() -> bool {
    std::env::var("ORM_TEST_REQUIRE_SERVERS").is_ok_and(|v| v == "1")
}

/// The URL in `var`, or `None` after saying which tests were not run. Fails the test when
/// servers are required.
pub fn server_url(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                !servers_required(),
                "{var} is not set, but scripts/test requires every server; {test} cannot run"
            );
            eprintln!("note: {var} not set: skipped the server part of `{test}` (run scripts/test to include it)");
            None
        }
    }
}

/// A PostgreSQL database whose search path is a fresh schema named after `test`.
pub fn postgres(test: &str) -> Option<Database> {
    let url = server_url("ORM_TEST_PG_URL", test)?;
    let schema = format!("orm_t_{test}");
    let admin = Database::connect(&url).expect("connect to ORM_TEST_PG_URL");
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"
        ))
        .expect("create test schema");
    let sep = if url.contains('?') { '&' } else { '?' };
    let db = Database::connect(&format!("{url}{sep}options=-csearch_path%3D{schema}"))
        .expect("connect with test schema");
    Some(db)
}

/// Every database the test body should run against: SQLite in memory, and PostgreSQL when
/// available.
pub fn backends(test: &str) -> Vec<Database> {
    let mut dbs = vec![Database::connect("sqlite::memory:").expect("sqlite in memory")];
    dbs.extend(postgres(test));
    dbs
}
