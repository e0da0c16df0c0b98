//! Declared indexes: their DDL per backend, creating them, index-only scans, the index report.

use crate::common;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use orm::prelude::*;
use orm::schema::{create_indexes_sql, migration_sql, IndexDdl};
use orm::{Backend, Database, Model};

/// The article's user table, with its covering index for the login lookup (`id, last_login` by
/// `email`), a plain index on `email` that the covering one makes redundant, and an index on
/// `name` that no query uses.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    table = users,
    index(name = "user_email_cover", on(email), include(id, last_login)),
    index(name = "users_email_plain", on(email)),
    index(name = "users_name", on(name)),
    index(name = "users_active_email", on(email), unique, predicate = "active"),
    partial(UserLogin = [id, email, last_login]),
    partial(UserCard = [id, name]),
)]
pub struct User {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub last_login: Option<DateTime<Utc>>,
}

/// The same table with only a plain index on `email`: the lookup without a covering index.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(diesel_table = users, index(name = "users_email_only", on(email)))]
pub struct PlainUser {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub email: String,
    pub name: String,
    pub active: bool,
    pub last_login: Option<DateTime<Utc>>,
}

#[test]
fn metadata_lists_the_declared_indexes_and_partials() {
    let table = User::TABLE;
    let cover = &table.indexes[0];
    assert_eq!(cover.name, "user_email_cover");
    assert_eq!(cover.columns, ["email"]);
    assert_eq!(cover.include, ["id", "last_login"]);
    assert!(!cover.unique);
    assert_eq!(table.indexes[3].predicate, Some("active"));
    assert!(table.indexes[3].unique);
    assert_eq!(table.partials[0].name, "UserLogin");
    assert_eq!(table.partials[0].columns, ["id", "email", "last_login"]);
}

#[test]
fn ddl_per_backend() {
    let pg = create_indexes_sql(User::TABLE, Backend::Postgres, IndexDdl::concurrently());
    assert_eq!(
        pg[0],
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS \"user_email_cover\" ON \"users\" (\"email\") INCLUDE (\"id\", \"last_login\")"
    );
    assert_eq!(
        pg[3],
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"users_active_email\" ON \"users\" (\"email\") WHERE active"
    );
    let lite = create_indexes_sql(User::TABLE, Backend::Sqlite, IndexDdl::concurrently());
    assert_eq!(
        lite[0],
        "CREATE INDEX IF NOT EXISTS \"user_email_cover\" ON \"users\" (\"email\", \"id\", \"last_login\")"
    );
    let file = migration_sql(User::TABLE, Backend::Postgres, IndexDdl::default());
    assert_eq!(file.lines().count(), 4);
    assert!(file.lines().all(|l| l.ends_with(';')), "{file}");
}

fn seed(db: &Database, rows: i64) {
    db.create_table::<User>().unwrap();
    let sql = match db.backend() {
        Backend::Postgres => format!(
            "INSERT INTO users (email, name, active, last_login) \
             SELECT 'u' || g || '@example.com', 'User ' || g, g % 2 = 0, now() \
             FROM generate_series(1, {rows}) AS g"
        ),
        _ => format!(
            "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {rows}) \
             INSERT INTO users (email, name, active, last_login) \
             SELECT 'u' || n || '@example.com', 'User ' || n, n % 2 = 0, '2026-01-01 00:00:00' FROM g"
        ),
    };
    db.batch_execute(&sql).unwrap();
}

/// The article's lookup: `id` and `last_login` of the user with this email.
macro_rules! login_lookup {
    ($email:expr) => {
        users::table
            .filter(users::email.eq($email))
            .select((users::id, users::last_login))
    };
}

