//! `verify_schema` and `create_table` against live tables: created by `orm`, missing, and
//! drifted by hand, on SQLite and PostgreSQL.

use crate::common;

use chrono::{DateTime, Utc};
use orm::prelude::*;
use orm::schema::SchemaDifference;
use orm::{Backend, Database, Error, Model};

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = members, unique(team, seat))]
pub struct Member {
    #[orm(primary_key, generated)]
    pub id: i64,
    #[orm(unique)]
    pub email: String,
    pub name: String,
    pub bio: Option<String>,
    pub team: i32,
    pub seat: i32,
    pub joined: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Model)]
#[orm(table = teams)]
pub struct Team {
    #[orm(primary_key)]
    pub code: String,
    pub title: Option<String>,
}

/// `members` as an older migration left it: `id` an `integer` without a key, `email`
/// nullable, `name` an integer, no `bio`, an extra NOT NULL column, UNIQUE on `name`, the
/// (team, seat) pair unique through an index listing them the other way round, and a unique
/// index on an expression, which is no column list.
fn drifted_members_sql(db: &Database) -> &'static str {
    match db.backend() {
        Backend::Postgres => {
            "CREATE TABLE members (id integer NOT NULL, email text, name integer NOT NULL UNIQUE, \
             team int4 NOT NULL, seat int4 NOT NULL, joined timestamptz NOT NULL, \
             legacy boolean NOT NULL); \
             CREATE UNIQUE INDEX members_seat_team ON members (seat, team); \
             CREATE UNIQUE INDEX members_lower_email ON members (lower(email));"
        }
        _ => {
            "CREATE TABLE members (id BIGINT NOT NULL, email TEXT, name INTEGER NOT NULL UNIQUE, \
             team INT NOT NULL, seat INT NOT NULL, joined TEXT NOT NULL, legacy BOOLEAN NOT NULL); \
             CREATE UNIQUE INDEX members_seat_team ON members (seat, team); \
             CREATE UNIQUE INDEX members_lower_email ON members (lower(email));"
        }
    }
}

fn expected_drift(db: &Database) -> Vec<SchemaDifference> {
    let t = "members";
    let postgres = db.backend() == Backend::Postgres;
    let mut out = Vec::new();
    if postgres {
        out.push(SchemaDifference::TypeMismatch {
            table: t,
            column: "id",
            model: "BIGINT".into(),
            live: "integer".into(),
        });
    }
    out.extend([
        SchemaDifference::NullabilityMismatch {
            table: t,
            column: "email",
            model_nullable: false,
        },
        SchemaDifference::TypeMismatch {
            table: t,
            column: "name",
            model: "TEXT".into(),
            live: if postgres { "integer" } else { "INTEGER" }.into(),
        },
        SchemaDifference::MissingColumn {
            table: t,
            column: "bio",
        },
        SchemaDifference::ExtraColumn {
            table: t,
            column: "legacy".into(),
            blocks_inserts: true,
        },
        SchemaDifference::PrimaryKeyMismatch {
            table: t,
            model: vec!["id".into()],
            live: vec![],
        },
        SchemaDifference::MissingUnique {
            table: t,
            columns: vec!["email".into()],
        },
        SchemaDifference::ExtraUnique {
            table: t,
            name: if postgres {
                "members_name_key"
            } else {
                "sqlite_autoindex_members_1"
            }
            .into(),
            columns: vec!["name".into()],
        },
    ]);
    out
}

#[test]
fn tables_created_by_orm_match_their_models() {
    for db in common::backends("verify_created") {
        db.create_table::<Member>().unwrap();
        db.create_table::<Team>().unwrap();
        assert_eq!(db.verify_schema::<Member>().unwrap(), vec![]);
        assert_eq!(
            db.verify_tables(&[Member::TABLE, Team::TABLE]).unwrap(),
            vec![]
        );
        // A second create_table of a matching table is a no-op.
        db.create_table::<Member>().unwrap();
    }
}

#[test]
fn a_missing_table_is_reported() {
    for db in common::backends("verify_missing") {
        db.create_table::<Team>().unwrap();
        assert_eq!(
            db.verify_tables(&[Team::TABLE, Member::TABLE]).unwrap(),
            vec![SchemaDifference::MissingTable { table: "members" }]
        );
    }
}

