//! Bad URLs and unreachable servers give typed errors that name the URL, never the password.

use crate::common;

#[cfg(feature = "sqlite")]
use orm::prelude::*;
use orm::{Database, Error};

#[test]
fn malformed_urls_are_invalid_url_errors_without_the_password() {
    for url in [
        "postgres://app:hunter2@db.internal:99999/prod",
        "postgres://app:hunter2@db.internal:port/prod",
        "mysql://app:hunter2@db.internal/prod",
        "postgres://app:hunter2@[::1/prod",
        "",
    ] {
        match Database::connect(url) {
            Err(Error::InvalidUrl { url: shown, reason }) => {
                let message = format!(
                    "{}",
                    Error::InvalidUrl {
                        url: shown.clone(),
                        reason
                    }
                );
                assert!(!message.contains("hunter2"), "{message}");
                if !url.is_empty() {
                    assert!(shown.as_str().contains("app:***@"), "{shown}");
                }
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }
}

#[test]
#[cfg(feature = "postgres")]
fn unreachable_server_is_a_connect_error_naming_the_redacted_url() {
    // Nothing listens on port 1 of the loopback address: the connection is refused at once.
    let err = Database::connect("postgres://app:hunter2@127.0.0.1:1/prod").unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(
        message.contains("postgres://app:***@127.0.0.1:1/prod"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"));
}

#[test]
#[cfg(feature = "postgres")]
fn server_rejection_is_a_connect_error_without_the_password() {
    let Some(url) = common::server_url("ORM_TEST_PG_URL", "server_rejection") else {
        return;
    };
    // Same server, a database that does not exist, and a password in the URL.
    let base = url.rsplit_once('/').map_or(url.as_str(), |(b, _)| b);
    let with_password = base.replacen("postgres://postgres@", "postgres://postgres:s3cret-pw@", 1);
    let err = Database::connect(&format!("{with_password}/orm_no_such_database")).unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(message.contains("orm_no_such_database"), "{message}");
    assert!(!message.contains("s3cret-pw"), "{message}");
}

#[test]
#[cfg(feature = "sqlite")]
fn sqlite_file_in_missing_directory_is_a_connect_error() {
    let err = Database::connect("sqlite:///no/such/dir/app.db").unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains("/no/such/dir/app.db"), "{err}");
}

#[test]
#[cfg(feature = "sqlite")]
fn sqlite_files_persist_between_handles() {
    let dir = std::env::temp_dir().join(format!("orm-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.db");
    let url = format!("sqlite://{}", path.display());
    {
        let db = Database::connect(&url).unwrap();
        db.batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);")
            .unwrap();
    }
    let db = Database::connect(&url).unwrap();
    let n: Vec<i32> = db
        .load(diesel::dsl::sql::<diesel::sql_types::Integer>(
            "SELECT x FROM t",
        ))
        .unwrap();
    assert_eq!(n, [7]);
    std::fs::remove_dir_all(dir).unwrap();
}