#[test]
fn indexes_are_created_once_on_every_backend() {
    for db in common::backends("index_create") {
        seed(&db, 100);
        db.create_indexes::<User>().unwrap();
        db.create_indexes::<User>().unwrap(); // IF NOT EXISTS: a second run changes nothing
        let report = db.index_report(&[User::TABLE]).unwrap();
        let names: Vec<&str> = report.indexes.iter().map(|i| i.name.as_str()).collect();
        for declared in User::TABLE.indexes {
            assert!(
                names.contains(&declared.name),
                "{:?}: {names:?}",
                db.backend()
            );
        }
        let cover = report
            .indexes
            .iter()
            .find(|i| i.name == "user_email_cover")
            .unwrap();
        match db.backend() {
            Backend::Postgres => {
                assert_eq!(cover.columns, ["email"]);
                assert_eq!(cover.include, ["id", "last_login"]);
            }
            _ => assert_eq!(cover.columns, ["email", "id", "last_login"]),
        }
        let partial = report
            .indexes
            .iter()
            .find(|i| i.name == "users_active_email")
            .unwrap();
        assert!(partial.unique);
        assert!(
            partial.predicate.as_deref().unwrap().contains("active"),
            "{partial:?}"
        );
        // The partial unique index is enforced: two active users cannot share an email.
        let dup = db.batch_execute(
            "INSERT INTO users (email, name, active) VALUES ('u2@example.com', 'Again', true)",
        );
        assert!(dup.is_err(), "{:?}", db.backend());
        db.drop_indexes::<User>().unwrap();
        let left = db.index_report(&[User::TABLE]).unwrap();
        let declared = |name: &str| User::TABLE.indexes.iter().any(|i| i.name == name);
        assert!(left.indexes.iter().all(|i| !declared(&i.name)), "{left}");
    }
}

#[test]
fn concurrently_sends_each_statement_alone() {
    let Some(db) = common::postgres("index_concurrently") else {
        return;
    };
    seed(&db, 1000);
    // Four CREATE INDEX CONCURRENTLY: sent together they would fail ("cannot run inside a
    // transaction block").
    let together =
        create_indexes_sql(User::TABLE, Backend::Postgres, IndexDdl::concurrently()).join("; ");
    assert!(db.batch_execute(&together).is_err());
    db.create_indexes_concurrently::<User>().unwrap();
    let report = db.index_report(&[User::TABLE]).unwrap();
    let declared = |name: &str| User::TABLE.indexes.iter().any(|i| i.name == name);
    assert_eq!(
        report.indexes.iter().filter(|i| declared(&i.name)).count(),
        4,
        "{report}"
    );
}

/// The article's lookup reads `id` and `last_login` by `email`: with the covering index and a
/// vacuumed table (the visibility map current) PostgreSQL answers it from the index alone;
/// with a plain index on `email` it reads the table too. No planner setting is forced
/// (`enable_seqscan` stays on): 20,000 rows make an index lookup the cheapest plan by itself.
#[test]
fn covering_index_makes_the_lookup_index_only() {
    let Some(db) = common::postgres("index_only_scan") else {
        return;
    };
    seed(&db, 20_000);
    db.create_indexes::<PlainUser>().unwrap();
    db.batch_execute("VACUUM ANALYZE users").unwrap();
    let plain = db.explain(login_lookup!("u42@example.com")).unwrap();
    assert!(!plain.is_index_only_scan(), "{}", plain.raw);
    assert!(plain.uses_index("users_email_only"), "{}", plain.raw);

    db.drop_indexes::<PlainUser>().unwrap();
    db.create_indexes::<User>().unwrap();
    let before_vacuum = db.explain(login_lookup!("u42@example.com")).unwrap();
    let covered = vacuum_until_index_only(&db);
    assert!(covered.is_index_only_scan(), "{}", covered.raw);
    assert!(covered.uses_index("user_email_cover"), "{}", covered.raw);
    assert!(covered.raw.contains("Index Only Scan"), "{}", covered.raw);
    // The query still returns its row, of course.
    let found: Vec<(i64, Option<DateTime<Utc>>)> =
        db.load(login_lookup!("u42@example.com")).unwrap();
    assert_eq!(found.len(), 1);
    let _ = before_vacuum; // planned either way; only after VACUUM is the answer certain
                           // SQL text can be explained too.
    let text = db
        .explain(diesel::sql_query(
            "SELECT id, last_login FROM users WHERE email = 'u7@example.com'",
        ))
        .unwrap();
    assert!(text.is_index_only_scan(), "{}", text.raw);
}

#[test]
#[cfg(feature = "sqlite")]
fn sqlite_composite_index_covers_the_lookup() {
    let db = Database::connect("sqlite::memory:").unwrap();
    seed(&db, 2_000);
    db.create_indexes::<PlainUser>().unwrap();
    let plain = db.explain(login_lookup!("u42@example.com")).unwrap();
    assert!(!plain.is_index_only_scan(), "{}", plain.raw);
    assert!(plain.uses_index("users_email_only"), "{}", plain.raw);
    db.drop_indexes::<PlainUser>().unwrap();
    db.create_indexes::<User>().unwrap();
    let covered = db.explain(login_lookup!("u42@example.com")).unwrap();
    assert!(covered.is_index_only_scan(), "{}", covered.raw);
    assert!(covered.uses_index("user_email_cover"), "{}", covered.raw);
    let scan = db.explain(users::table.select(users::name)).unwrap();
    assert!(
        !scan.is_index_only_scan() || scan.uses_index("users_name"),
        "{}",
        scan.raw
    );
}