#[test]
fn a_drifted_table_reports_every_difference() {
    for db in common::backends("verify_drifted") {
        db.batch_execute(drifted_members_sql(&db)).unwrap();
        let differences = db.verify_schema::<Member>().unwrap();
        assert_eq!(differences, expected_drift(&db), "{:?}", db.backend());
        let text = differences
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            text.contains("`members.email` accepts NULL, the model's field is not an `Option`"),
            "{text}"
        );
        assert!(
            text.contains("`members.legacy` is not in the model and is NOT NULL without a default, so inserts fail"),
            "{text}"
        );
    }
}

#[test]
fn create_table_on_a_drifted_table_reports_the_differences() {
    for db in common::backends("verify_create_drifted") {
        db.batch_execute(drifted_members_sql(&db)).unwrap();
        match db.create_table::<Member>() {
            Err(Error::SchemaMismatch {
                model,
                table,
                differences,
            }) => {
                assert_eq!((model, table), ("Member", "members"));
                assert_eq!(differences, expected_drift(&db));
            }
            other => panic!("expected SchemaMismatch, got {other:?}"),
        }
        // Nothing was changed: the table is still the drifted one.
        assert_eq!(db.verify_schema::<Member>().unwrap(), expected_drift(&db));
    }
}

/// The table is found through the search path, as the model's queries find it: a table of
/// the same name in another schema is not the one compared, until the path names that schema
/// first.
#[test]
fn postgres_tables_are_found_through_the_search_path() {
    let Some(url) = common::postgres_url("verify_search_path") else {
        return;
    };
    let db = Database::connect(&url).unwrap();
    db.create_table::<Member>().unwrap();
    db.batch_execute(
        "DROP SCHEMA IF EXISTS orm_t_verify_search_path_old CASCADE; \
         CREATE SCHEMA orm_t_verify_search_path_old; \
         CREATE TABLE orm_t_verify_search_path_old.members (id bigint PRIMARY KEY);",
    )
    .unwrap();
    assert_eq!(db.verify_schema::<Member>().unwrap(), vec![]);

    let old_first = url.replace(
        "search_path%3Dorm_t_verify_search_path",
        "search_path%3Dorm_t_verify_search_path_old,orm_t_verify_search_path",
    );
    assert_ne!(old_first, url);
    let old = Database::connect(&old_first).unwrap();
    let differences = old.verify_schema::<Member>().unwrap();
    assert!(
        differences.contains(&SchemaDifference::MissingColumn {
            table: "members",
            column: "email"
        }),
        "{differences:?}"
    );
    assert!(matches!(
        old.create_table::<Member>(),
        Err(Error::SchemaMismatch { .. })
    ));
    db.batch_execute("DROP SCHEMA orm_t_verify_search_path_old CASCADE")
        .unwrap();
}

/// A unique index declared on the model is one of its UNIQUE column lists; a partial one is
/// not a column list.
#[derive(Debug, Clone, PartialEq, Model)]
#[orm(
    table = handles,
    index(name = "handles_login_unique", on(login), unique),
    index(name = "handles_active_email", on(email), unique, predicate = "active")
)]
pub struct Handle {
    #[orm(primary_key, generated)]
    pub id: i64,
    pub login: String,
    pub email: String,
    pub active: bool,
}

#[test]
fn declared_unique_indexes_count_as_unique_constraints() {
    for db in common::backends("verify_unique_indexes") {
        db.create_table::<Handle>().unwrap();
        assert_eq!(
            db.verify_schema::<Handle>().unwrap(),
            vec![SchemaDifference::MissingUnique {
                table: "handles",
                columns: vec!["login".into()]
            }]
        );
        // create_table does not make indexes, so their absence does not stop it.
        db.create_table::<Handle>().unwrap();
        db.create_indexes::<Handle>().unwrap();
        assert_eq!(db.verify_schema::<Handle>().unwrap(), vec![]);
        let ddl = orm::schema::ddl::migration_sql(&[Handle::TABLE], db.backend());
        assert!(ddl.contains("handles_login_unique"), "{ddl}");
    }
}