#[test]
fn report_flags_duplicates_unused_indexes_and_uncovered_partials() {
    for db in common::backends("index_report") {
        seed(&db, 5_000);
        db.create_indexes::<User>().unwrap();
        if db.backend() == Backend::Postgres {
            vacuum_until_index_only(&db);
        }
        for i in 0..20 {
            let email = format!("u{i}@example.com");
            let _: Vec<(i64, Option<DateTime<Utc>>)> = db.load(login_lookup!(&email)).unwrap();
        }
        let report = wait_for_scans(&db);
        let find = |name: &str| report.indexes.iter().find(|i| i.name == name).unwrap();
        assert_eq!(
            find("users_email_plain").duplicate_of.as_deref(),
            Some("user_email_cover"),
            "{report}"
        );
        assert_eq!(find("user_email_cover").duplicate_of, None, "{report}");
        assert_eq!(find("users_name").duplicate_of, None, "{report}");
        // The unique partial index has a predicate the others lack: not a duplicate.
        assert_eq!(find("users_active_email").duplicate_of, None, "{report}");
        if db.backend() == Backend::Postgres {
            assert!(find("user_email_cover").scans.unwrap() > 0, "{report}");
            assert!(find("users_name").unused, "{report}");
            assert!(!find("user_email_cover").unused, "{report}");
            assert!(find("users_name").size_bytes.unwrap() > 0);
        } else {
            assert_eq!(find("users_name").scans, None);
        }
        let login = report
            .partials
            .iter()
            .find(|p| p.partial == "UserLogin")
            .unwrap();
        assert_eq!(
            login.covered_by.as_deref(),
            Some("user_email_cover"),
            "{report}"
        );
        let card = report
            .partials
            .iter()
            .find(|p| p.partial == "UserCard")
            .unwrap();
        if db.backend() == Backend::Sqlite {
            // SQLite keeps the rowid (`id`, an INTEGER PRIMARY KEY) in every index.
            assert_eq!(card.covered_by.as_deref(), Some("users_name"), "{report}");
            continue;
        }
        assert_eq!(card.covered_by, None, "{report}");
        // The suggested DDL runs, and then covers the partial.
        let ddl = card.suggested_ddl.clone().unwrap();
        assert_eq!(
            ddl,
            "CREATE INDEX IF NOT EXISTS \"users_user_card_cover\" ON \"users\" (\"id\") INCLUDE (\"name\")"
        );
        db.batch_execute(&ddl).unwrap();
        let after = db.index_report(&[User::TABLE]).unwrap();
        let card = after
            .partials
            .iter()
            .find(|p| p.partial == "UserCard")
            .unwrap();
        assert_eq!(
            card.covered_by.as_deref(),
            Some("users_user_card_cover"),
            "{after}"
        );
        let printed = after.to_string();
        assert!(
            printed.contains("DUPLICATE of user_email_cover"),
            "{printed}"
        );
    }
}

/// PostgreSQL counts scans in the statistics after the reading session reports them (within
/// about a second); wait for the counts rather than assume them.
fn wait_for_scans(db: &Database) -> orm::schema::IndexReport {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let report = db.index_report(&[User::TABLE]).unwrap();
        let counted = report
            .indexes
            .iter()
            .any(|i| i.name == "user_email_cover" && i.scans.is_none_or(|s| s > 0));
        if counted || std::time::Instant::now() > deadline {
            return report;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// VACUUM sets a page all-visible only when no open transaction on the server (in any schema:
/// the tests of the whole suite share it) may still need its old rows, and the planner takes an
/// index-only scan only for a table mostly all-visible. So vacuum again until the lookup's plan
/// is index-only, for up to a minute; the plan after the last VACUUM is returned either way.
fn vacuum_until_index_only(db: &Database) -> orm::schema::Plan {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        db.batch_execute("VACUUM ANALYZE users").unwrap();
        let plan = db.explain(login_lookup!("u42@example.com")).unwrap();
        if plan.is_index_only_scan() || std::time::Instant::now() > deadline {
            return plan;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}
